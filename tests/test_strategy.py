"""StepStrategy: a narrow contract (step, to_host, reports_gradients, variables, check) and
optional capabilities the Trainer recognises by their methods (Protocols)."""

import attrs
import numpy as np
import pytest

import steploop as sl


class Plain(sl.StepStrategy):
    def step(self):
        return sl.StepOutput(loss=1.0)


def test_defaults():
    strategy = Plain()
    assert strategy.step() == sl.StepOutput(loss=1.0)
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


def test_capabilities_are_recognised_by_their_methods():
    """A strategy with only step has no optional capability; one with the methods has it."""
    from steploop.capabilities import Checkpointable, DataAware, Fusable, Releasing, StopsItself

    protocols = (Checkpointable, DataAware, Fusable, Releasing, StopsItself)
    assert [isinstance(Plain(), p) for p in protocols] == [False] * 5

    class Full(Plain):
        ready_to_fuse = True

        def save(self, prefix): ...
        def restore(self, prefix): ...
        def prepare_data(self, data): ...
        def data_from(self, data, position): ...
        def run_steps(self, count, first_step, stopper, feed, keep): ...
        def release(self): ...
        def stop_after(self, step, values): ...

    assert [isinstance(Full(), p) for p in protocols] == [True] * 5


def test_a_strategy_without_capabilities_still_fuses_and_releases_nothing():
    """Fused calls of a plain strategy run its step in a Python loop: same history."""
    one, fused = (sl.Trainer(Plain(), [sl.MaxSteps(7)], steps_per_call=k) for k in (1, 4))
    assert one.run().steps == fused.run().steps == 7
    assert one.history == fused.history
    assert "Release(Plain)" in fused.describe()


def test_a_step_output_holds_what_it_was_given_and_a_fresh_dict_of_values_otherwise():
    full = sl.StepOutput(2.0, {"x": 1.0}, {"t": {"x": 3.0}}, {"lr": 0.1})
    assert (full.loss, full.gradients, full.target_gradients, full.values) == (
        2.0,
        {"x": 1.0},
        {"t": {"x": 3.0}},
        {"lr": 0.1},
    )
    bare, other = sl.StepOutput(loss=2.0), sl.StepOutput(2.0, values=None)
    assert bare.values == other.values == {} and bare.values is not other.values
    assert (bare.gradients, bare.target_gradients) == (None, None)
    assert attrs.evolve(full, loss=3.0) == sl.StepOutput(
        3.0, *list(attrs.astuple(full, recurse=False))[1:]
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bare.loss = 1.0
