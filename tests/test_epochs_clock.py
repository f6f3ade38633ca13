"""``Epochs`` driven by hand, as the Trainer drives it: the clock, the hooks, the messages."""

import logging

import attrs
import numpy as np
import pytest

import steploop as sl
from steploop import epochs as epochs_module
from steploop.epochs import Epochs
from steploop.records import Stop
from steploop.strategy import END


class FakeTrainer:
    """What ``Epochs`` reads of a Trainer: its step and its pending stop."""

    def __init__(self):
        self.step = 0
        self.stop_requested = None


class Hooks:
    """Records the epoch hooks as (hook, epoch, trainer step)."""

    def __init__(self, trainer):
        self.trainer, self.events = trainer, []

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(("begin", epoch, trainer.step))

    def on_epoch_end(self, trainer, epoch):
        self.events.append(("end", epoch, trainer.step))


def from_position(data, position):
    return iter(list(data)[position:])


class NoLen:
    """Re-iterable data without a len (the length is found by looking one batch ahead)."""

    def __init__(self, items):
        self.items = list(items)

    def __iter__(self):
        return iter(self.items)


class BadLen(NoLen):
    def __init__(self, items, error):
        super().__init__(items)
        self.error = error

    def __len__(self):
        raise self.error


class LongLen(NoLen):
    """Says it has more batches than it yields."""

    def __len__(self):
        return len(self.items) + 2


def make(data, count=2):
    trainer = FakeTrainer()
    hooks = Hooks(trainer)
    return Epochs(data, count, from_position, hooks), trainer, hooks


def take(epochs, trainer, steps):
    """Take ``steps`` batches from the cursor as steps; whether the epoch ended."""
    batches = [epochs.cursor.next() for _ in range(steps)]
    assert END not in batches
    trainer.step += steps
    return epochs.took(steps, trainer.step)


# -- check, of ------------------------------------------------------------------------------


def message(error, call, *args):
    with pytest.raises(error) as raised:
        call(*args)
    assert type(raised.value) is error
    return str(raised.value)


def test_check_without_epochs_is_none_whatever_the_data():
    assert epochs_module.check(None, None) is None
    assert epochs_module.check(None, iter([])) is None
    assert epochs_module.of(None, [1.0], from_position, None) is None


def test_check_gives_the_count():
    assert epochs_module.check(3, [1.0]) == 3
    assert epochs_module.check(1, iter([1.0])) == 1
    assert epochs_module.check(2, NoLen([])) == 2  # no len: found out when iterated
    assert epochs_module.check(2, BadLen([1.0], TypeError())) == 2
    assert epochs_module.check(2, BadLen([1.0], ValueError())) == 2
    made = epochs_module.of(2, [1.0], from_position, None)
    assert isinstance(made, Epochs) and made.count == 2 and made.describe() == "epochs=2"


def test_check_messages():
    assert message(ValueError, epochs_module.check, 2, None) == (
        "epochs=2 needs data: an epoch is one pass over Trainer(data=...), and this Trainer "
        "has none"
    )
    assert message(TypeError, epochs_module.check, 3, (x for x in [1.0])) == (
        "data is a generator, an iterator that makes one pass only, but epochs=3 needs a new "
        "pass per epoch; pass data whose iter() starts again: a list of batches, "
        "sl.batches(...), a tf.data.Dataset, or an object whose __iter__ makes a new generator"
    )
    assert message(TypeError, epochs_module.check, 2, iter([1.0])).startswith(
        "data is a list_iterator, an iterator"
    )
    assert message(ValueError, epochs_module.check, 1, []) == (
        "data has no batches, so epochs=1 would do no step"
    )
    assert message(ValueError, epochs_module.check, 0, [1.0]) == (
        "epochs must be an int >= 1, got 0"
    )


# -- the clock and the hooks ----------------------------------------------------------------


