"""run_steps_in_python: a call whose first step's criterion raises hands the Trainer no reason of
the strategy's own to stop, so the run fails with the criterion's error."""

import pytest

import steploop as sl
from tests.test_python_loop import FailsAt, StopsAt


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_criterion_that_raises_at_a_calls_first_step_fails_the_run_with_its_error(
    steps_per_call,
):
    strategy = StopsAt(last=None)  # it may stop itself (stop_after), but never does
    trainer = sl.Trainer(strategy, [sl.MaxSteps(10), FailsAt(1)], steps_per_call=steps_per_call)
    with pytest.raises(RuntimeError, match=r"^FailsAt raised at step 1$"):
        trainer.run()
    assert trainer.step == 1 and trainer.history["loss"].tolist() == [1.0]


class StopAfterRaises(StopsAt):
    """``StopsAt`` whose ``stop_after`` raises at step ``at``."""

    def __init__(self, at):
        super().__init__(last=None)
        self.at = at

    def stop_after(self, step, values):
        super().stop_after(step, values)
        if step == self.at:
            raise RuntimeError(f"stop_after raised at step {step}")
        return None


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_stop_after_that_raises_fails_the_run_with_its_error_after_its_step(steps_per_call):
    """In a call in Python as step by step: the step stays recorded, the run raises the
    strategy's own error, and no later step runs."""
    strategy = StopAfterRaises(at=3)
    trainer = sl.Trainer(strategy, [sl.MaxSteps(10)], steps_per_call=steps_per_call)
    with pytest.raises(RuntimeError, match=r"^stop_after raised at step 3$"):
        trainer.run()
    assert strategy.asked == [1, 2, 3] and strategy.k == 3
    assert trainer.step == 3 and trainer.history["loss"].tolist() == [1.0, 2.0, 3.0]
