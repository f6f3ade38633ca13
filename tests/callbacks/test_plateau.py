"""ReduceLROnPlateau: the step where the rate changes and its value, cooldown counting, the
floor, published monitors, checkpoints, and fused calls equal to plain steps."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop.numpy import GradientDescent
from tests.scripted import Scripted


class ScriptedRate(Scripted):
    """Scripted losses, with a settable learning rate (LearningRateControl) that nothing uses."""

    learning_rate = 1.0


def rates(losses, plateau, k=1, values=None, callbacks=()):
    trainer = sl.Trainer(
        ScriptedRate(losses, values=values), [*callbacks, plateau], steps_per_call=k
    )
    trainer.run(max_steps=len(losses))
    return trainer.history["lr"].tolist()


@pytest.mark.parametrize("k", [1, 3, 16])
def test_the_rate_drops_after_patience_checks_without_improvement(k):
    """Best 4 at step 2; steps 3, 4 do not beat it: the rate halves from step 5; again from 9."""
    losses = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3]
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=2)
    assert rates(losses, plateau, k) == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]


@pytest.mark.parametrize("k", [1, 4])
def test_cooldown_ignores_exactly_that_many_checks(k):
    """cooldown=2: the 2 checks after a reduction never count (Keras' would ignore 1)."""
    losses = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3]
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    assert rates(losses, plateau, k) == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    flat = sl.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1)
    assert rates([1.0] * 6, flat, k) == [1, 1, 0.5, 0.5, 0.25, 0.25]  # Keras: halves every step


def test_min_delta_and_the_floor():
    """An improvement must exceed min_delta; the rate never goes below min_lr."""
    plateau = sl.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.5)
    assert rates([5, 4.6, 4.6], plateau) == [1, 1, 0.5]  # 4.6 is not 0.5 better than 5
    plateau = sl.ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05)
    assert rates([1.0] * 6, plateau, 4) == [1, 1, 0.1, 0.05, 0.05, 0.05]


def test_max_mode_on_a_reported_value():
    """monitor='acc' maximises (auto mode); an unknown name is a ValueError at step 1."""
    values = {"acc": [0.5, 0.6, 0.6, 0.6, 0.6]}
    plateau = sl.ReduceLROnPlateau(monitor="acc", factor=0.5, patience=2)
    assert plateau.mode == "max"
    assert rates([1.0] * 5, plateau, values=values) == [1, 1, 1, 1, 0.5]
    with pytest.raises(
        ValueError,
        match=re.escape(
            "ReduceLROnPlateau monitor='accuracy' is not among the step's values "
            "['acc'] (or 'loss')"
        ),
    ):
        rates([1.0] * 5, sl.ReduceLROnPlateau(monitor="accuracy"), values=values)


@pytest.mark.parametrize("k", [1, 5])
def test_a_published_monitor_is_checked_at_the_evaluated_steps_only(k):
    """val_loss every 2 steps [3, 3, 3, 2]: patience 2 counts evaluations, drop after step 6."""
    val = iter([3.0, 3.0, 3.0, 2.0, 2.0])
    evaluate = sl.Evaluate([0], every=2, fn=lambda batch: {"loss": next(val)})
    plateau = sl.ReduceLROnPlateau("val_loss", patience=2)
    got = rates([1.0] * 10, plateau, k, callbacks=[evaluate])
    assert got == pytest.approx([1] * 6 + [0.1] * 4, rel=0, abs=0)
    assert plateau.next_sync_step(10, 16) == 12  # step 10 did not improve: one evaluation away