def test_a_known_length_ends_each_epoch_at_its_last_batch():
    epochs, trainer, hooks = make([10.0, 20.0, 30.0])
    assert bool(epochs) is True
    assert epochs.state() == {"epoch": 1, "position": 0, "begun": False, "ended": False}
    assert epochs.length() == 3 and epochs.budget(None) == 3 and epochs.budget(2) == 2
    assert epochs.ready(trainer) is None
    assert hooks.events == [("begin", 1, 0)]
    assert epochs.next_end(0) == (3, 1) and epochs.next_end(2) == (3, 1)
    assert epochs.next_end(3) is None
    assert (epochs.ending_at(3), epochs.ending_at(2), epochs.ending_at(4)) == (1, None, None)
    assert take(epochs, trainer, 2) is False
    assert epochs.budget(None) == 1 and epochs.budget(5) == 1
    assert epochs.state() == {"epoch": 1, "position": 2, "begun": True, "ended": False}
    assert epochs.ready(trainer) is None and hooks.events == [("begin", 1, 0)]
    assert take(epochs, trainer, 1) is True
    assert epochs.state() == {"epoch": 1, "position": 3, "begun": True, "ended": True}
    assert epochs.next_end(2) is None  # ended: no end ahead until the next epoch begins
    assert epochs.ending_at(3) == 1
    # the next step: on_epoch_end, then epoch 2 begins where the trainer is
    assert epochs.ready(trainer) is None
    assert hooks.events == [("begin", 1, 0), ("end", 1, 3), ("begin", 2, 3)]
    assert epochs.epoch == 2 and epochs.start == 3 and epochs.position == 0
    assert epochs.next_end(3) == (6, 2) and epochs.ending_at(6) == 2
    assert epochs.ending_at(3) == 1  # the latest end is remembered
    assert [epochs.cursor.next() for _ in range(4)] == [10.0, 20.0, 30.0, END]
    assert epochs.took(3, 6) is True
    trainer.step = 6
    stop = epochs.ready(trainer)
    assert stop == Stop("data exhausted after 2 epochs (6 steps)", "exhausted")
    assert hooks.events[-1] == ("end", 2, 6)


def test_an_epoch_ended_by_a_stop_closes_and_waits():
    epochs, trainer, hooks = make([1.0, 2.0])
    epochs.ready(trainer)
    take(epochs, trainer, 2)
    trainer.stop_requested = Stop("asked")
    assert epochs.ready(trainer) is None
    assert hooks.events == [("begin", 1, 0), ("end", 1, 2)]
    assert epochs.cursor is None and epochs.begun is False and epochs.epoch == 2


def test_an_unknown_length_is_known_when_the_last_batch_is_taken():
    epochs, trainer, _ = make(NoLen([1.0, 2.0, 3.0]))
    epochs.ready(trainer)
    assert epochs.length() is None and epochs.budget(4) == 4 and epochs.budget(None) is None
    assert epochs.next_end(0) is None
    assert take(epochs, trainer, 2) is False
    assert epochs.length() is None
    assert take(epochs, trainer, 1) is True
    assert epochs.length() == 3 and epochs.ending_at(3) == 1


def test_a_pass_opened_mid_epoch_counts_the_batches_before_it():
    epochs, trainer, hooks = make(NoLen([1.0, 2.0, 3.0, 4.0]))
    epochs.restore({"epoch": 1, "position": 2, "begun": True, "ended": False}, 7)
    assert epochs.start == 5
    epochs.ready(trainer)
    assert hooks.events == []  # on_epoch_begin ran before the checkpoint
    assert [epochs.cursor.next() for _ in range(2)] == [3.0, 4.0]
    assert epochs.length() == 4
    assert epochs.budget(None) == 2


def test_restore_an_epoch_at_its_end_runs_its_end_first():
    epochs, trainer, hooks = make([1.0, 2.0], count=3)
    epochs.restore({"epoch": 2, "position": 2, "begun": 1, "ended": 1}, 4)
    assert epochs.state() == {"epoch": 2, "position": 2, "begun": True, "ended": True}
    assert epochs.ending_at(4) == 2 and epochs.start == 2
    trainer.step = 4
    epochs.ready(trainer)
    assert hooks.events == [("end", 2, 4), ("begin", 3, 4)]
    epochs.restore({"epoch": "1", "position": "0", "begun": 0, "ended": 0}, 0)
    assert epochs.state() == {"epoch": 1, "position": 0, "begun": False, "ended": False}
    assert epochs.ending_at(4) is None and epochs.cursor is None


