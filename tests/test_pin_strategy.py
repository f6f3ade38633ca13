"""StepStrategy.check's messages and run_steps_in_python: target gradients kept per step, a
strategy that stops itself, the flags of a call that neither stopped nor ran out, the gradients
of LAST and gradient-free calls, an exhausted call; fused_or_plain's compiled call and its one
plain step; checked_loss's float path and message; the Python loop's message for a value named
like a history column."""

import numpy as np
import pytest

from steploop.criteria_program import CriteriaProgram
from steploop.python_loop import fused_or_plain, run_steps_in_python
from steploop.strategy import LAST, BatchCursor, FusedResult, StepOutput, StepStrategy, checked_loss


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
        if self.last is not None and step >= self.last:
            return f"stopped itself after step {step}"
        return None


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
    assert result.strategy_stop == "stopped itself after step 6"
    assert np.asarray(result.output.loss).tolist() == [1.0, 2.0, 3.0]


def test_a_last_call_holds_the_last_steps_gradients_and_target_gradients_alone():
    """Under keep_gradients=LAST the result holds step 3's gradients, with no row axis."""
    result = run_steps_in_python(Counting(), 3, 1, CriteriaProgram([]), None, LAST)
    assert result.last_gradients is True
    assert {k: float(v) for k, v in result.output.gradients.items()} == {"w": 3.0}
    targets = result.output.target_gradients
    assert {t: {k: float(v) for k, v in g.items()} for t, g in targets.items()} == {
        "aux": {"w": 30.0}
    }


def test_a_call_that_keeps_no_gradients_returns_none():
    """keep_gradients=False: no gradients and no target gradients, though the strategy reports
    them."""
    result = run_steps_in_python(Counting(), 2, 1, CriteriaProgram([]), None, False)
    assert result.output.loss.tolist() == [1.0, 2.0]
    assert result.output.gradients is None
    assert result.output.target_gradients is None
    assert result.last_gradients is False


def test_a_call_on_exhausted_data_returns_no_loss_row():
    """No batch left: zero steps, exhausted, and an empty loss array (no padding row)."""
    result = run_steps_in_python(Counting(), 3, 1, CriteriaProgram([]), BatchCursor(iter([])), True)
    assert (result.steps, result.exhausted, result.stopped) == (0, True, False)
    assert np.asarray(result.output.loss).shape == (0,)


class Loops:
    """Compiled loops whose every call returns ``chunk`` (``None``: they cannot start), logging
    the arguments of each."""

    def __init__(self, chunk):
        self.chunk, self.calls = chunk, []

    def run(self, *arguments):
        self.calls.append(arguments)
        return self.chunk


def test_fused_or_plain_returns_the_compiled_call_and_takes_no_plain_step():
    """A call the loops ran is returned as is, after one call with the arguments as given; the
    strategy takes no plain step."""
    strategy, stopper, feed = Counting(), CriteriaProgram([]), BatchCursor(iter(["a"]))
    chunk = FusedResult(steps=4, output=StepOutput(loss=np.zeros(4)))
    loops = Loops(chunk)
    assert fused_or_plain(strategy, loops, 4, 7, stopper, feed, LAST) is chunk
    assert loops.calls == [(4, 7, stopper, feed, LAST)]
    assert (strategy.k, feed.next()) == (0, "a")


def test_fused_or_plain_takes_one_plain_step_when_the_loops_cannot_start():
    """The loops return None (the next batch cannot be stacked): one plain step instead of the 3
    asked, numbered first_step, on the next batch, its gradients kept as asked."""
    strategy, feed = Counting(), BatchCursor(iter(["a", "b", "c"]))
    loops = Loops(None)
    result = fused_or_plain(strategy, loops, 3, 5, CriteriaProgram([]), feed, True)
    assert len(loops.calls) == 1
    assert (result.steps, result.stopped, result.exhausted) == (1, False, False)
    assert result.output.loss.tolist() == [1.0]
    assert result.output.gradients["w"].tolist() == [1.0]
    assert (strategy.asked, feed.next()) == ([5], "b")


class Logged(StepStrategy):
    """Logs every tree it converts to the host."""

    def __init__(self):
        self.converted = []

    def step(self):
        return StepOutput(loss=1.0)

    def to_host(self, tree):
        self.converted.append(tree)
        return super().to_host(tree)


def test_a_float_loss_is_taken_as_is_without_to_host():
    """checked_loss returns a Python float loss itself and never converts it."""
    strategy = Logged()
    assert checked_loss(strategy, StepOutput(loss=2.5)) == 2.5
    assert strategy.converted == []


def test_a_loss_that_is_no_number_is_refused_with_its_type():
    with pytest.raises(TypeError) as caught:
        checked_loss(NoBatch(), StepOutput(loss="abc"))
    assert str(caught.value) == "NoBatch.step returned a loss of type str that is not a number"


class ReportsEpoch(StepStrategy):
    """Reports a value named 'epoch' (a history column) at every step."""

    def step(self, batch=None):
        return StepOutput(loss=1.0, values={"epoch": 2.0})


def test_a_python_loop_names_the_strategys_step_for_a_value_named_like_a_column():
    """A value named 'epoch' in a call of steps in Python: the message a plain step gives,
    naming the strategy's step."""
    chunk = run_steps_in_python(ReportsEpoch(), 3, 1, CriteriaProgram([]), None, False)
    assert (chunk.steps, type(chunk.error)) == (0, ValueError)
    assert str(chunk.error) == (
        "ReportsEpoch.step: a value is named 'epoch', a column the history keeps itself; rename "
        "it (values may not be named 'step', 'loss' or 'epoch')"
    )
