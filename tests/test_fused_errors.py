"""A step that raises inside a call run in Python (a strategy that is not Fusable, or an eager one)
leaves the Trainer as a step-by-step run leaves it: the steps done before it are counted, in the
history, seen by the callbacks, then the error is raised and the next run goes on from there."""

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from tests.helpers import Recorder


class FailsAt(sl.StepStrategy):
    """Loss 1, 2, 3, ... for each step it does; the step numbered ``at`` raises ``error`` once."""

    def __init__(self, at, error=RuntimeError):
        self.done = 0
        self.at = at
        self.error = error

    def step(self, batch=None):
        if self.done + 1 == self.at:
            self.at = None
            raise self.error(f"step {self.done + 1} failed")
        self.done += 1
        return sl.StepOutput(loss=float(self.done))


def outcome(at, per_call, error=RuntimeError, criteria=()):
    strategy, events = FailsAt(at, error), []
    trainer = sl.Trainer(
        strategy, [*criteria, sl.MaxSteps(12), Recorder(events)], steps_per_call=per_call
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as raised:
            trainer.run()
    failed = (str(raised.value), trainer.step, strategy.done, trainer.history["loss"].tolist())
    seen = list(events)
    result = trainer.run()  # carries on from the step that failed
    finished = (result.steps, trainer.step, trainer.history["loss"].tolist(), events[len(seen) :])
    return failed, seen, finished


@given(st.integers(1, 12), st.integers(2, 8))
def test_a_step_raising_in_a_call_in_python_leaves_what_a_step_by_step_run_leaves(at, per_call):
    expected = outcome(at, 1)
    assert outcome(at, per_call) == expected
    failed, events, _ = expected
    assert failed[1:3] == (at - 1, at - 1)  # the steps before it, counted
    assert events[-3:] == [
        ("cb", "step_begin", at),
        ("cb", "error", "RuntimeError"),
        ("cb", "run_end", "error"),
    ]


def test_an_interrupt_inside_a_call_keeps_the_steps_before_it():
    failed, _, finished = outcome(4, 8, KeyboardInterrupt)
    assert failed == ("step 4 failed", 3, 3, [1.0, 2.0, 3.0])
    assert finished[:3] == (12, 12, [float(n) for n in range(1, 13)])


class BrokenBelow(sl.LossBelow):
    """An array-form criterion whose test raises at step 3."""

    def test(self, ops, state, q):
        if q.step == 3:
            raise ValueError("criterion broke")
        return super().test(ops, state, q)


@pytest.mark.parametrize("per_call", [1, 8])
def test_a_criterion_raising_after_a_step_leaves_that_step_recorded(per_call):
    strategy = FailsAt(None)
    trainer = sl.Trainer(strategy, [BrokenBelow(0.5), sl.MaxSteps(6)], steps_per_call=per_call)
    with pytest.raises(ValueError, match="criterion broke"):
        trainer.run()
    assert (trainer.step, strategy.done) == (3, 3)
    assert trainer.history["loss"].tolist() == [1.0, 2.0, 3.0]


class StepAtBegin(sl.Callback):
    """Records the Trainer's step count as each step begins (it needs the Trainer itself)."""

    needs_live_state = False

    def __init__(self):
        self.seen = []

    def on_step_begin(self, trainer, step):
        self.seen.append((step, trainer.step))


def test_the_failing_steps_begin_hook_gets_the_trainer_at_the_steps_before_it():
    begins = StepAtBegin()
    trainer = sl.Trainer(FailsAt(3), [sl.MaxSteps(6), begins], steps_per_call=4)
    with pytest.raises(RuntimeError, match="step 3 failed"):
        trainer.run()
    assert begins.seen == [(1, 0), (2, 1), (3, 2)]
