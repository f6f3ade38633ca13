"""Small objects the tests share: a quadratic NumPy strategy, a callback that logs hooks, the
non-finite guard cases every framework is checked against."""

import os
import signal

import pytest

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


def tf_quadratic(tf, keras, kind, lr, start=0.0, **options):
    """``(x, strategy)``: (x-4)**2 with SGD(lr) as a ``minimize``, ``tape`` or ``persistent``
    TensorFlow strategy (the persistent one also reports target ``z`` and value ``z``);
    ``options`` go to the strategy (``compile``, ``jit_compile``)."""
    from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep

    x = tf.Variable(start, name="x")
    opt = keras.optimizers.SGD(lr)
    if kind == "minimize":
        return x, MinimizeStep(lambda: (x - 4.0) ** 2, [x], opt, **options)
    if kind == "tape":
        return x, TapeStep(lambda: (x - 4.0) ** 2, opt, **options)

    def forward():
        z = x - 4.0
        return {"loss": z**2, "z": z, "values": {"z": z}}

    return x, PersistentTapeStep(forward, opt, **options)


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


class RaiseAt(sl.Callback):
    """Raises ``error`` (default: ``RuntimeError("died at step N")``) at the end of step ``step``,
    like a process dying there."""

    may_stop = False

    def __init__(self, step, error=None):
        self.step = step
        self.error = error

    def on_step_end(self, trainer, record):
        if record.step == self.step:
            raise self.error or RuntimeError(f"died at step {self.step}")


class Kill(sl.Callback):
    """SIGKILL this process at the end of step ``step`` (no clean-up of any kind runs)."""

    may_stop = False

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if record.step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def raised_message(error, call, *args, **kwargs):
    """The message of the ``error`` (exactly that type) ``call(*args, **kwargs)`` raises."""
    with pytest.raises(error) as raised:
        call(*args, **kwargs)
    assert type(raised.value) is error
    return str(raised.value)


def last_gradients(trainer):
    """The last record's gradient of ``x`` and its target gradients, as host floats."""
    record = trainer.last_record
    targets = record.target_gradients.items()
    return (
        float(record.gradients["x"]),
        {k: {n: float(g) for n, g in v.items()} for k, v in targets},
    )


class FailsToBegin(sl.Callback):
    """Raises ``RuntimeError("cannot begin")`` in ``on_run_begin`` of the runs numbered in
    ``runs`` (counted from 1)."""

    def __init__(self, runs):
        self.runs = runs
        self.count = 0

    def on_run_begin(self, trainer):
        self.count += 1
        if self.count in self.runs:
            raise RuntimeError("cannot begin")


def run_failing_around_one(trainer):
    """Three one-step runs of ``trainer`` built with ``FailsToBegin({1, 3})`` first: the first and
    the last fail to begin (each raising its error), the middle one runs."""
    for failing in (True, False, True):
        if failing:
            with pytest.raises(RuntimeError, match="cannot begin"):
                trainer.run(max_steps=1)
        else:
            trainer.run(max_steps=1)


def guard_codes(ops, flags, after):
    """``(bad, code, rolled-back code)`` from a framework's guard primitives (``GuardOps``)."""
    from steploop.nonfinite import first_bad, rolled_back

    bad, code = first_bad(ops, flags)
    return bad, code, rolled_back(ops, bad, after, code)


def guard_cases():
    """``(flags, after, expected)`` for every pattern of three flags and both ``after``; the
    expected ``guard_codes`` are the host guard's."""
    import itertools

    from steploop.nonfinite import HOST_GUARD

    for flags in itertools.product([False, True], repeat=3):
        for after in (False, True):
            yield flags, after, guard_codes(HOST_GUARD, flags, after)
