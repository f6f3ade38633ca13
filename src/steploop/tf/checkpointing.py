"""Checkpoints of a TensorFlow strategy, restored by variable name.

A checkpoint ``prefix`` is ``prefix.index`` and ``prefix.data-*``, a ``tf.train.Checkpoint`` of
the variables by reported name and of the optimizer, beside the core's record of the variables
(``steploop.variable_record``, which also does the checks and the restore that waits for the
first step). TensorFlow's part is here: the ``tf.train.Checkpoint`` by name, ``spec``,
``find_variables`` (the variables a loss reads) and the Keras optimizer's slot order. Its slots
are a list in the order of the variables it was built with, saved by position; steploop builds
it in name order (``variable_record.canonical_order``), also at restore. Reading the order a
built Keras 3 optimizer has uses one private attribute, isolated in ``built_order``
(``tests/tf/test_checkpointing.py`` fails if Keras changes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from steploop import variable_record
from steploop.named_variables import NamedVariables


def spec(variable: Any) -> tuple[tuple[int | None, ...], str]:
    """A variable's shape and dtype name, as a checkpoint records them."""
    shape = tuple(None if d is None else int(d) for d in tf.TensorShape(variable.shape).as_list())
    return shape, tf.as_dtype(variable.dtype).name


def built_order(optimizer: Any, names: Sequence[str], variables: Sequence[Any]) -> list[str] | None:
    """The names of the variables a built Keras 3 optimizer holds slots for, in its order; ``None``
    when it is not built, is not a Keras 3 optimizer, or holds a variable not among ``variables``.
    """
    if getattr(optimizer, "built", False) is not True:
        return None
    held = getattr(optimizer, "_trainable_variables", None)  # Keras 3, private
    if not isinstance(held, (list, tuple)):
        return None
    by_id = {id(variable): name for name, variable in zip(names, variables, strict=True)}
    if any(id(variable) not in by_id for variable in held):
        return None
    return [by_id[id(variable)] for variable in held]


def find_variables(
    call: Callable[..., Any], arguments: tuple[Any, ...], compile: bool, run: Callable[..., Any]
) -> tuple[Any, ...]:
    """The trainable variables ``call(*arguments)`` reads, found without updating anything.

    A compiled strategy traces the call on a tape (no op runs); an eager one calls it once on a
    tape, so that variables a model creates at its first call get the names an eager step gives
    them (a variable created while tracing is named in the graph's scopes). ``run(f, *args)``
    calls ``f`` the way the strategy reports its own errors.
    """
    found: list[tuple[Any, ...]] = []

    def probe(*batch: Any) -> None:
        with tf.GradientTape() as tape:
            call(*batch)
        found.append(tuple(v for v in tape.watched_variables() if getattr(v, "trainable", True)))

    run(tf.function(probe).get_concrete_function if compile else probe, *arguments)
    return found[0] if found else ()


class ByName(variable_record.RestoreByName, NamedVariables):
    """``save``/``restore`` of a TensorFlow strategy (a mixin of ``TFStep``, which owns the
    attributes declared here): ``RestoreByName`` with TensorFlow's files."""

    _suffixes = (".index", ".data-")
    _optimizer: Any
    _compile: bool
    _fn_label: str
    _call: Callable[..., Any]
    _traced: Callable[..., Any]

    def _tracked(self) -> tf.train.Checkpoint:
        assert self._variables is not None and self._names is not None
        variables = dict(zip(self._names, self._variables, strict=True))
        return tf.train.Checkpoint(variables=variables, optimizer=self._optimizer)

    def _record_specs(self) -> dict[str, tuple[tuple[int | None, ...], str]]:
        assert self._variables is not None and self._names is not None
        return dict(zip(self._names, map(spec, self._variables), strict=True))

    def _write(self, prefix: str) -> None:
        assert self._variables is not None and self._names is not None
        self._tracked().write(prefix)
        order = built_order(self._optimizer, self._names, self._variables)
        variable_record.write(prefix, self._record_specs(), type(self._optimizer).__name__, order)

    def _read(self, owner: str, prefix: str, record: dict[str, Any]) -> None:
        assert self._variables is not None and self._names is not None
        variable_record.check(owner, prefix, record, self._record_specs())
        optimizer, names = self._optimizer, self._names
        fresh = getattr(optimizer, "built", None) is False and callable(
            getattr(optimizer, "build", None)
        )
        held = None if fresh else built_order(optimizer, names, self._variables)
        kind = type(optimizer).__name__
        order = variable_record.slot_order(owner, prefix, record, names, held, kind)
        if fresh:  # Keras 3, not built yet: its slots in the order the checkpoint saved them in
            by_name = dict(zip(names, self._variables, strict=True))
            optimizer.build([by_name[name] for name in order])
        self._tracked().read(prefix).assert_existing_objects_matched()

    def _discover(self, arguments: tuple[Any, ...]) -> None:
        """Find the variables the loss reads (``find_variables``), or fail."""
        found = find_variables(self._call, arguments, self._compile, self._traced)
        if not found:
            raise variable_record.no_variables(type(self).__name__, self._fn_label)
        self._set_variables(found)
