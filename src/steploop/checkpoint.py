"""Checkpoints: save a run so that a process killed at any step resumes exactly.

``Checkpoint(directory, every=N, keep=3)`` saves, every N steps and at the end of each run that
did not fail:

* the strategy's variables and optimiser state (``strategy.save(prefix)``; TensorFlow strategies
  write a ``tf.train.Checkpoint`` keyed by variable name and a record of each variable's name,
  shape and dtype), restored by name: ``check_variables`` refuses a checkpoint whose variables
  differ from the strategy's,
* the step count and the data position (the batches consumed: one a step; with epochs, the epoch
  and the batches taken in it, see ``steploop.epochs``),
* the history (``ckpt-N.history.npz``),
* every stateful callback's state (``ckpt-N.trainer.json``), under its ``state_key``, and the
  arrays some keep (``ckpt-N.arrays.npz``, see ``steploop.checkpoint_arrays``: the copy of the
  best step's variables of ``EarlyStopping(restore_best_weights=True)``).

A checkpoint exists once the index ``checkpoint.json`` names it; the index is replaced atomically
(``os.replace``) after every file of the checkpoint is written, so a crash mid-write leaves the
previous checkpoint as the latest, intact. Only the ``keep`` newest checkpoints stay on disk, and
the latest one is never deleted. ``Trainer.restore(directory)`` loads the latest.

Keeping the best (``monitor=``, Keras' ``save_best_only``): a scheduled step is saved only if
its monitored value strictly beats the best saved one, and a run's end saves nothing new, so the
latest checkpoint is the best (``Trainer.restore`` resumes from it) and the kept ones the ``keep``
best; the best value is saved with them, so a resumed run saves no worse step. As it fires last,
it reads the ``Evaluate`` that publishes its name wherever that is listed (not via
``monitor.link``), and checks, and ends fused calls, only at the steps both schedules share.
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.callbacks.every import Every
from steploop.callbacks.monitor import Publisher, auto_mode, step_value
from steploop.callbacks.stopping import StoppingCriterion
from steploop.capabilities import Checkpointable, has
from steploop.checkpoint_arrays import collect, hand_back
from steploop.checkpoint_files import (  # the strategies' save and restore use them from here
    INDEX,
    atomic_write,
    check_variables,  # noqa: F401
    describe_variable,  # noqa: F401
    prefix_of,
    read_arrays,
    read_index,
    writable,
    write_arrays,
)
from steploop.history import History
from steploop.records import Stop
from steploop.schedule import Schedule, as_schedule, every_repr

if TYPE_CHECKING:
    from steploop.epochs import Epochs
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer

log = logging.getLogger("steploop")


def _checkpointable(strategy: Any) -> Checkpointable:
    if not isinstance(strategy, Checkpointable):
        raise TypeError(
            f"{type(strategy).__name__} cannot be checkpointed: implement save(prefix) and "
            "restore(prefix)"
        )
    return strategy


def save(trainer: Trainer, directory: str, keep: int) -> int:
    """Write a checkpoint of ``trainer`` at its current step; return the step."""
    step = trainer.step
    prefix = prefix_of(directory, step)
    _checkpointable(trainer.strategy).save(prefix)
    state = json.dumps(trainer.state()).encode()
    atomic_write(f"{prefix}.trainer.json", lambda file: file.write(state))
    history = {name: np.asarray(trainer.history[name]) for name in trainer.history}
    atomic_write(f"{prefix}.history.npz", lambda file: np.savez(file, **history))  # type: ignore[arg-type]
    write_arrays(prefix, collect(trainer.callbacks))
    index = read_index(directory) or {"latest": None, "kept": []}
    kept = [n for n in index["kept"] if n != step] + [step]
    dropped, kept = kept[:-keep], kept[-keep:]
    record = json.dumps({"latest": step, "kept": kept}).encode()
    atomic_write(os.path.join(directory, INDEX), lambda file: file.write(record))
    for old in dropped:  # only once the index no longer names them; never the latest
        for path in glob.glob(glob.escape(prefix_of(directory, old)) + ".*"):
            with contextlib.suppress(OSError):
                os.remove(path)
    return step


def load(directory: str) -> tuple[int, str, dict[str, Any], dict[str, np.ndarray]] | None:
    """``(step, prefix, trainer state, history columns)`` of the latest checkpoint, or ``None``."""
    index = read_index(directory)
    if index is None or index.get("latest") is None:
        return None
    step = int(index["latest"])
    prefix = prefix_of(directory, step)
    with open(f"{prefix}.trainer.json", encoding="utf-8") as file:
        state = json.load(file)
    with np.load(f"{prefix}.history.npz") as saved:
        columns = {name: saved[name] for name in saved.files}
    return step, prefix, state, columns


def criteria_nodes(callbacks: Sequence[Callback]) -> Iterator[tuple[str, StoppingCriterion]]:
    """Every stopping criterion among ``callbacks`` (composites' parts too), keyed by its place
    and its repr, so a verdict is restored only to the criterion that made it."""
    for index, callback in enumerate(callbacks):
        inner = callback.callback if isinstance(callback, Every) else callback
        if isinstance(inner, StoppingCriterion):
            for path, criterion in inner.nodes(f"callbacks[{index}]"):
                yield f"{path} {criterion!r}", criterion


def forget_verdicts(callbacks: Sequence[Callback]) -> None:
    """Drop every criterion's remembered verdict (a new Trainer: one from another one's run)."""
    for callback in callbacks:
        inner = callback.callback if isinstance(callback, Every) else callback
        if isinstance(inner, StoppingCriterion):
            for _, criterion in inner.nodes(""):
                criterion.forget_verdict()


def trainer_state(trainer: Trainer, epochs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Trainer's part of a checkpoint: its step, its position in its ``epochs`` (if it has
    some), its stateful callbacks' states by key, and the verdicts of the criteria met at that
    step."""
    step = trainer.step
    extra = {} if epochs is None else {"epochs": epochs}
    return {
        "format": 1,
        "step": step,
        **extra,
        "callbacks": {c.state_key: c.get_state() for c in trainer.callbacks if c.has_state},
        "verdicts": {
            key: [stop.reason, stop.status]
            for key, criterion in criteria_nodes(trainer.callbacks)
            if (stop := criterion.verdict_at(step)) is not None
        },
    }


