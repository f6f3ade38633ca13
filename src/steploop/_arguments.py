"""The Trainer's arguments, checked when it is built: each error names what was wrong."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from steploop.records import STATUSES
from steploop.strategy import StepStrategy

if TYPE_CHECKING:
    from steploop.callbacks.base import Callback
    from steploop.epochs import Epochs
    from steploop.trainer import Trainer


def check_strategy(strategy: Any) -> None:
    if not isinstance(strategy, StepStrategy):
        raise TypeError(
            f"strategy must be a StepStrategy, got {type(strategy).__name__}; "
            "subclass steploop.StepStrategy or use a ready one such as steploop.tf.TapeStep"
        )


def check_data(data: Any) -> None:
    if data is not None and (
        isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable)
    ):
        raise TypeError(
            f"data must be an iterable of batches (a list, a generator, a tf.data.Dataset), "
            f"got {type(data).__name__}"
        )
    hint = _arrays_as_data(data)
    if hint is not None:
        raise ValueError(hint)


def _arrays_as_data(data: Any) -> str | None:
    """What to write instead when ``data`` is arrays rather than batches: a tuple of
    equal-length arrays (the Trainer would take each whole array as one batch) or a NumPy array
    of two axes or more (each row would be one batch)."""
    if isinstance(data, np.ndarray) and data.ndim >= 2:
        return (
            f"data is a NumPy array of shape {data.shape}: the Trainer would take each of its "
            f"{data.shape[0]} rows as one batch; to train on batches of rows, write "
            "data=sl.batches(xs, batch_size=32)"
        )
    if not isinstance(data, tuple) or not data:
        return None
    shapes = [getattr(item, "shape", None) for item in data]
    if any(shape is None or len(shape) < 1 for shape in shapes):
        return None
    lengths = {shape[0] for shape in shapes}  # type: ignore[index]
    if len(lengths) != 1:
        return None
    names = {1: "xs,", 2: "xs, ys"}.get(len(data)) or ", ".join(f"a{i}" for i in range(len(data)))
    return (
        f"data is a tuple of {len(data)} arrays of {lengths.pop()} rows: the Trainer would "
        f"take each whole array as one batch; to train on batches of rows, write "
        f"data=sl.batches(({names}), batch_size=32)"
    )


def check_gradients(strategy: StepStrategy, callbacks: Sequence[Callback]) -> None:
    """Callbacks that need gradients need a strategy that reports them."""
    if strategy.reports_gradients:
        return
    for index, callback in enumerate(callbacks):
        if callback.requires_gradients:
            raise ValueError(
                f"callbacks[{index}] {callback!r} needs gradients, but "
                f"{type(strategy).__name__} reports none; use a strategy that reports "
                "them (steploop.tf.TapeStep, for example)"
            )


def check_callbacks(trainer: Trainer, callbacks: Sequence[Callback]) -> None:
    """Each callback accepts the Trainer (``Callback.validate``); stateful callbacks need
    distinct keys."""
    owners: dict[str, int] = {}
    for index, callback in enumerate(callbacks):
        problem = callback.validate(trainer)
        if problem is not None:
            raise TypeError(f"callbacks[{index}] {callback!r} {problem}")
        if not callback.has_state:
            continue
        key = callback.state_key
        if key in owners:
            raise ValueError(
                f"callbacks[{owners[key]}] and callbacks[{index}] would both save their state "
                f"under {key!r}; give one another key, e.g. callbacks[{index}].keyed('{key}_2')"
            )
        owners[key] = index


def describe_data(data: Any) -> str:
    """``data`` in a few words, for ``Trainer.describe``."""
    if data is None:
        return "None"
    try:
        return f"{type(data).__name__} of {len(data)} batches"
    except TypeError:
        return type(data).__name__


def describe(
    strategy: StepStrategy, data: Any, epochs: Epochs | None, callbacks: Any, calls: str = ""
) -> str:
    """``Trainer.describe``'s text: the strategy, the data, the epochs, what ``steps_per_call``
    chose (``calls``), the callbacks in order."""
    passes = "" if epochs is None else f", {epochs.describe()}"
    lines = [f"Trainer({type(strategy).__name__}, data={describe_data(data)}{passes})"]
    if calls:
        lines.append(calls)
    lines.append("callbacks, in the order they fire at every hook:")
    for index, callback in enumerate(callbacks, start=1):
        lines.append(f"  {index}. {callback.describe()}")
    return "\n".join(lines)


def check_stop(reason: Any, status: Any) -> None:
    """The arguments of ``Trainer.stop``."""
    if not isinstance(reason, str) or not reason:
        raise TypeError(f"stop: reason must be a non-empty str, got {reason!r}")
    if status not in STATUSES or status == "error":
        allowed = [word for word in STATUSES if word != "error"]
        raise ValueError(f"stop: status must be one of {allowed}, got {status!r}")


def check_can_end(max_steps: Any, data: Any, callbacks: Sequence[Callback]) -> None:
    """Refuse a ``run()`` that nothing could end (no callback that may stop it, no
    ``max_steps``, no data) rather than loop forever."""
    if max_steps is None and data is None and not any(c.may_stop for c in callbacks):
        raise ValueError(
            "nothing would end this run: no callback can stop it, max_steps is None and "
            "there is no data; add a stopping criterion (e.g. steploop.MaxSteps(1000)) or "
            "pass max_steps"
        )


def check_steps_per_call(value: Any) -> int | str:
    """``Trainer(steps_per_call=)``: ``"auto"`` or an int >= 1 (``TypeError`` for another kind
    of value, ``ValueError`` for another str or a count below 1)."""
    if isinstance(value, str) and value == "auto":
        return value
    expected = "steps_per_call must be 'auto' or an int >= 1"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise TypeError(f"{expected}, got {value!r} ({type(value).__name__})")
    if isinstance(value, str) or value < 1:
        raise ValueError(f"{expected}, got {value!r}")
    return int(value)
