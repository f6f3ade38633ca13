"""Small objects the tests share: a quadratic NumPy strategy and a callback that logs hooks."""

import steploop as sl
from steploop.numpy import GradientDescent


def gradient_descent(loss_and_grad, start=0.0, learning_rate=0.1):
    """The NumPy strategy on ``loss_and_grad`` from ``start``."""
    return GradientDescent(loss_and_grad, start, learning_rate=learning_rate)


def quadratic(learning_rate=0.1, start=0.0):
    """Gradient descent on (x-4)**2, the article's problem, in NumPy."""
    return gradient_descent(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), start, learning_rate)


def batch_replay(seen):
    """A data-fed strategy whose loss is the batch itself; it appends every batch to ``seen``."""

    def loss_and_grad(x, batch):
        seen.append(batch)
        return x * 0.0 + batch, x * 0.0

    return gradient_descent(loss_and_grad)


class Recorder(sl.Callback):
    """Appends (label, hook, argument) for every hook to a shared list."""

    def __init__(self, events, label="cb"):
        self.events = events
        self.label = label

    def on_run_begin(self, trainer):
        self.events.append((self.label, "run_begin", trainer.step))

    def on_step_begin(self, trainer, step):
        self.events.append((self.label, "step_begin", step))

    def on_step_end(self, trainer, record):
        self.events.append((self.label, "step_end", record.step))

    def on_error(self, trainer, error):
        self.events.append((self.label, "error", type(error).__name__))

    def on_run_end(self, trainer, result):
        self.events.append((self.label, "run_end", result.status))
