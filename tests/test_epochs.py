"""Epochs: Trainer(epochs=n) passes over re-iterable data n times, exactly, fused or not."""

import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop.numpy import GradientDescent
from tests.helpers import RaiseAt


def fitting(learning_rate=0.1):
    """x follows the batches (numbers, or arrays by their mean): loss (x - b)**2."""

    def loss_and_grad(x, batch):
        b = np.mean(batch)
        return (x - b) ** 2, 2 * (x - b)

    return GradientDescent(loss_and_grad, 0.0, learning_rate=learning_rate)


class Restarting:
    """Re-iterable data without a len: each iter() is a new generator (the length is found out)."""

    def __init__(self, items):
        self.items = list(items)

    def __iter__(self):
        return (item for item in self.items)


class Shared:
    """An iterable whose iter() goes on with one shared iterator: one pass only."""

    def __init__(self, items):
        self.iterator = iter(items)

    def __iter__(self):
        return self.iterator


def make_data(kind, count):
    values = [float(v) for v in np.linspace(-3.0, 5.0, count)]
    if kind == "list":
        return values
    if kind == "iterable":
        return Restarting(values)
    return sl.batches(np.array(values), batch_size=1, shuffle=3)


class Events(sl.Callback):
    """Records epoch and step hooks as (hook, number, trainer step); its count of epoch ends is
    its checkpointed state."""

    def __init__(self):
        self.events = []
        self.ends = 0

    def on_epoch_begin(self, trainer, epoch):
        self.events.append(("epoch_begin", epoch, trainer.step))

    def on_step_begin(self, trainer, step):
        self.events.append(("step_begin", step, trainer.step))

    def on_step_end(self, trainer, record):
        self.events.append(("step_end", record.step, record.epoch))

    def on_epoch_end(self, trainer, epoch):
        self.ends += 1
        self.events.append(("epoch_end", epoch, trainer.step))

    def get_state(self):
        return {"ends": self.ends}

    def set_state(self, state):
        self.ends = state["ends"]


class Live(sl.Callback):
    """Reads the variables at the steps of its schedule (so fused calls must end there)."""

    needs_live_state = True

    def __init__(self, schedule):
        self.schedule = schedule
        self.seen = []

    def on_step_end(self, trainer, record):
        if self.schedule.fires(record.step):
            self.seen.append((record.step, float(record.variables["x"])))


def test_ten_batches_three_epochs_are_thirty_steps():
    """10 batches x 3 epochs = 30 steps, epoch column 1*10, 2*10, 3*10, status exhausted."""
    result = sl.Trainer(fitting(), data=list(range(10)), epochs=3).run()
    assert (result.steps, result.status) == (30, "exhausted")
    assert result.stop_reason == "data exhausted after 3 epochs (30 steps)"
    assert result.history["epoch"].tolist() == [1] * 10 + [2] * 10 + [3] * 10
    assert result.history["epoch"].dtype == np.int64
    assert result.history["loss"][10:20].tolist() != result.history["loss"][:10].tolist()


def test_each_pass_sees_every_batch_in_order():
    """Every epoch takes the whole data again, from its first batch; records carry the epoch."""
    trainer = sl.Trainer(fitting(), data=Restarting([1.0, 2.0, 3.0]), epochs=2)
    records = list(trainer.iterate())
    assert [(r.step, r.epoch) for r in records] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]
    assert trainer.result.status == "exhausted"


def test_without_epochs_nothing_changes():
    """No epochs: one pass, no epoch column, records without an epoch."""
    trainer = sl.Trainer(fitting(), data=[1.0, 2.0])
    records = list(trainer.iterate())
    assert [r.epoch for r in records] == [None, None]
    assert "epoch" not in trainer.history and trainer.result.stop_reason == (
        "data exhausted after 2 steps"
    )
    assert sl.StepRecord(step=1, loss=0.0).epoch is None


