"""The record of a checkpoint's variables (``prefix.variables.json``) and restore by name.

Written once for every framework. A strategy that saves its variables by name writes, beside its
framework's own files, a record of each variable's name, shape and dtype (sorted by name) and of
the names of the variables its optimizer holds slots for, in the optimizer's order (``None`` when
the optimizer does not tell)::

    {"format": 1,
     "variables": [{"name": "a", "shape": [2], "dtype": "float32"}, ...],
     "optimizer": {"class": "Adam", "order": ["a", "b"]}}

Contract and invariants:

* ``write`` replaces the record atomically (``checkpoint.atomic_write``), after the framework's
  files, so a checkpoint with a record is complete;
* ``read`` refuses a missing record or another format with a ``ValueError`` naming the file;
* ``check`` refuses, before anything is read, variables that differ from the record (missing,
  extra, renamed, reshaped, re-typed: ``checkpoint.check_variables``);
* an optimizer is always given its variables sorted by name (``canonical_order``), so its slots do
  not depend on the order of ``var_list``; ``slot_order`` is the order to build an optimizer in
  at restore, and refuses one already built in another;
* ``copy`` copies a checkpoint read but not yet carried out, so it is saved as it was read.

``RestoreByName`` is the ``save``/``restore`` of a strategy whose variables may be found only at
its first step (those the loss reads); the framework supplies the writing, the reading and the
discovery of its variables.

>>> import tempfile, os
>>> prefix = os.path.join(tempfile.mkdtemp(), "ckpt-1")
>>> write(prefix, {"b": ((3,), "float32"), "a": ((), "float64")}, "SGD", None)
>>> record = read("Demo.restore", prefix)
>>> [entry["name"] for entry in record["variables"]], slot_order("Demo", prefix, record, ["b", "a"])
(['a', 'b'], ['a', 'b'])
>>> check("Demo.restore", prefix, record, {"a": ((), "float64"), "b": ((3,), "float32")})
"""

from __future__ import annotations

import glob
import json
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from steploop import checkpoint

#: The file, after the prefix, that records the variables of a checkpoint.
SUFFIX = ".variables.json"
FORMAT = 1

#: A variable's shape (``None`` for an unknown dimension) and dtype name.
Spec = tuple[Sequence[int | None], str]


def canonical_order(names: Sequence[str]) -> tuple[int, ...]:
    """The positions of ``names`` sorted by name: the order an optimizer is given variables in.

    >>> canonical_order(["b", "a", "c"])
    (1, 0, 2)
    """
    return tuple(sorted(range(len(names)), key=names.__getitem__))


def write(prefix: str, specs: Mapping[str, Spec], optimizer: str, order: list[str] | None) -> None:
    """Write the record of the variables ``specs`` (name to shape and dtype) and of the
    ``optimizer`` (its class name, the order of its slots) for checkpoint ``prefix``."""
    record = {
        "format": FORMAT,
        "variables": [
            {"name": name, "shape": list(specs[name][0]), "dtype": specs[name][1]}
            for name in sorted(specs)
        ],
        "optimizer": {"class": optimizer, "order": order},
    }
    data = json.dumps(record, indent=1).encode()
    checkpoint.atomic_write(prefix + SUFFIX, lambda file: file.write(data))


def read(owner: str, prefix: str) -> dict[str, Any]:
    """The record of the checkpoint ``prefix``, or a ``ValueError`` saying why there is none."""
    try:
        with open(prefix + SUFFIX, encoding="utf-8") as file:
            record: dict[str, Any] = json.load(file)
    except FileNotFoundError:
        raise ValueError(
            f"{owner}: checkpoint {prefix!r} has no {prefix + SUFFIX!r} (the names, shapes and "
            "dtypes of its variables), so its variables cannot be matched by name; it was "
            "written by an older steploop or is incomplete"
        ) from None
    if record.get("format") != FORMAT:
        raise ValueError(
            f"{owner}: checkpoint {prefix!r} has record format {record.get('format')!r}; "
            f"this steploop reads format {FORMAT}"
        )
    return record


def check(owner: str, prefix: str, record: Mapping[str, Any], current: Mapping[str, Spec]) -> None:
    """Raise a ``ValueError`` (``checkpoint.check_variables``) unless ``current`` (name to shape
    and dtype) are exactly the variables ``record`` holds."""
    saved = {e["name"]: (tuple(e["shape"]), e["dtype"]) for e in record["variables"]}
    checkpoint.check_variables(owner, prefix, saved, current)


