"""Applying a step's gradients in TensorFlow, eagerly or in a graph, under ``on_nonfinite``.

The policy itself (what each of ``apply``, ``skip``, ``stop``, ``rollback`` does, and the codes)
is ``steploop.nonfinite``; this module supplies only TensorFlow's primitive array operations
(``TF_GUARD``), the saved state of a rollback (``_Saved``), and ``pin``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from steploop.nonfinite import NonFinite


def pin(*trees: Any) -> Any:
    """Return ``trees`` (nested tensors) so that nothing using the result runs before every one
    of their tensors exists; in eager mode they are returned as they are (see ``apply``)."""
    if tf.executing_eagerly():
        return trees
    tensors = [t for t in tf.nest.flatten(trees) if t is not None]
    with tf.control_dependencies(tensors):
        return tf.nest.map_structure(lambda t: None if t is None else tf.identity(t), trees)


def not_finite(tensor: Any) -> tf.Tensor:
    values = tensor.values if isinstance(tensor, tf.IndexedSlices) else tensor
    return tf.logical_not(tf.reduce_all(tf.math.is_finite(values)))


def _read(variable: Any) -> tf.Tensor:
    """The value of a ``tf.Variable`` or ``keras.Variable`` as a tensor."""
    return tf.convert_to_tensor(
        variable.value if isinstance(variable, keras.Variable) else variable
    )


class _TFGuardOps:
    """``steploop.nonfinite.GuardOps`` for TensorFlow, eager or in a graph."""

    @staticmethod
    def when(condition: Any, action: Callable[[], None]) -> None:
        if tf.executing_eagerly():
            if bool(condition):
                action()
            return

        def act() -> tf.Tensor:
            action()
            return tf.constant(True)

        tf.cond(condition, act, lambda: tf.constant(False))

    any_ = staticmethod(tf.logical_or)
    all_ = staticmethod(tf.logical_and)
    not_ = staticmethod(tf.logical_not)
    where = staticmethod(tf.where)
    stack = staticmethod(tf.stack)
    any_of = staticmethod(tf.reduce_any)

    @staticmethod
    def argmax(stacked: Any) -> Any:
        return tf.argmax(tf.cast(stacked, tf.int32), output_type=tf.int32)


TF_GUARD = _TFGuardOps()


class _Saved:
    """The variables and optimizer state before a ``rollback`` step."""

    def __init__(self, state: list[Any]) -> None:
        self._state = state
        self._values = pin(*[tf.identity(_read(v)) for v in state])

    def not_finite(self) -> Any:
        floating = [v for v in self._state if tf.as_dtype(v.dtype).is_floating]  # no counter
        return tf.reduce_any(tf.stack([not_finite(_read(v)) for v in floating]))

    def put_back(self) -> None:
        for variable, value in zip(self._state, self._values, strict=True):
            variable.assign(value)


def apply(
    policy: NonFinite,
    optimizer: Any,
    gradients: Sequence[Any],
    variables: Sequence[Any],
    order: Sequence[int],
    loss: Any,
    *others: Any,
) -> tuple[Any, ...]:
    """Apply ``gradients`` to ``variables`` (in the order ``order``) as ``policy`` says; return
    ``(gradients, loss, *others, code)``, pinned (``code`` is ``None`` under ``apply``).

    Inside a ``tf.function`` a gradient can be the very read of another variable (the gradient
    of ``a * b`` with respect to ``b`` is ``a``), and TensorFlow may run the update of ``a``
    before that read: the step would then use, and report, a value that differs from the eager
    step, at random. ``pin`` makes every update wait until all the step's gradients and outputs
    exist, so a compiled step equals an eager one.
    """
    gradients, loss, *others = pin(tuple(gradients), loss, *others)

    def update() -> None:
        optimizer.apply_gradients([(gradients[i], variables[i]) for i in order])

    if policy.reports and not getattr(optimizer, "built", True):
        optimizer.build([variables[i] for i in order])  # slots must exist outside a tf.cond
    flags = [not_finite(loss), *(not_finite(g) for g in gradients)] if policy.reports else []
    code = policy.guard(TF_GUARD, flags, update, lambda: _Saved([*variables, *optimizer.variables]))
    return (gradients, loss, *others, code)
