"""Argument checks of the TensorFlow strategies, made at construction (and, for
``check_eager``, at each step): each error names the argument, what was expected and what was
received."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import tensorflow as tf

from steploop.tf.naming import variable_name


def _is_variable(value: Any) -> bool:
    return isinstance(value, (tf.Variable, keras.Variable))


def check_var_list(owner: str, var_list: Any) -> tuple[Any, ...] | None:
    """Validate a ``var_list`` argument: ``None`` or a non-empty sequence of variables."""
    if var_list is None:
        return None
    if _is_variable(var_list):
        raise TypeError(
            f"{owner}: var_list must be a list of variables, got one variable; "
            f"pass [{variable_name(var_list)}]"
        )
    if isinstance(var_list, (str, bytes, Mapping)) or not isinstance(var_list, (Sequence, set)):
        try:
            var_list = list(var_list)
        except TypeError:
            raise TypeError(
                f"{owner}: var_list must be a list of variables, got {type(var_list).__name__}"
            ) from None
    variables = tuple(var_list)
    if not variables:
        raise ValueError(f"{owner}: var_list is empty; give the variables to optimise")
    for index, variable in enumerate(variables):
        if not _is_variable(variable):
            raise TypeError(
                f"{owner}: var_list[{index}] must be a tf.Variable or keras.Variable, "
                f"got {type(variable).__name__}"
            )
        if not getattr(variable, "trainable", True):
            raise ValueError(
                f"{owner}: var_list[{index}] ({getattr(variable, 'name', '?')}) is not trainable"
            )
    return variables


def check_optimizer(owner: str, optimizer: Any) -> Any:
    """Validate an optimizer: an instance with ``apply_gradients`` (Keras 3, tf_keras, custom)."""
    if isinstance(optimizer, type):
        name = optimizer.__name__
        shown = (
            f"keras.optimizers.{name}"
            if getattr(keras.optimizers, name, None) is optimizer
            else name
        )
        raise TypeError(
            f"{owner}: optimizer must be an optimizer instance, got the class {shown}; pass an "
            f"instance, e.g. {shown}(learning_rate=0.01)"
        )
    if not callable(getattr(optimizer, "apply_gradients", None)):
        if isinstance(optimizer, str):
            got = f"the string {optimizer!r}"
        elif isinstance(optimizer, (list, tuple)) and any(map(_is_variable, optimizer)):
            got = f"a {type(optimizer).__name__} of variables (is it var_list?)"
        else:
            got = type(optimizer).__name__
        raise TypeError(
            f"{owner}: optimizer must have an apply_gradients method (an optimizer instance such "
            f"as keras.optimizers.SGD(learning_rate=0.01)), got {got}"
        )
    return optimizer


def check_eager(owner: str) -> None:
    """Refuse a step taken while TensorFlow builds a graph (a Trainer inside a ``tf.function``)."""
    if not tf.executing_eagerly():
        raise RuntimeError(
            f"{owner}: a Trainer runs its own compiled steps and must be called from eager "
            "Python, not inside a tf.function; call trainer.run() outside it (for speed, keep "
            "the strategy's compile=True, the default, and fuse steps with "
            "Trainer(steps_per_call=K))"
        )