def test_epoch_hooks_fire_around_the_steps_of_each_epoch():
    """on_epoch_begin before the epoch's first step_begin, on_epoch_end after its last step_end."""
    events = Events()
    sl.Trainer(fitting(), [events], data=[1.0, 2.0], epochs=2).run()
    assert events.events == [
        ("epoch_begin", 1, 0),
        ("step_begin", 1, 0),
        ("step_end", 1, 1),
        ("step_begin", 2, 1),
        ("step_end", 2, 1),
        ("epoch_end", 1, 2),
        ("epoch_begin", 2, 2),
        ("step_begin", 3, 2),
        ("step_end", 3, 2),
        ("step_begin", 4, 3),
        ("step_end", 4, 2),
        ("epoch_end", 2, 4),
    ]


def test_a_criterion_ends_the_run_before_the_epochs_do():
    """MaxSteps(15) on 10 x 3: the run stops in epoch 2, which gets no on_epoch_end."""
    events = Events()
    result = sl.Trainer(fitting(), [events, sl.MaxSteps(15)], data=list(range(10)), epochs=3).run()
    assert (result.steps, result.status) == (15, "budget")
    assert [e for e in events.events if e[0].startswith("epoch")] == [
        ("epoch_begin", 1, 0),
        ("epoch_end", 1, 10),
        ("epoch_begin", 2, 10),
    ]


def test_a_stop_at_an_epochs_last_step_still_ends_the_epoch():
    """A stop at the last step of an epoch: on_epoch_end runs, the next epoch does not begin."""
    events = Events()
    result = sl.Trainer(fitting(), [events, sl.MaxSteps(10)], data=list(range(10)), epochs=3).run()
    assert result.steps == 10
    assert [e for e in events.events if e[0].startswith("epoch")] == [
        ("epoch_begin", 1, 0),
        ("epoch_end", 1, 10),
    ]


def test_pieces_carry_on_inside_an_epoch():
    """run(7), run(7), run() equals one run(): same history, each epoch begun and ended once."""
    whole_events, piece_events = Events(), Events()
    whole = sl.Trainer(fitting(), [whole_events], data=list(range(10)), epochs=2)
    whole.run()
    split = sl.Trainer(fitting(), [piece_events], data=list(range(10)), epochs=2)
    assert split.run(max_steps=7).status == "budget"
    assert split.run(max_steps=7).status == "budget"
    assert split.run().status == "exhausted"
    assert split.history == whole.history
    assert piece_events.events == whole_events.events


