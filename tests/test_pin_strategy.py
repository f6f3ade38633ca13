"""StepStrategy.check's messages and run_steps_in_python: target gradients kept per step, a
strategy that stops itself, and the flags of a call that neither stopped nor ran out."""

import numpy as np
import pytest

from steploop.criteria_program import CriteriaProgram
from steploop.strategy import StepOutput, StepStrategy, run_steps_in_python


class NoBatch(StepStrategy):
    def step(self):
        return StepOutput(loss=1.0)


class NeedsBatch(StepStrategy):
    def step(self, batch, scale):
        return StepOutput(loss=1.0)


def test_check_says_how_step_will_be_called():
    with pytest.raises(TypeError) as caught:
        NoBatch().check(True)
    assert str(caught.value) == (
        "NoBatch.step() cannot be called as step(batch), since the Trainer has data"
    )
    with pytest.raises(TypeError) as caught:
        NeedsBatch().check(False)
    assert str(caught.value) == "NeedsBatch.step(batch, scale) cannot be called as step()"


class Counting(StepStrategy):
    """Step k has loss k, gradient k for ``w`` and gradient 10 k for target ``aux``; it stops
    itself after step ``last``."""

    reports_gradients = True

    def __init__(self, last=None):
        self.k = 0
        self.last = last
        self.asked = []

    def step(self, batch=None):
        self.k += 1
        return StepOutput(
            loss=float(self.k),
            gradients={"w": float(self.k)},
            target_gradients={"aux": {"w": 10.0 * self.k}},
        )

    def stop_after(self, step, values):
        self.asked.append(step)
        return self.last is not None and step >= self.last


def test_every_steps_target_gradients_are_kept_in_rows():
    result = run_steps_in_python(Counting(), 3, 1, CriteriaProgram([]), None, True)
    assert result.steps == 3
    assert result.output.loss.tolist() == [1.0, 2.0, 3.0]
    assert result.output.gradients["w"].tolist() == [1.0, 2.0, 3.0]
    assert result.output.target_gradients["aux"]["w"].tolist() == [10.0, 20.0, 30.0]
    assert result.stopped is False and result.exhausted is False


def test_one_step_calls_stack_one_row():
    result = run_steps_in_python(Counting(), 1, 1, CriteriaProgram([]), None, True)
    assert result.output.gradients["w"].tolist() == [1.0]
    assert result.output.target_gradients["aux"]["w"].tolist() == [10.0]


def test_a_strategy_that_stops_itself_is_asked_with_each_steps_number():
    strategy = Counting(last=6)
    result = run_steps_in_python(strategy, 10, 4, CriteriaProgram([]), None, False)
    assert strategy.asked == [4, 5, 6]
    assert (result.steps, result.stopped, result.exhausted) == (3, True, False)
    assert np.asarray(result.output.loss).tolist() == [1.0, 2.0, 3.0]
