"""A strategy that replays a given list of losses (and gradients), for exact criterion tests."""

import numpy as np

import steploop as sl


class Scripted(sl.StepStrategy):
    """Step i reports losses[i] (and gradient gradients[i] for variable 'w' when given)."""

    reports_gradients = True

    def __init__(self, losses, gradients=None, values=None):
        self.losses = list(losses)
        self.gradients = gradients
        self.values = values
        self.calls = 0

    def step(self):
        i = self.calls
        self.calls += 1
        gradients = None
        if self.gradients is not None:
            gradients = {"w": np.asarray(self.gradients[i], dtype=float)}
        values = {} if self.values is None else {k: v[i] for k, v in self.values.items()}
        return sl.StepOutput(loss=self.losses[i], gradients=gradients, values=values)
