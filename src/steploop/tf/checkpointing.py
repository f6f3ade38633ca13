"""Checkpoints of a TensorFlow strategy, restored by variable name.

A checkpoint ``prefix`` of a TensorFlow strategy is two things:

* ``prefix.index``, ``prefix.data-*``: a ``tf.train.Checkpoint`` of the variables, keyed by their
  reported names (the keys of ``StepRecord.gradients`` and ``strategy.variables()``), and of the
  optimizer;
* ``prefix.variables.json``: each variable's name, shape and dtype, and the names of the
  variables the optimizer was built with, in its order (when the optimizer tells it).

``restore`` first compares the record with the strategy's variables (``check_variables``: a
variable missing, extra, renamed, reshaped or re-typed is a ``ValueError`` naming it and listing
what the checkpoint holds), then reads the values by name, whatever the order of ``var_list``.

Optimizer state follows its variables by name. A Keras optimizer keeps its slots (Adam's m and v,
SGD's momentum) in a list, in the order of the variables it was built with, and a
``tf.train.Checkpoint`` saves that list by position. So steploop always gives an optimizer its
variables sorted by name (``canonical_order``): an optimizer that steploop builds has the same
slot order whatever the order of ``var_list``. At restore, a Keras 3 optimizer not built yet is
built with the variables in the order the checkpoint records; one already built in another order
is refused. Reading the order a Keras 3 optimizer was built with uses one private attribute,
isolated in ``built_order`` (``tests/tf/test_checkpointing.py`` fails if Keras changes it).
"""

from __future__ import annotations

import glob
import json
import shutil
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from steploop import checkpoint

#: The file, after the prefix, that records the variables of a checkpoint.
RECORD = ".variables.json"
FORMAT = 1


def canonical_order(names: Sequence[str]) -> tuple[int, ...]:
    """The positions of ``names`` sorted by name: the order an optimizer is given variables in.

    >>> canonical_order(["b", "a", "c"])
    (1, 0, 2)
    """
    return tuple(sorted(range(len(names)), key=names.__getitem__))


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


def _tracked(names: Sequence[str], variables: Sequence[Any], optimizer: Any) -> Any:
    return tf.train.Checkpoint(
        variables=dict(zip(names, variables, strict=True)), optimizer=optimizer
    )


def save(prefix: str, names: Sequence[str], variables: Sequence[Any], optimizer: Any) -> None:
    """Write the variables by name, the optimizer, and the record of the variables."""
    _tracked(names, variables, optimizer).write(prefix)
    specs = dict(zip(names, (spec(v) for v in variables), strict=True))
    record = {
        "format": FORMAT,
        "variables": [
            {"name": name, "shape": list(specs[name][0]), "dtype": specs[name][1]}
            for name in sorted(specs)
        ],
        "optimizer": {
            "class": type(optimizer).__name__,
            "order": built_order(optimizer, names, variables),
        },
    }
    data = json.dumps(record, indent=1).encode()
    checkpoint.atomic_write(prefix + RECORD, lambda file: file.write(data))


def read_record(owner: str, prefix: str) -> dict[str, Any]:
    """The record of the checkpoint ``prefix``, or a ``ValueError`` saying why there is none."""
    try:
        with open(prefix + RECORD, encoding="utf-8") as file:
            record: dict[str, Any] = json.load(file)
    except FileNotFoundError:
        raise ValueError(
            f"{owner}: checkpoint {prefix!r} has no {prefix + RECORD!r} (the names, shapes and "
            "dtypes of its variables), so its variables cannot be matched by name; it was "
            "written by an older steploop or is incomplete"
        ) from None
    if record.get("format") != FORMAT:
        raise ValueError(
            f"{owner}: checkpoint {prefix!r} has record format {record.get('format')!r}; "
            f"this steploop reads format {FORMAT}"
        )
    return record


def restore(
    owner: str,
    prefix: str,
    record: dict[str, Any],
    names: Sequence[str],
    variables: Sequence[Any],
    optimizer: Any,
) -> None:
    """Check ``variables`` against ``record`` by name, then read them and the optimizer."""
    saved = {e["name"]: (tuple(e["shape"]), e["dtype"]) for e in record["variables"]}
    current = dict(zip(names, (spec(v) for v in variables), strict=True))
    checkpoint.check_variables(owner, prefix, saved, current)
    _prepare(owner, prefix, record["optimizer"].get("order"), names, variables, optimizer)
    _tracked(names, variables, optimizer).read(prefix).assert_existing_objects_matched()