@given(
    st.sampled_from(["list", "iterable", "batches"]),
    st.integers(1, 9),
    st.integers(1, 4),
    st.integers(2, 12),
    st.integers(1, 3),
    st.one_of(st.none(), st.integers(1, 40)),
)
def test_fused_calls_equal_step_by_step_across_epochs(kind, count, epochs, per_call, n, stop_at):
    """Random batch counts, epochs, steps_per_call and a stopping criterion: the fused run's
    history, stop, epoch hooks, variables and every(epochs=n) steps (with live variables) equal
    those of steps_per_call=1; the schedule fires at the last step of every n-th epoch."""
    outcomes = []
    for k in (1, per_call):
        strategy, events = fitting(), Events()
        live = Live(sl.every(epochs=n))
        criteria = [] if stop_at is None else [sl.MaxSteps(stop_at)]
        trainer = sl.Trainer(
            strategy,
            [events, live, *criteria],
            data=make_data(kind, count),
            epochs=epochs,
            steps_per_call=k,
        )
        result = trainer.run()
        outcomes.append(
            (
                result.steps,
                result.stop_reason,
                trainer.history,
                events.events,
                live.seen,
                float(strategy.params["x"]),
            )
        )
    assert outcomes[0] == outcomes[1]
    steps, _, history, _, seen, _ = outcomes[0]
    assert steps == min(count * epochs, stop_at or count * epochs)
    assert history["epoch"].tolist() == [1 + i // count for i in range(steps)]
    assert [s for s, _ in seen] == [
        e * count for e in range(n, epochs + 1, n) if e * count <= steps
    ]


def test_every_n_epochs_drives_loggers_and_checkpoints(tmp_path):
    """every(epochs=2) on 10 x 5: a CSVLogger writes steps 20 and 40, a Checkpoint saves there
    (and at the end)."""
    csv = tmp_path / "log.csv"
    saver = sl.Checkpoint(tmp_path / "ckpt", every=sl.every(epochs=2), keep=10)
    trainer = sl.Trainer(
        fitting(),
        [sl.CSVLogger(str(csv), every=sl.every(epochs=2)), saver],
        data=list(range(10)),
        epochs=5,
        steps_per_call=4,
    )
    trainer.run()
    rows = csv.read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["20", "40"]
    assert sl.checkpoint.read_index(saver.directory)["kept"] == [20, 40, 50]


def test_an_epoch_schedule_needs_a_trainer_with_epochs():
    with pytest.raises(ValueError, match=r"callbacks\[0\] .* acts every\(epochs=2\), but this "):
        sl.Trainer(fitting(), [sl.PrintLogger(every=sl.every(epochs=2))], data=[1.0])
    with pytest.raises(RuntimeError, match=r"every\(epochs=3\) acts at the ends of epochs"):
        sl.every(epochs=3).fires(1)


@pytest.mark.parametrize(
    ("epochs", "error", "message"),
    [
        (0, ValueError, "epochs must be an int >= 1, got 0"),
        (-1, ValueError, "epochs must be an int >= 1, got -1"),
        (1.5, TypeError, "epochs must be an int, got 1.5"),
        (True, TypeError, "epochs must be an int, got True"),
        ("3", TypeError, "epochs must be an int, got '3'"),
    ],
)
def test_bad_epochs_are_named(epochs, error, message):
    with pytest.raises(error, match=message):
        sl.Trainer(fitting(), data=[1.0], epochs=epochs)


def test_bad_data_for_epochs_is_named_when_the_trainer_is_built():
    with pytest.raises(TypeError, match=r"data is a generator, an iterator that makes one pass"):
        sl.Trainer(fitting(), data=(float(i) for i in range(3)), epochs=2)
    with pytest.raises(ValueError, match=r"epochs=2 needs data"):
        sl.Trainer(fitting(), [sl.MaxSteps(3)], epochs=2)
    with pytest.raises(ValueError, match=r"data has no batches, so epochs=2 would do no step"):
        sl.Trainer(fitting(), data=[], epochs=2)
    one_pass = sl.Trainer(fitting(), data=(float(i) for i in range(3)), epochs=1).run()
    assert (one_pass.steps, one_pass.status) == (3, "exhausted")


def test_data_that_does_not_restart_is_an_error_in_the_second_epoch():
    trainer = sl.Trainer(fitting(), data=Shared([1.0, 2.0, 3.0]), epochs=2)
    with pytest.raises(
        ValueError, match=r"no batch in epoch 2, though epoch 1 had 3: iter\(data\)"
    ):
        trainer.run()
    assert trainer.step == 3 and trainer.result.status == "error"


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: sl.every(epochs=0), ValueError, "every epochs must be an int >= 1"),
        (lambda: sl.every(), TypeError, "exactly one of them"),
        (lambda: sl.every(3, epochs=2), TypeError, "exactly one of them"),
    ],
)
def test_bad_epoch_schedules_are_named(build, error, message):
    with pytest.raises(error, match=message):
        build()


def test_shuffled_batches_take_their_own_epoch_order():
    """sl.batches(shuffle=seed): epoch e of the Trainer is the Batches' epoch e - 1."""
    seen = []
    data = sl.batches(np.arange(6.0), batch_size=2, shuffle=7)

    def loss_and_grad(x, batch):
        seen.append(batch.tolist())
        return (x - batch.mean()) ** 2, 2 * (x - batch.mean())

    sl.Trainer(GradientDescent(loss_and_grad, 0.0, learning_rate=0.1), data=data, epochs=3).run()
    assert seen == [b.tolist() for e in range(3) for b in data.epoch(e)]


