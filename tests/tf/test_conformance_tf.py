"""The TensorFlow strategies pass every conformance check, one test per check: ``TapeStep``,
``MinimizeStep`` and ``PersistentTapeStep`` compiled, ``TapeStep`` and ``PersistentTapeStep``
eager, ``TapeStep`` with data and under each ``on_nonfinite`` policy."""

import math

import pytest

from steploop.testing import NonFiniteCase, parametrize_checks

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep  # noqa: E402

BATCHES = [1.0, 2.0, 3.0, 2.5, 1.5, 4.0, 3.5, 0.5]


def tape(compile=True):
    x = tf.Variable(0.0, name="x")
    return TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1), compile=compile)


def minimize():
    w = tf.Variable([0.0, 1.0], name="w")
    return MinimizeStep(
        lambda: tf.reduce_sum((w - [4.0, -2.0]) ** 2), [w], keras.optimizers.Adam(0.1)
    )


def persistent(compile=True):
    x = tf.Variable(0.0, name="x")

    def forward():
        z = x - 4.0
        return {"loss": z**2, "z": z, "values": {"z": z}}

    return PersistentTapeStep(forward, keras.optimizers.SGD(0.1, momentum=0.9), compile=compile)


def fitted(policy="apply"):
    """x follows the batches (momentum, so the optimizer has state to save)."""
    x = tf.Variable(0.0, name="x")
    return TapeStep(
        lambda b: (x - b) ** 2, keras.optimizers.SGD(0.2, momentum=0.5), on_nonfinite=policy
    )


BAD = NonFiniteCase(fitted, step=3, data=[1.0, 2.0, math.nan, 3.0, 2.0, 1.0])
FUSED = (2, 5)


@parametrize_checks(tape, fused=FUSED, nonfinite=BAD)
def test_tape(check):
    """TapeStep (compiled) passes the check."""
    check()


@parametrize_checks(lambda: tape(compile=False), fused=FUSED)
def test_tape_eager(check):
    """TapeStep (eager) passes the check."""
    check()


@parametrize_checks(minimize, fused=FUSED)
def test_minimize(check):
    """MinimizeStep (compiled, Adam) passes the check."""
    check()


@parametrize_checks(persistent, fused=FUSED)
def test_persistent(check):
    """PersistentTapeStep (compiled, momentum, a target and a value) passes the check."""
    check()


@parametrize_checks(lambda: persistent(compile=False), fused=FUSED)
def test_persistent_eager(check):
    """PersistentTapeStep (eager: its tape open for the callbacks, then released) passes."""
    check()


@parametrize_checks(fitted, data=BATCHES, fused=FUSED)
def test_tape_with_data(check):
    """TapeStep fed batches passes the check."""
    check()