def _prepare(
    owner: str,
    prefix: str,
    order: list[str] | None,
    names: Sequence[str],
    variables: Sequence[Any],
    optimizer: Any,
) -> None:
    """Give ``optimizer`` its slots in the order the checkpoint saved them in."""
    by_name = dict(zip(names, variables, strict=True))
    if order is None or set(order) - set(by_name):
        order = sorted(by_name)
    if getattr(optimizer, "built", None) is False and callable(getattr(optimizer, "build", None)):
        optimizer.build([by_name[name] for name in order])  # Keras 3, not built yet
        return
    held = built_order(optimizer, names, variables)
    if held is not None and held != order:
        raise ValueError(
            f"{owner}: the optimizer {type(optimizer).__name__} was built with the variables in "
            f"the order {held}, but checkpoint {prefix!r} saved its slots for the order {order}; "
            "pass an optimizer that is not built yet (steploop builds it by name)"
        )


def copy(source: str, target: str) -> None:
    """Copy the strategy's files of checkpoint ``source`` to ``target`` (a restore not yet
    carried out is saved as it was read)."""
    if source == target:
        return
    for path in glob.glob(glob.escape(source) + ".*"):
        suffix = path[len(source) :]
        if suffix in (".index", RECORD) or suffix.startswith(".data-"):
            with open(path, "rb") as original:
                checkpoint.atomic_write(
                    target + suffix, lambda file, o=original: shutil.copyfileobj(o, file)
                )


class ByName:
    """``save``/``restore`` of a TensorFlow strategy (a mixin of ``TFStep``, which owns the
    attributes declared here): the functions above, applied to its variables and optimizer."""

    _pending_restore: tuple[str, dict[str, Any]] | None
    _variables: tuple[Any, ...] | None
    _names: tuple[str, ...] | None
    _optimizer: Any
    _takes_batch: bool | None
    _compile: bool
    _fn_label: str
    _call: Callable[..., Any]
    _traced: Callable[..., Any]

    def _set_variables(self, variables: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def save(self, prefix: str) -> None:
        """Write the variables by name, the optimizer's state and a record of the variables'
        names, shapes and dtypes under ``prefix``."""
        if self._pending_restore is not None:  # nothing changed since that checkpoint was read
            copy(self._pending_restore[0], prefix)
            return
        if self._variables is None:
            raise ValueError(
                f"{type(self).__name__}.save: the variables are not known yet (they are those "
                "the loss reads, found at the first step); take a step first or pass var_list"
            )
        assert self._names is not None
        save(prefix, self._names, self._variables, self._optimizer)

    def restore(self, prefix: str) -> None:
        """Read the variables back by name (any ``var_list`` order) and the optimizer's state.

        A variable missing, extra, renamed, reshaped or re-typed is a ``ValueError`` naming it.
        Without ``var_list`` the variables are those the loss reads: a loss without a batch is
        traced now to find them; one that takes a batch is traced at the first step, whose
        batch it needs, and the values are read then, before that step computes anything.
        """
        owner = f"{type(self).__name__}.restore"
        record = read_record(owner, prefix)
        if self._variables is None:
            if self._takes_batch is not False:
                self._pending_restore = (prefix, record)
                return
            self._discover(())
        self._pending_restore = None
        assert self._variables is not None and self._names is not None
        restore(owner, prefix, record, self._names, self._variables, self._optimizer)

    def _restore_pending(self, arguments: tuple[Any, ...]) -> None:
        """Carry out the restore that waited for the first step's batch (``arguments``)."""
        assert self._pending_restore is not None
        prefix, record = self._pending_restore
        if self._variables is None:
            self._discover(arguments)
        assert self._variables is not None and self._names is not None
        owner = f"{type(self).__name__}.restore"
        restore(owner, prefix, record, self._names, self._variables, self._optimizer)
        self._pending_restore = None

    def _discover(self, arguments: tuple[Any, ...]) -> None:
        """Find the variables the loss reads (``find_variables``), or fail."""
        found = find_variables(self._call, arguments, self._compile, self._traced)
        if not found:
            raise ValueError(
                f"{type(self).__name__}: the {self._fn_label} read no trainable variable, so "
                "there is nothing to restore or optimise; pass var_list or use the variables in it"
            )
        self._set_variables(found)