def restore(
    trainer: Trainer, directory: str, epochs: Epochs | None = None
) -> tuple[int, History] | None:
    """Load the latest checkpoint of ``directory`` into the strategy, the callbacks and the
    ``epochs`` (the data position) of ``trainer``; return its step and history (``None``,
    logged, when there is none yet)."""
    loaded = load(directory)
    if loaded is None:
        log.info(
            "restore: no checkpoint in %r yet; nothing restored, starting at step %d",
            directory,
            trainer.step,
        )
        return None
    step, prefix, state, columns = loaded
    saved = state["callbacks"]
    stateful = [c for c in trainer.callbacks if c.has_state]
    missing = [c.state_key for c in stateful if c.state_key not in saved]
    if missing:
        raise ValueError(
            f"checkpoint {prefix!r} has no state for {missing}; it has {sorted(saved)}"
        )
    if ("epochs" in state) != (epochs is not None):
        saved_by = "with epochs" if "epochs" in state else "without epochs"
        raise ValueError(
            f"checkpoint {prefix!r} was saved by a Trainer {saved_by} and this one "
            f"{'has none' if epochs is None else 'has epochs'}: they count the data position "
            "differently; resume with the same kind of Trainer"
        )
    _checkpointable(trainer.strategy).restore(prefix)
    for callback in stateful:
        callback.set_state(saved[callback.state_key])
    hand_back(trainer.callbacks, read_arrays(prefix))
    step = int(state["step"])
    verdicts = state.get("verdicts", {})
    for key, criterion in criteria_nodes(trainer.callbacks):
        criterion.forget_verdict()
        met = verdicts.get(key)
        if met is not None:
            criterion._remember(step, Stop(*met))
    if epochs is not None:
        epochs.restore(state["epochs"], step)
    return step, History.from_columns(columns)


def _monitor(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"Checkpoint monitor must be None or a non-empty str, got {value!r}")


def _mode(instance: Any, attribute: Any, value: Any) -> None:
    if value not in ("min", "max", "auto") or (value != "auto" and instance.monitor is None):
        raise ValueError(
            f"Checkpoint mode must be 'min', 'max' or 'auto' ('min' and 'max' with a monitor), "
            f"got {value!r}"
        )