def test_describe_mentions_the_epochs():
    text = sl.Trainer(fitting(), data=[1.0, 2.0], epochs=4).describe()
    assert text.splitlines()[0] == "Trainer(GradientDescent, data=list of 2 batches, epochs=4)"


@given(
    st.sampled_from(["list", "iterable", "batches"]),
    st.integers(1, 29),
    st.integers(1, 8),
    st.integers(1, 4),
)
def test_a_run_resumed_mid_epoch_equals_one_run(kind, crash_at, every, per_call):
    """Died at any step of 10 batches x 3 epochs, restored into a fresh Trainer from the last
    checkpoint, the run ends as an uninterrupted one: same history (epochs too), x, epoch hooks
    (a checkpoint taken at an epoch's last step runs its on_epoch_end after the restore)."""
    folder = tempfile.mkdtemp()
    reference, reference_events = fitting(), Events()
    sl.Trainer(reference, [reference_events], data=make_data(kind, 10), epochs=3).run()
    expected = sl.Trainer(fitting(), data=make_data(kind, 10), epochs=3).run()

    saver = sl.Checkpoint(folder, every=every)
    first = sl.Trainer(
        fitting(),
        [Events(), RaiseAt(crash_at), saver],
        data=make_data(kind, 10),
        epochs=3,
        steps_per_call=per_call,
    )
    with pytest.raises(RuntimeError, match=f"died at step {crash_at}"):
        first.run()
    strategy, events = fitting(), Events()
    second = sl.Trainer(
        strategy, [events, saver], data=make_data(kind, 10), epochs=3, steps_per_call=per_call
    )
    restored = second.restore(folder) or 0
    assert restored == (crash_at - 1) // every * every
    result = second.run()
    assert (result.steps, result.stop_reason) == (expected.steps, expected.stop_reason)
    assert second.history == expected.history
    assert float(strategy.params["x"]) == float(reference.params["x"])
    assert events.ends == 3
    wanted = [e for e in reference_events.events if e[0].startswith("epoch") and e[2] >= restored]
    assert [e for e in events.events if e[0].startswith("epoch")] == wanted


def test_a_checkpoint_at_an_epochs_end_runs_its_on_epoch_end_after_the_restore(tmp_path):
    """Saved at step 10 (the end of epoch 1), died in on_epoch_end(1): the restored run ends
    epoch 1 first, then runs epochs 2 and 3."""

    class DieAtEpochEnd(sl.Callback):
        def on_epoch_end(self, trainer, epoch):
            raise RuntimeError("died at the end of epoch 1")

    first = sl.Trainer(
        fitting(),
        [Events(), DieAtEpochEnd(), sl.Checkpoint(tmp_path, every=5)],
        data=list(range(10)),
        epochs=3,
    )
    with pytest.raises(RuntimeError, match="died at the end of epoch 1"):
        first.run()
    events = Events()
    second = sl.Trainer(
        fitting(), [events, sl.Checkpoint(tmp_path, every=5)], data=list(range(10)), epochs=3
    )
    assert second.restore(tmp_path) == 10 and events.ends == 0
    second.run()
    epoch_events = [e for e in events.events if e[0].startswith("epoch")]
    assert epoch_events[:2] == [("epoch_end", 1, 10), ("epoch_begin", 2, 10)]
    assert events.ends == 3 and second.history["epoch"].tolist() == [1] * 10 + [2] * 10 + [3] * 10


def test_checkpoints_of_the_other_kind_are_refused(tmp_path):
    sl.Trainer(fitting(), [sl.Checkpoint(tmp_path, every=2)], data=[1.0, 2.0], epochs=2).run()
    plain = sl.Trainer(fitting(), [sl.Checkpoint(tmp_path, every=2)], data=[1.0, 2.0])
    with pytest.raises(ValueError, match="saved by a Trainer with epochs and this one has none"):
        plain.restore(tmp_path)
