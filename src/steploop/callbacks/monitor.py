"""Monitored quantities: where a callback with a ``monitor`` reads the value it watches.

A monitor (``EarlyStopping``, ``ReduceLROnPlateau``) names ``"loss"``, a value the strategy
reports at every step, or a quantity that an earlier callback *publishes* at its own steps
(``Evaluate``: ``val_loss``, ``val_<value>``). A publisher answers ``provides(name)`` and
``published_at(step)`` (its results at ``step``, or ``None`` when it did not run there).

``link(callbacks)`` runs when the Trainer is built: each monitor is given the first callback
that provides its name (``watch(source)``), or ``None`` (it reads the step's own values). The
publisher must come first in the list, so its results exist when the monitor reads them in the
same step; one listed after is a ``ValueError`` naming both, and so is a logger that reports
what earlier callbacks logged (``reports_logged``) listed before any callback that logs columns
(a publisher, or ``logs_columns``: the learning-rate callbacks' ``lr``). A monitor bound to a
publisher checks only at the publisher's steps: its patience counts those checks. A name nobody
provides and the strategy does not report is a ``ValueError`` naming it at the first step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from steploop.callbacks.base import Callback, CallbackList
from steploop.capabilities import has

#: Words in a monitored name that make ``mode="auto"`` maximise it.
HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1")


@runtime_checkable
class Publisher(Protocol):
    """Publishes named quantities at some steps (``Evaluate``)."""

    def provides(self, name: str) -> bool:
        """Whether ``name`` is one of the quantities it publishes."""

    def published_at(self, step: int) -> Mapping[str, float] | None:
        """Its quantities at ``step``, or ``None`` when it published none there."""


def auto_mode(monitor: str, mode: str) -> str:
    """``mode``, with ``"auto"`` resolved from the name: ``"max"`` when it contains ``acc``,
    ``auc``, ``precision``, ``recall`` or ``f1`` (case-insensitive), else ``"min"``.

    >>> auto_mode("val_accuracy", "auto"), auto_mode("val_loss", "auto"), auto_mode("x", "max")
    ('max', 'min', 'max')
    """
    if mode != "auto":
        return mode
    lowered = monitor.lower()
    return "max" if any(word in lowered for word in HIGHER_IS_BETTER) else "min"


def _monitors(callback: Callback) -> Iterator[Any]:
    """The objects in ``callback`` (itself, or a composite criterion's leaves) with a monitor."""
    leaves = getattr(callback, "leaves", None)
    for candidate in leaves() if callable(leaves) else (callback,):
        if isinstance(getattr(candidate, "monitor", None), str) and hasattr(candidate, "watch"):
            yield candidate


def link(callbacks: Sequence[Callback]) -> None:
    """Bind every monitor among ``callbacks`` to the callback that publishes its name, if any
    (see the module docstring); a publisher listed after a monitor that reads it, or a callback
    that logs columns listed after a logger (``_check_loggers``), is a ``ValueError``."""
    publishers = [(i, c) for i, c in enumerate(callbacks) if has(c, Publisher)]
    for index, callback in enumerate(callbacks):
        for reader in _monitors(callback):
            found = [(i, c) for i, c in publishers if c.provides(reader.monitor)]
            source = found[0] if found else None
            if source is not None and source[0] > index:
                raise ValueError(
                    f"callbacks[{index}] {callback!r} monitors {reader.monitor!r}, which "
                    f"callbacks[{source[0]}] {source[1]!r} publishes after it in the same step; "
                    f"list {source[1]!r} before {callback!r}"
                )
            reader.watch(None if source is None else source[1])
    _check_loggers(callbacks)


def _called(callback: Callback) -> tuple[Callback, ...]:
    """``callback`` and the callbacks it calls: an ``Every``'s, a ``CallbackList``'s, nested."""
    parts = callback.callbacks if isinstance(callback, CallbackList) else ()
    inner = getattr(callback, "callback", None)  # an Every
    if isinstance(inner, Callback):
        parts = (*parts, inner)
    return (callback, *(x for part in parts for x in _called(part))) if parts else (callback,)


def _roles(callback: Callback) -> tuple[bool, bool]:
    """Whether ``callback`` (or a callback it calls) logs columns in the step (a publisher,
    ``logs_columns``), and whether it reports the columns logged before it (``reports_logged``).
    """
    writes = reports = False
    for part in _called(callback):
        writes = writes or has(part, Publisher) or bool(getattr(part, "logs_columns", False))
        reports = reports or bool(getattr(part, "reports_logged", False))
    return writes, reports


def _check_loggers(callbacks: Sequence[Callback]) -> None:
    """Refuse a logger that reports the columns the callbacks before it log (``reports_logged``)
    listed before one that logs columns in the same step (a publisher, ``logs_columns``): it
    would report them as missing at every step."""
    roles = [_roles(callback) for callback in callbacks]
    writers = [(i, c) for i, c in enumerate(callbacks) if roles[i][0]]
    if not writers:  # no column logged in the step: no logger can miss one
        return
    for index, callback in enumerate(callbacks):
        later = [(i, c) for i, c in writers if i > index]
        if later and roles[index][1]:
            i, source = later[0]
            raise ValueError(
                f"callbacks[{index}] {callback!r} reports the columns the callbacks before it "
                f"log, and callbacks[{i}] {source!r} logs columns after it in the same step (it "
                f"would report them as missing, nan, at every step); list {source!r} before "
                f"{callback!r}"
            )


def step_value(owner: str, monitor: str, loss: float, values: Mapping[str, Any]) -> float:
    """The monitored value of a step: its loss or one of its values, as a float; a name it
    does not have is a ``ValueError`` naming it."""
    if monitor == "loss":
        return float(loss)
    try:
        return float(values[monitor])
    except KeyError:
        raise ValueError(
            f"{owner} monitor={monitor!r} is not among the step's values {sorted(values)} "
            "(or 'loss')"
        ) from None
