"""JAX step strategies; the only part of steploop that imports JAX (and optax).

* ``OptaxStep(loss, params, optimizer, *, jit=True, on_nonfinite="apply")``: one optax update of
  a pytree of parameters by the gradient of ``loss(params)`` (or ``loss(params, batch)``);
  reports the gradients by pytree path, and the gradients of further targets.
"""

from steploop.jax.optax_step import OptaxStep, path_names

__all__ = ["OptaxStep", "path_names"]
