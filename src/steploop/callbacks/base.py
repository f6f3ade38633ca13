"""Callbacks: objects whose hooks the Trainer calls around runs and steps.

Every hook is a no-op here, so a callback overrides only what it needs. The hooks and their
arguments (``trainer`` is the running ``Trainer``):

* ``on_run_begin(trainer)`` when ``run``/``iterate`` starts (once per call);
* ``on_epoch_begin(trainer, epoch)`` before the first step of epoch ``epoch`` (counted from 1;
  only with ``Trainer(epochs=...)``, see ``steploop.epochs``);
* ``on_step_begin(trainer, step)`` before step number ``step`` (counted from 1) runs;
* ``on_step_end(trainer, record)`` after the step, with its ``StepRecord``;
* ``on_epoch_end(trainer, epoch)`` after the ``on_step_end`` hooks of the epoch's last step;
* ``on_error(trainer, error)`` when the step or a hook raised ``error``;
* ``on_run_end(trainer, result)`` when the call ends, however it ends, with its ``RunResult``.

Order: callbacks fire in the order they were given to the Trainer, at every hook, except that
those with ``fires_last`` (``Checkpoint``) fire after the others, so a checkpoint holds every
callback's state after its step; the Trainer's own resource release comes last
(``describe()`` prints the list). A hook asks the run to end
with ``trainer.stop(reason)``; the Trainer honours it before the next step, after the current
step's remaining ``on_step_end`` hooks ran.

Which hooks run after a stop and after an error:

* after a stop request, the remaining ``on_step_end`` hooks of that step, the release and every
  ``on_run_end`` hook run (and ``on_epoch_end`` when that step was its epoch's last); no further
  ``on_step_begin`` or ``on_epoch_begin`` does.
* after an error in a step or hook, the remaining hooks of that stage are skipped; every
  ``on_error`` hook, the release and every ``on_run_end`` hook (with status ``error``) run,
  then the error reaches the caller unchanged. An exception inside those clean-up hooks is
  logged under ``"steploop"`` and does not hide the first one.

A hook's signature is checked when the Trainer is built, so a mistake fails before training.

Fused steps (``Trainer(steps_per_call=K)``): the steps of a chunk run inside one call, then every
callback sees their records one by one, in order (``on_step_begin`` then ``on_step_end`` per
step), so a stop requested there takes effect after the chunk. A callback that must see live state
at its step (it reads ``StepRecord.variables``, changes variables or the optimiser, saves a
checkpoint) sets ``needs_live_state = True``: the Trainer then ends a fused call at every step of
its ``schedule`` (or answers ``next_sync_step``). A callback that reads ``StepRecord.gradients``
keeps ``reads_gradients`` true so fused calls return every step's gradients.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from steploop.schedule import EVERY_STEP, Schedule

if TYPE_CHECKING:
    import numpy as np

    from steploop.callbacks.every import Every
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer

log = logging.getLogger("steploop")

#: hook name -> the arguments it takes after ``self``.
HOOKS: dict[str, tuple[str, ...]] = {
    "on_run_begin": ("trainer",),
    "on_epoch_begin": ("trainer", "epoch"),
    "on_step_begin": ("trainer", "step"),
    "on_step_end": ("trainer", "record"),
    "on_epoch_end": ("trainer", "epoch"),
    "on_error": ("trainer", "error"),
    "on_run_end": ("trainer", "result"),
}


class Callback:
    """Base class of everything the Trainer notifies; every hook does nothing.

    >>> class CountSteps(Callback):
    ...     def __init__(self):
    ...         self.seen = 0
    ...     def on_step_end(self, trainer, record):
    ...         self.seen += 1
    >>> CountSteps().every(10)
    Every(callback=CountSteps, every=10)
    """

    #: True when the callback reads ``StepRecord.gradients``; the Trainer refuses it for a
    #: strategy that reports none.
    requires_gradients: bool = False

    #: Whether the callback may call ``trainer.stop``. A subclass that does not set it is taken to
    #: stop when one of its own methods calls something named ``stop`` (``trainer.stop(...)``);
    #: set it to True when the stop is requested elsewhere, False to say it never stops. A run
    #: whose callbacks none may stop, with no ``max_steps`` and no data, could never end and is
    #: refused; in fused calls the Trainer warns about callbacks that may stop from the host.
    may_stop: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "may_stop" not in cls.__dict__ and not cls.may_stop and _calls_stop(cls):
            cls.may_stop = True

    #: True for a callback that must see each step after every other one (``Checkpoint`` saves
    #: their state): such callbacks fire after the others, in the order given.
    fires_last: bool = False

    #: The steps at which the callback acts (the ``every=`` of loggers and ``Checkpoint``).
    schedule: Schedule = EVERY_STEP

    #: True when ``on_step_end`` reads or changes live state (variables, the optimiser, a
    #: checkpoint) at its scheduled steps: with ``steps_per_call > 1`` the Trainer ends a fused
    #: call at each of them.
    needs_live_state: bool = False

    #: False for callbacks that never read ``StepRecord.gradients`` (fused calls then need not
    #: return every step's gradients).
    reads_gradients: bool = True

    def next_sync_step(self, after: int, count: int) -> int | None:
        """The first step of ``after + 1 .. after + count`` at which this callback needs live
        state (the Trainer ends a fused call there), or ``None``; default: the first step of its
        ``schedule`` there if it ``needs_live_state``."""
        return self.schedule.first_within(after, count) if self.needs_live_state else None

    # -- state saved in checkpoints --------------------------------------------------------------
    @property
    def has_state(self) -> bool:
        """True when the callback keeps state a resumed run needs (it overrides ``get_state``)."""
        return type(self).get_state is not Callback.get_state

    @property
    def state_key(self) -> str:
        """The name its state is saved under; unique among a Trainer's callbacks (checked when
        the Trainer is built). Default: the class name; ``keyed(name)`` sets another."""
        return self.__dict__.get("_state_key") or type(self).__name__

    def keyed(self, key: str) -> Callback:
        """Save this callback's state under ``key`` (for two stateful callbacks of one class)."""
        if not isinstance(key, str) or not key:
            raise TypeError(
                f"{type(self).__name__}.keyed: key must be a non-empty str, got {key!r}"
            )
        object.__setattr__(self, "_state_key", key)
        return self

    def get_state(self) -> dict[str, Any]:
        """The callback's state as JSON-ready values (numbers, strings, lists, dicts)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Take back a state ``get_state`` returned (when a run resumes from a checkpoint)."""

    def get_arrays(self) -> Mapping[str, np.ndarray]:
        """Arrays a resumed run needs that ``get_state``'s JSON cannot hold (a copy of the
        variables), by name; a checkpoint saves them with the state, in ``ckpt-N.arrays.npz``
        (``steploop.checkpoint_arrays``). Default: none."""
        return {}

    def set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take back what ``get_arrays`` returned at the checkpoint a run resumes from (an empty
        mapping when it holds none for this callback, as an older checkpoint). Default: nothing."""

    def validate(self, trainer: Trainer) -> str | None:
        """Say what is wrong when this callback cannot work with ``trainer`` (its strategy, say):
        the Trainer raises a ``TypeError`` with the answer when it is built. Default: ``None``."""
        return None

    def on_run_begin(self, trainer: Trainer) -> None:
        """Called when ``run`` or ``iterate`` starts."""

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        """Called before the first step of epoch ``epoch`` (counted from 1; with ``epochs=``)."""

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        """Called before step ``step`` (counted from 1)."""

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        """Called after each step with its record."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """Called after the ``on_step_end`` hooks of the last step of epoch ``epoch``."""

    def on_error(self, trainer: Trainer, error: BaseException) -> None:
        """Called when the step or a hook raised ``error``."""

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        """Called when ``run`` or ``iterate`` ends, after a stop or an error too."""

    def every(self, n: int | Schedule) -> Every:
        """This callback, with its step hooks called only on steps that are multiples of ``n``
        (or on the steps of a ``Schedule``)."""
        from steploop.callbacks.every import Every

        return Every(self, n)

    def describe(self) -> str:
        """One line saying what this callback is (used by ``Trainer.describe``)."""
        return repr(self)

    def __repr__(self) -> str:
        return type(self).__name__


def _names(code: types.CodeType) -> Iterator[str]:
    """The attribute and global names ``code`` and the functions nested in it use."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names(constant)


