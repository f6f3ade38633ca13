"""``JAX_OPS``: the JAX array namespace stopping criteria are evaluated with in fused loops.

It mirrors ``steploop.ops.HOST`` function for function (see there for the contract). Numbers
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

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp


def _f64(value: Any) -> Any:
    return jnp.asarray(value).astype(jnp.float64)


class JaxOps:
    """JAX versions of the namespace's functions (used under ``jax.enable_x64(True)``)."""

    name = "jax"
    any_ = staticmethod(jnp.logical_or)
    all_ = staticmethod(jnp.logical_and)
    not_ = staticmethod(jnp.logical_not)
    number = staticmethod(_f64)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return jnp.where(condition, _f64(a), _f64(b))

    @staticmethod
    def isfinite(a: Any) -> Any:
        return jnp.isfinite(_f64(a))

    @staticmethod
    def isnan(a: Any) -> Any:
        return jnp.isnan(_f64(a))

    @staticmethod
    def sqrt(a: Any) -> Any:
        return jnp.sqrt(_f64(a))

    @staticmethod
    def global_norm(gradients: Mapping[str, Any]) -> Any:
        total = jnp.float64(0.0)
        for gradient in gradients.values():
            total = total + jnp.sum(jnp.square(_f64(gradient)))
        return jnp.sqrt(total)

    def __repr__(self) -> str:
        return "JAX_OPS"


#: The namespace JAX strategies evaluate criteria with inside fused calls.
JAX_OPS = JaxOps()
