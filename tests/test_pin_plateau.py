"""ReduceLROnPlateau: full argument messages, defaults, min_delta in max mode, the floor at
min_lr, the saved state, and where fused calls must end."""

import math

import pytest

import steploop as sl
from steploop.numpy import GradientDescent


def flat(learning_rate=0.1):
    """A loss of 1.0 at every step: it never improves after the first check."""
    return GradientDescent(lambda x: (1.0, 0.0 * x), 0.0, learning_rate=learning_rate)


def message(call, error):
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error", "expected"),
    [
        (
            {"monitor": 5},
            TypeError,
            "ReduceLROnPlateau monitor must be a non-empty str, got 5",
        ),
        (
            {"monitor": ""},
            TypeError,
            "ReduceLROnPlateau monitor must be a non-empty str, got ''",
        ),
        (
            {"factor": "half"},
            TypeError,
            "ReduceLROnPlateau factor must be a real number, got 'half' (str)",
        ),
        (
            {"factor": math.nan},
            ValueError,
            "ReduceLROnPlateau factor must be finite, got nan",
        ),
        (
            {"mode": "down"},
            ValueError,
            "ReduceLROnPlateau mode must be 'min' or 'max' (or 'auto': from the monitored name), "
            "got 'down'",
        ),
    ],
)
def test_bad_arguments_have_their_full_message(kwargs, error, expected):
    assert message(lambda: sl.ReduceLROnPlateau(**kwargs), error) == expected


def test_defaults_and_explicit_modes_read_back():
    assert repr(sl.ReduceLROnPlateau()) == (
        "ReduceLROnPlateau(monitor='loss', factor=0.1, patience=10, mode='min')"
    )
    assert sl.ReduceLROnPlateau(mode="min").mode == "min"
    assert sl.ReduceLROnPlateau("val_acc", mode="max").mode == "max"
    assert sl.ReduceLROnPlateau().get_state() == {
        "best": math.inf,
        "wait": 0,
        "cooldown": 0,
        "learning_rate": None,
    }


def test_min_delta_applies_in_max_mode():
    """Maximising a flat 1.0 with min_delta=0.5: no check after the first improves, so the rate
    halves after steps 3 and 5."""
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.5, mode="max")
    trainer = sl.Trainer(flat(), [plateau], steps_per_call=1)
    trainer.run(max_steps=6)
    assert trainer.history["lr"].tolist() == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]


def test_the_state_after_a_reduction_holds_the_new_rate():
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=2)
    sl.Trainer(flat(), [plateau], steps_per_call=1).run(max_steps=3)
    assert plateau.get_state() == {"best": 1.0, "wait": 0, "cooldown": 0, "learning_rate": 0.05}


def test_at_min_lr_the_count_goes_on_and_no_call_must_end():
    """Once the rate is at min_lr no reduction can happen: the count keeps growing (nothing
    restarts it) and next_sync_step asks no fused call to end."""
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.05)
    trainer = sl.Trainer(flat(), [plateau], steps_per_call=1)
    trainer.run(max_steps=4)
    assert trainer.history["lr"].tolist() == [0.1, 0.1, 0.05, 0.05]
    assert plateau.get_state() == {"best": 1.0, "wait": 2, "cooldown": 0, "learning_rate": 0.05}
    assert plateau.next_sync_step(4, 100) is None


def test_next_sync_step_is_the_earliest_possible_reduction_inside_the_window():
    plateau = sl.ReduceLROnPlateau(patience=3)
    assert plateau.next_sync_step(0, 3) == 3
    assert plateau.next_sync_step(0, 2) is None
    assert plateau.next_sync_step(10, 5) == 13


class Publishes(sl.Callback):
    """Publishes ``val_loss`` (a flat 1.0) every second step; at ``broken`` it publishes
    another name."""

    may_stop = False

    def __init__(self, broken=None):
        self.schedule = sl.every(2)
        self.broken = broken

    def provides(self, name):
        return name == "val_loss"

    def published_at(self, step):
        if step % 2:
            return None
        return {"val_other": 1.0} if step == self.broken else {"val_loss": 1.0}


def test_with_a_publisher_the_reduction_waits_for_its_checks():
    plateau = sl.ReduceLROnPlateau("val_loss", factor=0.5, patience=3)
    trainer = sl.Trainer(flat(), [Publishes(), plateau], steps_per_call=1)
    assert plateau.next_sync_step(0, 5) is None  # checks at 2 and 4 only
    assert plateau.next_sync_step(0, 6) == 6
    trainer.run(max_steps=10)
    # checks at 2 (best), 4, 6, 8: the third without improvement (8) halves the rate
    assert trainer.history["lr"].tolist() == [0.1] * 8 + [0.05] * 2


def test_a_published_result_without_the_monitor_names_the_callback():
    plateau = sl.ReduceLROnPlateau("val_loss")
    trainer = sl.Trainer(flat(), [Publishes(broken=4), plateau], steps_per_call=1)
    assert message(lambda: trainer.run(max_steps=6), ValueError) == (
        "ReduceLROnPlateau monitor='val_loss' is not among the step's values ['val_other'] "
        "(or 'loss')"
    )


def test_a_restored_rate_is_set_before_the_next_run_only():
    strategy = flat()
    plateau = sl.ReduceLROnPlateau(patience=100)
    plateau.set_state({"best": 1.0, "wait": 0, "cooldown": 0, "learning_rate": 0.02})
    trainer = sl.Trainer(strategy, [plateau], steps_per_call=1)
    trainer.run(max_steps=1)
    strategy.learning_rate = 0.3
    trainer.run(max_steps=1)
    assert trainer.history["lr"].tolist() == [0.02, 0.3]


def test_a_learning_rate_scheduler_beside_it_is_refused():
    def constant(step):
        return 0.1

    plateau = sl.ReduceLROnPlateau()
    scheduler = sl.LearningRateScheduler(constant)
    callbacks = [plateau, scheduler, sl.MaxSteps(3)]
    assert message(lambda: sl.Trainer(flat(), callbacks), ValueError) == (
        f"{plateau!r} and LearningRateScheduler(constant) would both set the learning rate (and "
        "log column 'lr'); use one of them"
    )


class PublishesLoss(sl.Callback):
    """Publishes the flat loss under the name ``loss`` at even steps only."""

    def provides(self, name):
        return name == "loss"

    def published_at(self, step):
        return {"loss": 1.0} if step % 2 == 0 else None


def test_loss_bound_to_a_publisher_is_checked_at_its_steps_only():
    """monitor='loss' read from a publisher of 'loss': checks at steps 2, 4, 6 only; with
    patience 1 the second and third checks each halve the rate (after steps 4 and 6)."""
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=1)
    trainer = sl.Trainer(flat(), [PublishesLoss(), plateau], steps_per_call=1)
    trainer.run(max_steps=7)
    assert trainer.history["lr"].tolist() == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025]


class ScoresItself(sl.ReduceLROnPlateau):
    """A plateau callback that publishes the quantity it monitors: a flat score of 1.0."""

    def provides(self, name):
        return name == "score"

    def published_at(self, step):
        return {"score": 1.0}


def test_a_callback_may_monitor_what_it_publishes_itself():
    """Listed once, it is its own publisher (not one listed after it): the flat score never
    improves after the first check, so with patience 2 the rate halves after steps 3 and 5."""
    plateau = ScoresItself("score", factor=0.5, patience=2)
    trainer = sl.Trainer(flat(), [plateau], steps_per_call=1)
    trainer.run(max_steps=6)
    assert trainer.history["lr"].tolist() == [0.1, 0.1, 0.1, 0.05, 0.05, 0.025]
