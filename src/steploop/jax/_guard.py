"""``on_nonfinite`` in JAX's functional style: the ``GuardOps`` and ``Saved`` of ``OptaxStep``.

``steploop.nonfinite.NonFinite.guard`` states each policy once, as actions on a state ("apply the
update where nothing is bad", "put the saved state back where the update made it bad"). A JAX
step is a pure function, so its state is a value held in a ``Holder`` while the step is traced:
an action replaces the held value, and ``JaxGuard.when`` keeps the action's result only where the
condition holds, selecting leaf by leaf with ``jnp.where`` between the state after and before the
action. The step then returns the held state. Eager (``jit=False``) and traced steps run the very
same code.

>>> import jax.numpy as jnp
>>> holder = Holder({"x": jnp.array(1.0)})
>>> update = Action(holder, lambda state: {"x": state["x"] + 1.0})
>>> JAX_GUARD.when(jnp.array(False), update)
>>> float(holder.state["x"])
1.0
>>> JAX_GUARD.when(jnp.array(True), update)
>>> float(holder.state["x"])
2.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp


class Holder:
    """The state (parameters and optimiser state) a traced step updates by actions."""

    def __init__(self, state: Any) -> None:
        self.state = state


def not_finite(tree: Any) -> Any:
    """Whether any floating-point leaf of ``tree`` holds a NaN or an infinity (a JAX bool)."""
    flags = [
        ~jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    return jnp.any(jnp.stack(flags)) if flags else jnp.array(False)


class _JaxGuard:
    """``steploop.nonfinite.GuardOps`` on JAX booleans and int32 codes."""

    @staticmethod
    def when(condition: Any, action: Callable[[], None]) -> None:
        holder = _bound(action)
        before = holder.state
        action()
        holder.state = jax.tree_util.tree_map(
            lambda after, old: jnp.where(condition, after, old), holder.state, before
        )

    any_ = staticmethod(jnp.logical_or)
    all_ = staticmethod(jnp.logical_and)
    not_ = staticmethod(jnp.logical_not)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return jnp.where(condition, a, b)

    @staticmethod
    def stack(flags: Sequence[Any]) -> Any:
        return jnp.stack([jnp.asarray(flag) for flag in flags])

    any_of = staticmethod(jnp.any)

    @staticmethod
    def argmax(stacked: Any) -> Any:
        return jnp.argmax(stacked).astype(jnp.int32)


def _bound(action: Callable[[], None]) -> Holder:
    """The ``Holder`` an action changes (``action.holder``: see ``Action``)."""
    holder = getattr(action, "holder", None)
    if not isinstance(holder, Holder):
        raise TypeError("JAX_GUARD.when needs an Action or Saved.put_back bound to a Holder")
    return holder


class Action:
    """An action on a ``Holder``: calling it replaces the held state by ``make(state)``."""

    def __init__(self, holder: Holder, make: Callable[[Any], Any]) -> None:
        self.holder, self._make = holder, make

    def __call__(self) -> None:
        self.holder.state = self._make(self.holder.state)


class Saved:
    """The state before a ``rollback`` step (``steploop.nonfinite.Saved``)."""

    def __init__(self, holder: Holder) -> None:
        self.holder, self._saved = holder, holder.state
        self.put_back = Action(holder, lambda state: self._saved)

    def not_finite(self) -> Any:
        return not_finite(self.holder.state)


#: The guard operations of every JAX step.
JAX_GUARD = _JaxGuard()