def slot_order(
    owner: str,
    prefix: str,
    record: Mapping[str, Any],
    names: Sequence[str],
    held: list[str] | None = None,
    optimizer: str = "",
) -> list[str]:
    """The names of the variables in the order the checkpoint saved the optimizer's slots in
    (name order when it does not tell); a ``ValueError`` when an optimizer already built holds
    them in another order (``held``, ``None`` when not built or unknown).

    >>> record = {"optimizer": {"order": None}}
    >>> slot_order("S", "ckpt-1", record, ["b", "a"], ["b", "a"], "Adam")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: S: the optimizer Adam was built with the variables in the order ['b', 'a'], ...
    """
    order = record["optimizer"].get("order")
    if order is None or set(order) - set(names):
        order = sorted(names)
    if held is not None and held != order:
        raise ValueError(
            f"{owner}: the optimizer {optimizer} was built with the variables in the order "
            f"{held}, but checkpoint {prefix!r} saved its slots for the order {order}; pass an "
            "optimizer that is not built yet (steploop builds it by name)"
        )
    return list(order)


def copy(source: str, target: str, suffixes: Sequence[str]) -> None:
    """Copy the files of checkpoint ``source`` whose suffix starts with one of ``suffixes`` (the
    record's among them) to ``target``: a restore not yet carried out is saved as it was read."""
    if source == target:
        return
    for path in glob.glob(glob.escape(source) + ".*"):
        suffix = path[len(source) :]
        if suffix == SUFFIX or suffix.startswith(tuple(suffixes)):
            with open(path, "rb") as original:
                checkpoint.atomic_write(
                    target + suffix, lambda file, o=original: shutil.copyfileobj(o, file)
                )


def no_variables(owner: str, label: str, what: str = "restore or optimise") -> ValueError:
    """The error of a loss that reads no trainable variable."""
    return ValueError(
        f"{owner}: the {label} read no trainable variable, so there is nothing to {what}; pass "
        "var_list or use the variables in it"
    )


class RestoreByName:
    """``save``/``restore`` by name of a strategy whose variables may be known only at its first
    step (a mixin). The strategy sets ``_variables`` and ``_takes_batch`` (``None`` until a
    Trainer checked the loss) and supplies:

    * ``_suffixes``: the suffixes of its own checkpoint files (for ``copy``);
    * ``_write(prefix)``: write its variables, optimizer state and the record (``write``);
    * ``_read(owner, prefix, record)``: ``check`` the variables, then read them;
    * ``_discover(arguments)``: find the variables the loss reads with the step's arguments.

    A restore asked for before the variables are known waits for the first step's batch
    (``_restore_pending``, which the strategy calls before that step computes anything); a save
    asked for meanwhile copies the checkpoint that was read.
    """

    _suffixes: tuple[str, ...] = ()
    _variables: tuple[Any, ...] | None
    _takes_batch: bool | None
    _pending_restore: tuple[str, dict[str, Any]] | None = None

    def _write(self, prefix: str) -> None:
        raise NotImplementedError

    def _read(self, owner: str, prefix: str, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def _discover(self, arguments: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def save(self, prefix: str) -> None:
        """Write the variables by name, the optimizer's state and a record of the variables'
        names, shapes and dtypes under ``prefix``."""
        if self._pending_restore is not None:  # nothing changed since that checkpoint was read
            copy(self._pending_restore[0], prefix, self._suffixes)
            return
        if self._variables is None:
            raise ValueError(
                f"{type(self).__name__}.save: the variables are not known yet (they are those "
                "the loss reads, found at the first step); take a step first or pass var_list"
            )
        self._write(prefix)

    def restore(self, prefix: str) -> None:
        """Read the variables back by name (any ``var_list`` order) and the optimizer's state.

        A variable missing, extra, renamed, reshaped or re-typed is a ``ValueError`` naming it.
        Without ``var_list`` the variables are those the loss reads: a loss without a batch is
        traced now to find them; one that takes a batch is traced at the first step, whose
        batch it needs, and the values are read then, before that step computes anything.
        """
        record = read(f"{type(self).__name__}.restore", prefix)
        if self._variables is None and self._takes_batch is not False:
            self._pending_restore = (prefix, record)
            return
        self._pending_restore = None
        self._carry_out(prefix, record, ())

    def _restore_pending(self, arguments: tuple[Any, ...]) -> None:
        """Carry out the restore that waited for the first step's batch (``arguments``)."""
        assert self._pending_restore is not None
        self._carry_out(*self._pending_restore, arguments)
        self._pending_restore = None

    def _carry_out(self, prefix: str, record: dict[str, Any], arguments: tuple[Any, ...]) -> None:
        if self._variables is None:
            self._discover(arguments)
        self._read(f"{type(self).__name__}.restore", prefix, record)