def test_data_that_does_not_start_again_is_named():
    shared = iter([1.0, 2.0])
    epochs = Epochs(NoLen([]), 2, lambda data, position: shared, Hooks(FakeTrainer()))
    trainer = FakeTrainer()
    epochs.ready(trainer)
    take(epochs, trainer, 2)
    with pytest.raises(ValueError) as raised:
        epochs.ready(trainer)
    assert str(raised.value) == (
        "data yielded no batch in epoch 2, though epoch 1 had 2: iter(data) must start a new "
        "pass each epoch (a list, sl.batches(...), a tf.data.Dataset), not go on with a used "
        "iterator"
    )


def test_data_empty_from_the_start_is_named_without_a_first_epoch():
    epochs, trainer, _ = make(NoLen([]))
    with pytest.raises(ValueError) as raised:
        epochs.ready(trainer)
    assert str(raised.value).startswith("data yielded no batch in epoch 1: iter(data) must")


def test_a_pass_shorter_than_its_len_ends_the_epoch_with_a_warning(caplog):
    epochs, trainer, hooks = make(LongLen([1.0, 2.0]))
    epochs.ready(trainer)
    take(epochs, trainer, 2)
    assert epochs.cursor.next() is END
    with caplog.at_level(logging.WARNING, logger="steploop"):
        assert epochs_module.ran_out(trainer, epochs) is None
    assert caplog.messages == ["epoch 1 ended after 2 batches, though len(data) is 4"]
    assert hooks.events == [("begin", 1, 0), ("end", 1, 2)]
    assert epochs.ending_at(2) == 1 and epochs.epoch == 2 and epochs.cursor is None
    epochs.ran_out(trainer)  # nothing open: nothing to do
    assert hooks.events[-1] == ("end", 1, 2)


def test_a_pass_with_no_batch_though_len_says_some_is_named():
    epochs, trainer, _ = make(LongLen([]))
    epochs.ready(trainer)
    with pytest.raises(ValueError, match=r"^data yielded no batch in epoch 1: iter\(data\)"):
        epochs.ran_out(trainer)


def test_without_epochs_running_out_ends_the_run():
    trainer = FakeTrainer()
    trainer.step = 5
    assert epochs_module.ran_out(trainer, None) == Stop("data exhausted after 5 steps", "exhausted")


def test_shuffled_batches_are_opened_at_their_epoch_and_position():
    data = sl.batches(np.array([0.0, 1.0, 2.0, 3.0]), batch_size=1, shuffle=5)
    epochs, trainer, _ = make(data, count=3)
    epochs.restore({"epoch": 2, "position": 1, "begun": True, "ended": False}, 5)
    epochs.ready(trainer)
    expected = [float(b[0]) for b in data.epoch(1)][1:]
    assert [float(epochs.cursor.next()[0]) for _ in range(3)] == expected


# -- attach -----------------------------------------------------------------------------------


class Named(sl.Callback):
    def __init__(self, **attributes):
        self.__dict__.update(attributes)

    def __repr__(self):
        return "Named()"


@attrs.define(repr=False)
class Fields(sl.Callback):
    when: object = None

    def __repr__(self):
        return "Fields()"


def test_attach_finds_epoch_schedules_everywhere_and_gives_them_the_clock():
    schedules = [sl.every(epochs=n) for n in range(1, 6)]
    inner = Named(later=schedules[2])
    callbacks = [
        sl.Callback(),
        Named(schedule=schedules[0]),
        Named(other=[1, (schedules[1], inner)]),
        Fields(when=schedules[3]),
        sl.PrintLogger(every=schedules[4]),
        Named(step_schedule=sl.every(2)),
    ]
    cycle = Named()
    cycle.me = cycle
    epochs, _, _ = make([1.0, 2.0])
    epochs_module.attach([*callbacks, cycle], epochs)
    epochs.took(2, 2)
    assert [schedule.fires(2) for schedule in schedules] == [True, False, False, False, False]