@attrs.define(repr=False)
class Checkpoint(Callback):
    """Save the run every ``every`` steps and when a run ends, keeping the ``keep`` newest.

    The directory is created and tested for writing when the callback is made, so an unwritable
    one fails now, not at step 10,000. Resume with ``Trainer.restore(directory)``.

    >>> import tempfile
    >>> Checkpoint(tempfile.mkdtemp(), every=100)  # doctest: +ELLIPSIS
    Checkpoint('...', every=100, keep=3)

    With ``monitor`` (``"loss"``, a step's value, ``"val_loss"``) and ``mode`` (as EarlyStopping's)
    it keeps the best: of losses 3, 1, 2, 0.5, 0.7, steps 1, 2, 4 improve; the 2 best stay.

    >>> import steploop as sl
    >>> from steploop.numpy import GradientDescent
    >>> gd = GradientDescent(lambda x, b: (x * 0 + b, x * 0 + 1), 0.0, learning_rate=0.1)
    >>> best = Checkpoint(tempfile.mkdtemp(), every=1, keep=2, monitor="loss")
    >>> sl.Trainer(gd, [best], data=[3.0, 1.0, 2.0, 0.5, 0.7]).run().steps
    5
    >>> read_index(best.directory)
    {'latest': 4, 'kept': [2, 4]}
    """

    directory: str = attrs.field(
        converter=lambda value: writable(_validate.path("Checkpoint directory", value))
    )
    schedule: Schedule = attrs.field(
        alias="every", converter=lambda value: as_schedule(value, "Checkpoint every")
    )
    keep: int = attrs.field(
        default=3, converter=lambda value: _validate.count("Checkpoint keep", value)
    )
    monitor: str | None = attrs.field(default=None, kw_only=True, validator=_monitor)
    mode: str = attrs.field(default="auto", kw_only=True, validator=_mode)
    _saved: int = attrs.field(default=-1, init=False)
    _source: Any = attrs.field(default=None, init=False)  # the Evaluate it reads, if any
    _best: float | None = attrs.field(default=None, init=False)  # of the saved steps
    may_stop = False
    reads_gradients = False
    needs_live_state = True  # saving needs the variables of its step: fused calls end there
    fires_last = True  # it saves the other callbacks' state after they saw the step

    def __attrs_post_init__(self) -> None:
        if self.monitor is not None:
            self.mode = auto_mode(self.monitor, self.mode)

    def validate(self, trainer: Trainer) -> str | None:
        if self.monitor is not None:  # it fires last: a publisher anywhere has published
            found = [c for c in trainer.callbacks if isinstance(c, Publisher)]
            self._source = next((c for c in found if c.provides(self.monitor)), None)
        if has(trainer.strategy, Checkpointable):
            return None
        name = type(trainer.strategy).__name__
        return f"needs a strategy that can be saved; {name} does not implement save and restore"

    def next_sync_step(self, after: int, count: int) -> int | None:
        """Its first step in ``after + 1 .. after + count`` that its publisher shares, if any."""
        step = self.schedule.first_within(after, count)
        while step is not None and self._source is not None:
            if self._source.schedule.fires(step):
                return step
            step = self.schedule.first_within(step, after + count - step)
        return step

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if self.monitor is None:
            if self.schedule.fires(record.step):
                self.save(trainer)
            return
        values = record.values if self._source is None else self._source.published_at(record.step)
        if values is None:  # not one of its publisher's steps
            return
        value = step_value("Checkpoint", self.monitor, record.loss, values)  # fails early
        if self.schedule.fires(record.step) and self.improves(value):
            self._best = value
            self._saved = save(trainer, self.directory, self.keep)

    def improves(self, value: float) -> bool:
        """Whether ``value`` is strictly better than the best saved one (``nan`` never is)."""
        if math.isnan(value) or self._best is None:
            return not math.isnan(value)
        return value < self._best if self.mode == "min" else value > self._best

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.monitor is None and result.status != "error" and trainer.step > 0:
            self.save(trainer)

    @property
    def has_state(self) -> bool:  # type: ignore[override]
        return self.monitor is not None  # the best value; a plain Checkpoint keeps none

    def get_state(self) -> dict[str, Any]:
        return {"best": self._best}

    def set_state(self, state: dict[str, Any]) -> None:
        self._best = None if state["best"] is None else float(state["best"])

    def save(self, trainer: Trainer) -> None:
        """Write a checkpoint of the trainer's current step now (once per step)."""
        if trainer.step != self._saved:
            self._saved = save(trainer, self.directory, self.keep)

    @property
    def latest(self) -> int | None:
        """The step of the newest checkpoint in the directory (``None`` when there is none)."""
        index = read_index(self.directory)
        return None if index is None else index.get("latest")

    def __repr__(self) -> str:
        best = "" if self.monitor is None else f", monitor={self.monitor!r}, mode={self.mode!r}"
        every = every_repr(self.schedule)
        return f"Checkpoint({self.directory!r}, every={every}, keep={self.keep}{best})"
