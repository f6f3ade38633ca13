"""``JAX_OPS``: the JAX array namespace stopping criteria are evaluated with in fused loops.

It mirrors ``steploop.ops.HOST`` (see there for the contract), built by
``steploop.ops.ArrayOps`` from JAX's primitives. Numbers
are float64 so a criterion decides in a compiled loop exactly as on the host; JAX has float64
only where x64 is enabled, so ``steploop.jax.fused`` traces its loop under the scoped
``jax.enable_x64(True)`` and the step inside it under ``jax.enable_x64(False)``: the step is
traced as a plain step is (float32 stays float32), the criteria in float64. Nothing is set
globally.

>>> import jax, jax.numpy as jnp
>>> with jax.enable_x64(True):
...     bool(JAX_OPS.any_(JAX_OPS.number(jnp.float32(1e-13)) < 1e-12, False))
True
"""

import jax.numpy as jnp

from steploop.ops import ArrayOps

#: The namespace JAX strategies evaluate criteria with inside fused calls (under
#: ``jax.enable_x64(True)``).
JAX_OPS = ArrayOps(
    "JAX_OPS",
    any_=jnp.logical_or,
    all_=jnp.logical_and,
    not_=jnp.logical_not,
    number=lambda value: jnp.asarray(value).astype(jnp.float64),
    where=jnp.where,
    isfinite=jnp.isfinite,
    isnan=jnp.isnan,
    sqrt=jnp.sqrt,
    sum_=jnp.sum,
    square=jnp.square,
)
