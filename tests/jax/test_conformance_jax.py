"""``steploop.jax.OptaxStep`` passes every conformance check, one test per check: jitted with SGD
and Adam, eager, with data, and under each ``on_nonfinite`` policy."""

import jax.numpy as jnp
import numpy as np
import optax

from steploop.jax import OptaxStep
from steploop.testing import NonFiniteCase, parametrize_checks

BATCHES = [np.float32(b) for b in (1.0, 2.0, 3.0, 2.5, 1.5, 4.0, 3.5, 0.5)]


def quadratic(optimizer=None, jit=True):
    return lambda: OptaxStep(
        lambda p: (p["x"] - 4.0) ** 2, {"x": jnp.array(0.0)}, optimizer or optax.sgd(0.1), jit=jit
    )


def fitted(policy="apply"):
    """x follows the batches: loss (x - batch)**2, one batch a step."""
    return OptaxStep(
        lambda p, b: (p["x"] - b) ** 2, {"x": jnp.array(0.0)}, optax.sgd(0.2), on_nonfinite=policy
    )


#: the batch of step 3 is nan: its loss is not finite
BAD = NonFiniteCase(fitted, step=3, data=[np.float32(v) for v in (1.0, 2.0, np.nan, 3.0, 2.0)])


@parametrize_checks(quadratic(), nonfinite=BAD)
def test_sgd_jitted(check):
    check()


@parametrize_checks(quadratic(optax.adam(0.1)))
def test_adam_jitted(check):
    """Adam's moments make the checkpoint check meaningful."""
    check()


@parametrize_checks(quadratic(jit=False))
def test_eager(check):
    check()


@parametrize_checks(fitted, data=BATCHES, nonfinite=BAD)
def test_with_data(check):
    check()
