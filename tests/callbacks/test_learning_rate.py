"""LearningRateScheduler: the rate of each step is fn(step), exactly, in plain and fused calls."""

import re

import numpy as np
import pytest

import steploop as sl
from steploop.numpy import GradientDescent
from tests.scripted import Scripted


def quadratic():
    return GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.01)


def by_hand(rates):
    x = 0.0
    for rate in rates:
        x -= rate * 2 * (x - 4)
    return x


def step_rate(step):
    return 0.3 if step < 5 else (0.1 if step < 9 else 0.05)


@pytest.mark.parametrize("k", [1, 3, 16])
@pytest.mark.parametrize("changes_at", [None, sl.at(5, 9)])
def test_each_step_uses_fn_of_its_step(k, changes_at):
    """History column lr is fn(step) per step; x equals the update by hand with those rates."""
    gd = quadratic()
    trainer = sl.Trainer(gd, [sl.LearningRateScheduler(step_rate, changes_at)], steps_per_call=k)
    trainer.run(max_steps=12)
    rates = [step_rate(step) for step in range(1, 13)]
    assert trainer.history["lr"].tolist() == rates
    assert float(gd.params["x"]) == by_hand(rates)


def test_fused_calls_end_only_where_the_rate_changes():
    """With changes_at, a fused call ends after the step before each change, and nowhere else."""
    scheduler = sl.LearningRateScheduler(step_rate, sl.at(5, 9))
    assert [scheduler.next_sync_step(after, 16) for after in (0, 4, 8, 9)] == [4, 8, None, None]
    assert scheduler.next_sync_step(3, 1) is None and scheduler.next_sync_step(3, 2) == 4
    assert sl.LearningRateScheduler(step_rate).next_sync_step(7, 16) == 8


def test_a_resumed_run_sets_the_rate_of_its_next_step():
    """run() in pieces gives the rates of one run."""
    gd = quadratic()
    trainer = sl.Trainer(gd, [sl.LearningRateScheduler(step_rate, sl.at(5, 9))], steps_per_call=4)
    for budget in (3, 3, 6):
        trainer.run(max_steps=budget)
    assert trainer.history["lr"].tolist() == [step_rate(step) for step in range(1, 13)]


def test_a_change_outside_changes_at_is_named():
    """fn must keep its promise: a change at a step not in changes_at raises, naming the step."""
    trainer = sl.Trainer(quadratic(), [sl.LearningRateScheduler(step_rate, sl.at(5))])
    with pytest.raises(ValueError, match=re.escape(
        "LearningRateScheduler fn changes the learning rate at step 9 (0.1 -> 0.05), which is "
        "not in changes_at=at(5)"
    )):
        trainer.run(max_steps=12)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: sl.LearningRateScheduler(0.1), TypeError, "LearningRateScheduler fn must be"),
        (lambda: sl.LearningRateScheduler(step_rate, changes_at=5), TypeError,
         "LearningRateScheduler changes_at must be None or a steploop.Schedule (every(n), "
         "at(...)), got 5 (int)"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    """Bad arguments raise errors that name them."""
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_a_bad_rate_is_named_with_its_step():
    """fn(step) must be a number > 0: the error names the step."""
    trainer = sl.Trainer(quadratic(), [sl.LearningRateScheduler(lambda s: -1.0)])
    with pytest.raises(ValueError, match=re.escape("LearningRateScheduler fn(1) must be > 0")):
        trainer.run(max_steps=1)


def test_a_strategy_without_a_learning_rate_is_refused():
    """Refused when the Trainer is built, naming the capability."""
    with pytest.raises(TypeError, match=re.escape(
        "needs a strategy with a settable learning_rate "
        "(steploop.capabilities.LearningRateControl); Scripted has none"
    )):
        sl.Trainer(Scripted([1.0]), [sl.LearningRateScheduler(step_rate)])


def test_gradient_descent_learning_rate_is_checked():
    """GradientDescent.learning_rate is a checked property (LearningRateControl)."""
    gd = quadratic()
    gd.learning_rate = 0.5
    assert gd.learning_rate == 0.5
    with pytest.raises(ValueError, match=re.escape("learning_rate must be > 0, got 0.0")):
        gd.learning_rate = 0.0
    assert np.isclose(by_hand([0.5]), 4.0)
