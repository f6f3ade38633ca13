"""StepStrategy defaults: NumPy conversion of nested values, arity check, no-op release."""

import numpy as np
import pytest

import steploop as sl


class Plain(sl.StepStrategy):
    def step(self):
        return sl.StepOutput(loss=1.0)


def test_defaults():
    strategy = Plain()
    strategy.release()  # the default release is a no-op: it sets nothing, the strategy steps on
    assert vars(strategy) == {} and strategy.step() == sl.StepOutput(loss=1.0)
    assert strategy.variables() == {}
    assert strategy.reports_gradients is False
    converted = strategy.to_host({"a": [1, 2], "b": {"c": 3.0}})
    assert isinstance(converted["a"], np.ndarray) and converted["b"]["c"] == 3.0


def test_check_compares_step_with_how_the_trainer_calls_it():
    Plain().check(takes_batch=False)
    with pytest.raises(TypeError, match=r"Plain\.step\(\) cannot be called as step\(batch\)"):
        Plain().check(takes_batch=True)


def test_step_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        sl.StepStrategy()
