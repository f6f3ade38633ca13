"""The core's Python loop of steps (``run_steps_in_python``, ``steps_per_call=K`` on a strategy
that is not ``Fusable``) gives what plain steps give, also for a strategy whose ``to_host`` takes
only its own values, and one that keeps resources for its step's callbacks (``release``)."""

import numpy as np
import pytest

import steploop as sl


class Box:
    """A framework's value: only its strategy's ``to_host`` opens it."""

    def __init__(self, value):
        self.value = value


class Boxed(sl.StepStrategy):
    """Halves x's distance to 4; reports its loss, gradient and a value in ``Box``es."""

    reports_gradients = True

    def __init__(self):
        self.x = 0.0

    def step(self, batch=None):
        loss, gradient = (self.x - 4.0) ** 2, 2.0 * (self.x - 4.0)
        self.x -= 0.25 * gradient
        return sl.StepOutput(
            loss=Box(loss), gradients={"x": Box(gradient)}, values={"x": Box(self.x)}
        )

    def to_host(self, tree):
        if isinstance(tree, dict):
            return {key: self.to_host(value) for key, value in tree.items()}
        if not isinstance(tree, Box):
            raise TypeError(f"Boxed.to_host takes a Box, got {type(tree).__name__}")
        return np.asarray(tree.value)

    def variables(self):
        return {"x": np.asarray(self.x)}


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_to_host_that_takes_only_its_own_values_is_not_given_numpy_arrays(steps_per_call):
    strategy = Boxed()
    trainer = sl.Trainer(strategy, [sl.MaxSteps(6)], steps_per_call=steps_per_call)
    result = trainer.run()
    assert (result.steps, result.status) == (6, "budget")
    assert trainer.history["loss"].tolist() == [16.0, 4.0, 1.0, 0.25, 0.0625, 0.015625]
    assert trainer.history["x"].tolist() == [2.0, 3.0, 3.5, 3.75, 3.875, 3.9375]
    assert float(trainer.last_record.gradients["x"]) == -0.25


class Tapes(sl.StepStrategy):
    """Keeps a resource from each step until ``release``; counts how many are held at once."""

    def __init__(self):
        self.held = 0
        self.most = 0
        self.released = 0

    def step(self, batch=None):
        self.held += 1
        self.most = max(self.most, self.held)
        return sl.StepOutput(loss=1.0)

    def release(self):
        self.released += self.held
        self.held = 0


@pytest.mark.parametrize("steps_per_call", [1, 8])
def test_a_python_loop_releases_each_step_before_the_next_as_plain_steps_do(steps_per_call):
    strategy = Tapes()
    sl.Trainer(strategy, [sl.MaxSteps(20)], steps_per_call=steps_per_call).run()
    assert strategy.most == 1  # never two steps' resources at once
    assert strategy.released == 20 and strategy.held == 0