def _calls_stop(kind: type) -> bool:
    """Whether a method defined in ``kind`` itself uses a name ``stop`` (``trainer.stop(...)``)."""
    for value in vars(kind).values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            value = value.fget
        code = getattr(value, "__code__", None)
        if isinstance(code, types.CodeType) and "stop" in _names(code):
            return True
    return False


def overridden_hooks(callback: Callback) -> tuple[str, ...]:
    """The hook names ``callback``'s class implements (not inherited as no-ops from Callback)."""
    return _overridden(type(callback))  # type: ignore[arg-type]


@functools.cache
def _overridden(kind: type) -> tuple[str, ...]:
    return tuple(name for name in HOOKS if getattr(kind, name) is not getattr(Callback, name))


class CallbackList(Callback):
    """Callbacks called in order at every hook; itself a Callback.

    Each hook is dispatched only to the callbacks that implement it, so a registered callback that
    ignores a hook costs nothing there.

    >>> CallbackList([Callback(), Callback()]).callbacks
    (Callback, Callback)
    """

    def __init__(self, callbacks: Iterable[Callback] = (), *, checked: bool = False) -> None:
        if not checked:
            from steploop.callbacks.signatures import as_callbacks  # it imports this module

            callbacks = as_callbacks(callbacks)
        given = tuple(callbacks)
        self.callbacks: tuple[Callback, ...] = tuple(sorted(given, key=lambda c: c.fires_last))
        hooks_of = [(c, overridden_hooks(c)) for c in self.callbacks]
        self._by_hook: dict[str, tuple[Callback, ...]] = {
            name: tuple(c for c, hooks in hooks_of if name in hooks) for name in HOOKS
        }
        self._by_hook["on_step_end"] = tuple(
            c for c in self._by_hook["on_step_end"] if getattr(c, "_needed_on_step_end", True)
        )
        self._step_begin = [c.on_step_begin for c in self._by_hook["on_step_begin"]]
        # a criterion whose on_step_end only checks is called at its check (one call a step,
        # not two); a Stop it returns goes to its ``stopped`` (see StoppingCriterion.on_step_end)
        self._step_end = [
            (c.check, c.stopped) if getattr(c.on_step_end, "checks_only", False)  # type: ignore[attr-defined]
            else (c.on_step_end, None)
            for c in self._by_hook["on_step_end"]
        ]

    @property
    def requires_gradients(self) -> bool:  # type: ignore[override]
        return any(c.requires_gradients for c in self.callbacks)

    def on_run_begin(self, trainer: Trainer) -> None:
        for callback in self._by_hook["on_run_begin"]:
            callback.on_run_begin(trainer)

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        for callback in self._by_hook["on_epoch_begin"]:
            callback.on_epoch_begin(trainer, epoch)

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        for hook in self._step_begin:
            hook(trainer, step)

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        for hook, stopped in self._step_end:
            stop = hook(trainer, record)
            if stopped is not None and stop is not None:
                stopped(trainer, record, stop)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        for callback in self._by_hook["on_epoch_end"]:
            callback.on_epoch_end(trainer, epoch)

    def on_error(self, trainer: Trainer, error: BaseException) -> None:
        for callback in self._by_hook["on_error"]:
            callback.on_error(trainer, error)

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        for callback in self._by_hook["on_run_end"]:
            callback.on_run_end(trainer, result)

    def call_each(self, hook: str, trainer: Trainer, argument: Any) -> BaseException | None:
        """Call ``hook`` on every callback even if some raise (each exception is logged under
        ``"steploop"``); return the first exception."""
        first: BaseException | None = None
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(trainer, argument)
            except Exception as exc:
                log.exception("%r.%s raised", callback, hook)
                first = first or exc
        return first

    def __iter__(self) -> Any:
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __repr__(self) -> str:
        return f"CallbackList({list(self.callbacks)!r})"