@pytest.mark.parametrize(
    ("callback", "where"),
    [
        (Named(schedule=sl.every(epochs=2)), "Named()"),
        (Named(deep=[[sl.every(epochs=2)]]), "Named()"),
        (Fields(when=sl.every(epochs=2)), "Fields()"),
    ],
)
def test_attach_without_epochs_names_the_callback_and_the_schedule(callback, where):
    with pytest.raises(ValueError) as raised:
        epochs_module.attach([sl.Callback(), callback], None)
    assert str(raised.value) == (
        f"callbacks[1] {where} acts every(epochs=2), but this Trainer has no epochs; pass "
        "Trainer(..., data=..., epochs=n)"
    )
    epochs_module.attach([sl.Callback(), Named(step=sl.every(3))], None)


def test_attach_reads_the_fields_of_a_new_attrs_callback_class_each_time():
    """A class made now (its field names not yet read): its schedule is found at the first
    Trainer built and at the next (the names read once serve again)."""

    @attrs.define(repr=False)
    class Later(sl.Callback):
        first: object = None
        when: object = None

        def __repr__(self):
            return "Later()"

    for _ in range(2):
        with pytest.raises(ValueError, match=r"^callbacks\[0\] Later\(\) acts every\(epochs=3\)"):
            epochs_module.attach([Later(when=sl.every(epochs=3))], None)


def test_before_the_first_epoch_begins_the_clock_counts_from_step_zero():
    epochs, _, hooks = make([1.0, 2.0, 3.0])
    assert epochs.next_end(0) == (3, 1) and epochs.ending_at(3) == 1
    unknown, _, _ = make(NoLen([1.0]))
    assert unknown.length() is None and unknown.next_end(0) is None
    assert hooks.events == []


def test_restored_mid_epoch_the_restored_step_is_no_epoch_end():
    epochs, _, _ = make([1.0, 2.0, 3.0])
    epochs.restore({"epoch": 1, "position": 1, "begun": True, "ended": False}, 5)
    assert epochs.ending_at(5) is None and epochs.ending_at(7) == 1


def test_attach_finds_a_schedule_set_on_the_class():
    class ClassSchedule(sl.Callback):
        schedule = sl.every(epochs=1)  # a class attribute, not in the instance's __dict__

    epochs, _, _ = make([1.0])
    callback = ClassSchedule()
    epochs_module.attach([callback], epochs)
    epochs.took(1, 1)
    assert callback.schedule.fires(1) is True


def test_an_epoch_schedule_copied_or_unpickled_is_still_found_after_its_original_is_gone():
    """The Trainer skips the search only while no epoch schedule is alive: one made by copy or
    unpickling counts, also when the original no longer exists."""
    import copy
    import gc
    import pickle

    from steploop.schedule import LIVE_EPOCH_SCHEDULES

    clones = [copy.deepcopy] + [
        lambda s, p=protocol: pickle.loads(pickle.dumps(s, protocol=p)) for protocol in (0, 1, 5)
    ]  # protocols 0 and 1 would rebuild it without its __new__, were it not for __reduce_ex__
    for clone in clones:
        original = sl.every(epochs=1)
        schedule = clone(original)
        del original
        gc.collect()
        assert any(alive is schedule for alive in LIVE_EPOCH_SCHEDULES.values())
        with pytest.raises(ValueError, match=r"callbacks\[0\] Named\(\) acts every\(epochs=1\)"):
            epochs_module.attach([Named(schedule=schedule)], None)
        epochs, _, _ = make([1.0, 2.0])
        epochs_module.attach([Named(schedule=schedule)], epochs)
        epochs.took(2, 2)
        assert schedule.fires(2)
        del schedule
