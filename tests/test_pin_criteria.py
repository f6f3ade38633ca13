"""Criteria details: LossChangeBelow's strict tolerance, TimeLimit's saved time and reason, and
the in-graph stop of a strategy under on_nonfinite="stop"."""

import numpy as np
import pytest

import steploop as sl
from steploop.nonfinite import NonFinite, ReportsNonFinite
from steploop.strategy import StepOutput, StepStrategy
from tests.helpers import quadratic


class Falling(StepStrategy):
    """Its loss falls by exactly 0.5 a step: 0.5, 0.0, -0.5, ..."""

    def __init__(self):
        self.k = 0

    def step(self, batch=None):
        self.k += 1
        return StepOutput(loss=1.0 - 0.5 * self.k)


def test_a_change_equal_to_tol_is_not_below_it():
    result = sl.Trainer(Falling(), [sl.LossChangeBelow(0.5), sl.MaxSteps(5)]).run()
    assert (result.steps, result.stop_reason) == (5, "MaxSteps(5): reached 5 steps")
    result = sl.Trainer(Falling(), [sl.LossChangeBelow(0.75), sl.MaxSteps(5)]).run()
    assert (result.steps, result.stop_reason) == (
        2,
        "LossChangeBelow(0.75, patience=1): loss changed by less than 0.75 for 1 step(s) (last "
        "change 0.5 at step 2)",
    )


def test_a_restored_time_limit_already_spent_takes_no_step():
    limit = sl.TimeLimit(3)
    limit.set_state({"spent": 5.0})
    assert limit.spent == 5.0
    result = sl.Trainer(quadratic(), [limit, sl.MaxSteps(10)]).run()
    assert (result.steps, result.stop_reason) == (0, "TimeLimit(3s): 5s already spent")


def test_a_time_limit_says_the_time_spent_and_the_step():
    result = sl.Trainer(quadratic(), [sl.TimeLimit(1e-9), sl.MaxSteps(10)], steps_per_call=1).run()
    assert result.steps == 1
    assert result.stop_reason.startswith("TimeLimit(1e-09s): ")
    assert result.stop_reason.endswith("s spent by step 1")


class Guarded(ReportsNonFinite):
    def __init__(self, policy):
        self._policy = NonFinite.of("Guarded", policy)
        self._names = ("w",)


@pytest.mark.parametrize(("code", "stops"), [(0, False), (1, True), (2, True), (-1, True)])
def test_under_stop_the_in_graph_stop_fires_on_any_nonzero_code(code, stops):
    output = StepOutput(loss=1.0, values={"nonfinite": np.int32(code)})
    assert bool(Guarded("stop")._graph_stop(output)) is stops


@pytest.mark.parametrize("policy", ["apply", "skip", "rollback"])
def test_other_policies_have_no_in_graph_stop(policy):
    output = StepOutput(loss=1.0, values={"nonfinite": np.int32(1)})
    assert Guarded(policy)._graph_stop(output) is None