def test_fused_calls_end_at_the_first_step_a_reduction_could_happen():
    """patience 3, fresh: step 3; during a cooldown of 2: 2 + 3 checks away."""
    plateau = sl.ReduceLROnPlateau(patience=3, cooldown=2)
    assert (plateau.next_sync_step(0, 10), plateau.next_sync_step(0, 2)) == (3, None)
    plateau.set_state({"best": 1.0, "wait": 0, "cooldown": 2, "learning_rate": 0.5})
    assert plateau.next_sync_step(4, 10) == 9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sl.ReduceLROnPlateau(factor=1.0), "ReduceLROnPlateau factor must be > 0 and < 1"),
        (lambda: sl.ReduceLROnPlateau(factor=0), "ReduceLROnPlateau factor must be > 0 and < 1"),
        (
            lambda: sl.ReduceLROnPlateau(patience=-1),
            "ReduceLROnPlateau patience must be an int >= 0, got -1",
        ),
        (
            lambda: sl.ReduceLROnPlateau(cooldown=-2),
            "ReduceLROnPlateau cooldown must be an int >= 0, got -2",
        ),
        (lambda: sl.ReduceLROnPlateau(min_lr=-1e-3), "ReduceLROnPlateau min_lr must be"),
        (lambda: sl.ReduceLROnPlateau(min_delta=-1), "ReduceLROnPlateau min_delta must be"),
        (lambda: sl.ReduceLROnPlateau(mode="up"), "ReduceLROnPlateau mode must be 'min' or 'max'"),
    ],
)
def test_bad_arguments_are_named(call, message):
    """Each bad argument is a ValueError naming it."""
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_refused_without_a_learning_rate_and_beside_a_scheduler():
    """No LearningRateControl: TypeError naming it; with LearningRateScheduler: ValueError."""
    with pytest.raises(
        TypeError,
        match=re.escape(
            "needs a strategy with a settable learning_rate (steploop.capabilities."
            "LearningRateControl); Scripted has none"
        ),
    ):
        sl.Trainer(Scripted([1.0]), [sl.ReduceLROnPlateau()])
    scheduler = sl.LearningRateScheduler(lambda step: 0.1)
    with pytest.raises(ValueError, match="would both set the learning rate"):
        sl.Trainer(ScriptedRate([1.0]), [scheduler, sl.ReduceLROnPlateau()])
    with pytest.raises(ValueError, match="publishes after it"):
        sl.Trainer(
            ScriptedRate([1.0]), [sl.ReduceLROnPlateau("val_loss"), sl.Evaluate([0], fn=dict)]
        )


TARGETS = [4.0, 4.2, 3.9, 4.1, 4.0, 4.05, 3.95, 4.0, 4.02, 3.98, 4.0, 4.01, 3.99, 4.0, 4.0, 4.0]


def tracker():
    return GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=0.4)


def test_resume_mid_plateau_equals_an_uninterrupted_run(tmp_path):
    """Checkpoint at step 6 (after a reduction), restore into a new strategy (whose rate is the
    initial one): the rest of the run, its rates and its variables equal one run's."""

    def build(callbacks=()):
        gd = tracker()
        plateau = sl.ReduceLROnPlateau(factor=0.5, patience=1)
        return gd, sl.Trainer(gd, [plateau, *callbacks], data=TARGETS, steps_per_call=4)

    whole_gd, whole = build()
    whole.run()
    lr = whole.history["lr"]
    assert lr[5] < lr[0] and len(set(lr.tolist())) > 2  # reductions before and after step 6
    _, first = build([sl.Checkpoint(tmp_path, every=3)])
    first.run(max_steps=6)
    gd, resumed = build([sl.Checkpoint(tmp_path, every=3)])
    assert resumed.restore(tmp_path) == 6
    resumed.run()
    assert resumed.history == whole.history
    assert gd.params["x"].tobytes() == whole_gd.params["x"].tobytes()


@given(
    targets=st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=40),
    patience=st.integers(0, 4),
    cooldown=st.integers(0, 3),
    factor=st.floats(0.1, 0.9),
    k=st.integers(2, 12),
)
def test_fused_equals_step_by_step(targets, patience, cooldown, factor, k):
    """Any settings and steps_per_call: the rates, history and variables equal k=1's."""

    def go(steps_per_call):
        gd = tracker()
        plateau = sl.ReduceLROnPlateau(factor=factor, patience=patience, cooldown=cooldown)
        trainer = sl.Trainer(gd, [plateau], data=targets, steps_per_call=steps_per_call)
        trainer.run()
        return trainer.history, gd.params["x"].tobytes()

    plain, fused = go(1), go(k)
    assert plain[0] == fused[0] and plain[1] == fused[1]
    assert np.all(np.diff(plain[0]["lr"]) <= 0)
