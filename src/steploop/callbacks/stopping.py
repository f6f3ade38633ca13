"""Stopping criteria: callbacks that end the run when a condition on the steps holds.

A criterion implements ``check(trainer, record)``, returning a ``Stop`` (a reason and a status
word) when it is met, else ``None``; ``check_before(trainer)`` may stop a run before its first
step (a budget already spent). Criteria compose: ``a | b`` stops when either is met, ``a & b``
when both are met at the same step. Every part of a composition sees every step (no
short-circuit), so stateful parts such as ``EarlyStopping`` keep counting.

Status words: budgets (``MaxSteps``, ``TimeLimit``) say ``budget``; ``StopOnNaN`` says
``nonfinite``; the convergence criteria (``LossBelow``, ``LossChangeBelow``,
``GradientNormBelow``, ``EarlyStopping``) say ``converged``. ``a | b`` takes the status of the
part that fired first in order; ``a & b`` says ``converged`` if any part is a convergence
criterion, else the status of its first part.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.records import Stop

if TYPE_CHECKING:
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class StoppingCriterion(Callback):
    """Base of the criteria; subclasses implement ``check`` and set ``status``."""

    status: str = "converged"

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        """Return a ``Stop`` when the criterion is met after ``record``'s step."""
        raise NotImplementedError

    def check_before(self, trainer: Trainer) -> Stop | None:
        """Return a ``Stop`` when the run must end before its next step (default: never)."""
        return None

    def on_run_begin(self, trainer: Trainer) -> None:
        self._start_run(trainer)
        stop = self.check_before(trainer)
        if stop is not None:
            trainer.stop(stop.reason, status=stop.status)

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        stop = self.check(trainer, record)
        if stop is not None:
            trainer.stop(stop.reason, status=stop.status)

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        self._end_run(trainer)

    def _start_run(self, trainer: Trainer) -> None:
        """Per-run set-up of a criterion's state (default: nothing)."""

    def _end_run(self, trainer: Trainer) -> None:
        """Per-run tear-down of a criterion's state (default: nothing)."""

    def _stop(self, reason: str) -> Stop:
        return Stop(f"{self!r}: {reason}", self.status)

    def __or__(self, other: StoppingCriterion) -> AnyOf:
        return AnyOf(self, _criterion(other, "|"))

    def __and__(self, other: StoppingCriterion) -> AllOf:
        return AllOf(self, _criterion(other, "&"))


def _criterion(value: Any, operator: str) -> StoppingCriterion:
    if not isinstance(value, StoppingCriterion):
        raise TypeError(f"'{operator}' combines stopping criteria; got {type(value).__name__}")
    return value


class _Composite(StoppingCriterion):
    """Shared machinery of ``AnyOf`` and ``AllOf``: parts that all see every step."""

    symbol = ""

    def __init__(self, *parts: StoppingCriterion) -> None:
        flat: list[StoppingCriterion] = []
        for part in parts:
            _criterion(part, self.symbol)
            flat.extend(part.parts if type(part) is type(self) else (part,))  # type: ignore[attr-defined]
        self.parts: tuple[StoppingCriterion, ...] = tuple(flat)

    @property
    def requires_gradients(self) -> bool:  # type: ignore[override]
        return any(part.requires_gradients for part in self.parts)

    def _start_run(self, trainer: Trainer) -> None:
        for part in self.parts:
            part._start_run(trainer)

    def _end_run(self, trainer: Trainer) -> None:
        for part in self.parts:
            part._end_run(trainer)

    def __repr__(self) -> str:
        return f" {self.symbol} ".join(
            f"({part!r})" if isinstance(part, _Composite) else repr(part) for part in self.parts
        )


class AnyOf(_Composite):
    """Met when any part is met; ``a | b`` builds one.

    >>> LossBelow(1e-6) | MaxSteps(100)
    LossBelow(1e-06) | MaxSteps(100)
    """

    symbol = "|"

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        stops = [part.check(trainer, record) for part in self.parts]
        return next((stop for stop in stops if stop is not None), None)

    def check_before(self, trainer: Trainer) -> Stop | None:
        stops = [part.check_before(trainer) for part in self.parts]
        return next((stop for stop in stops if stop is not None), None)


class AllOf(_Composite):
    """Met when every part is met at the same step; ``a & b`` builds one.

    >>> LossBelow(1e-6) & MaxSteps(100)
    LossBelow(1e-06) & MaxSteps(100)
    """

    symbol = "&"

    def _join(self, stops: list[Stop | None]) -> Stop | None:
        if any(stop is None for stop in stops):
            return None
        met = [stop for stop in stops if stop is not None]
        statuses = [stop.status for stop in met]
        status = "converged" if "converged" in statuses else statuses[0]
        return Stop(" and ".join(stop.reason for stop in met), status)

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        return self._join([part.check(trainer, record) for part in self.parts])

    def check_before(self, trainer: Trainer) -> Stop | None:
        return self._join([part.check_before(trainer) for part in self.parts])


@attrs.define(repr=False)
class MaxSteps(StoppingCriterion):
    """Stop when the trainer has done ``n`` steps in total (over all runs).

    A run started with the budget already spent does no step.

    >>> MaxSteps(1000)
    MaxSteps(1000)
    """

    n: int = attrs.field(converter=lambda value: _validate.count("MaxSteps n", value))
    status = "budget"

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        return self._stop(f"reached {self.n} steps") if record.step >= self.n else None

    def check_before(self, trainer: Trainer) -> Stop | None:
        return self._stop(f"{self.n} steps already done") if trainer.step >= self.n else None

    def __repr__(self) -> str:
        return f"MaxSteps({self.n})"


@attrs.define(repr=False)
class LossBelow(StoppingCriterion):
    """Stop when a step's loss is below ``tol`` (the article's error tolerance).

    >>> LossBelow(1e-12)
    LossBelow(1e-12)
    """

    tol: float = attrs.field(converter=lambda value: _validate.number("LossBelow tol", value))

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        if record.loss < self.tol:
            return self._stop(f"loss {_fmt(record.loss)} < {self.tol:g} at step {record.step}")
        return None

    def __repr__(self) -> str:
        return f"LossBelow({self.tol:g})"


@attrs.define(repr=False)
class LossChangeBelow(StoppingCriterion):
    """Stop when the loss changed by less than ``tol`` for ``patience`` consecutive steps.

    >>> LossChangeBelow(1e-9, patience=3)
    LossChangeBelow(1e-09, patience=3)
    """

    tol: float = attrs.field(
        converter=lambda value: _validate.number("LossChangeBelow tol", value, positive=True)
    )
    patience: int = attrs.field(
        default=1, converter=lambda value: _validate.count("LossChangeBelow patience", value)
    )
    _previous: float = attrs.field(default=math.nan, init=False)
    _calm: int = attrs.field(default=0, init=False)

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        change = abs(record.loss - self._previous)
        self._previous = record.loss
        self._calm = self._calm + 1 if change < self.tol else 0
        if self._calm >= self.patience:
            return self._stop(
                f"loss changed by less than {self.tol:g} for {self.patience} step(s) "
                f"(last change {_fmt(change)} at step {record.step})"
            )
        return None

    def __repr__(self) -> str:
        return f"LossChangeBelow({self.tol:g}, patience={self.patience})"


@attrs.define(repr=False)
class GradientNormBelow(StoppingCriterion):
    """Stop when the global L2 norm of the loss's gradients is below ``tol``.

    Needs a strategy that reports gradients (``TapeStep``, ``PersistentTapeStep``).

    >>> GradientNormBelow(1e-6)
    GradientNormBelow(1e-06)
    """

    tol: float = attrs.field(
        converter=lambda value: _validate.number("GradientNormBelow tol", value, positive=True)
    )
    requires_gradients = True

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        gradients = record.gradients
        norm = math.sqrt(sum(float(np.sum(np.square(g))) for g in gradients.values()))
        if norm < self.tol:
            return self._stop(f"gradient norm {_fmt(norm)} < {self.tol:g} at step {record.step}")
        return None

    def __repr__(self) -> str:
        return f"GradientNormBelow({self.tol:g})"


@attrs.define(repr=False)
class EarlyStopping(StoppingCriterion):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` steps.

    ``monitor`` is ``"loss"`` or the name of a value the strategy reports; lower is better
    (``mode="max"`` for higher). As in Keras, a step improves when it beats the best so far by more
    than ``min_delta``; the run stops once ``patience`` steps in a row did not.

    >>> EarlyStopping(patience=5)
    EarlyStopping(patience=5, min_delta=0, monitor='loss', mode='min')
    """

    patience: int = attrs.field(
        converter=lambda value: _validate.count("EarlyStopping patience", value)
    )
    min_delta: float = attrs.field(
        default=0.0,
        converter=lambda value: _validate.number(
            "EarlyStopping min_delta", value, nonnegative=True
        ),
    )
    monitor: str = attrs.field(default="loss")
    mode: str = attrs.field(default="min")
    _best: float = attrs.field(default=math.nan, init=False)
    _best_step: int = attrs.field(default=0, init=False)
    _wait: int = attrs.field(default=0, init=False)

    @monitor.validator
    def _check_monitor(self, attribute: Any, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"EarlyStopping monitor must be a str, got {type(value).__name__}")

    @mode.validator
    def _check_mode(self, attribute: Any, value: Any) -> None:
        if value not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', got {value!r}")

    def _value(self, record: StepRecord) -> float:
        if self.monitor == "loss":
            return record.loss
        try:
            return float(record.values[self.monitor])
        except KeyError:
            raise ValueError(
                f"EarlyStopping monitor={self.monitor!r} is not among the step's values "
                f"{sorted(record.values)} (or 'loss')"
            ) from None

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        value = self._value(record)
        signed = value if self.mode == "min" else -value
        best = self._best if self.mode == "min" else -self._best
        if math.isnan(self._best) or signed < best - self.min_delta:
            self._best, self._best_step, self._wait = value, record.step, 0
            return None
        self._wait += 1
        if self._wait >= self.patience:
            return self._stop(
                f"{self.monitor} did not improve by more than {self.min_delta:g} for "
                f"{self.patience} step(s) (best {_fmt(self._best)} at step {self._best_step}, "
                f"stopped at step {record.step})"
            )
        return None

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta:g}, "
            f"monitor={self.monitor!r}, mode={self.mode!r})"
        )


@attrs.define(repr=False)
class TimeLimit(StoppingCriterion):
    """Stop once the runs have spent ``seconds`` of wall time in total (time between runs is not
    counted).

    >>> TimeLimit(60)
    TimeLimit(60s)
    """

    seconds: float = attrs.field(
        converter=lambda value: _validate.number("TimeLimit seconds", value, positive=True)
    )
    status = "budget"
    _spent: float = attrs.field(default=0.0, init=False)
    _started: float | None = attrs.field(default=None, init=False)

    @property
    def spent(self) -> float:
        """Seconds spent so far, including the current run."""
        running = 0.0 if self._started is None else time.perf_counter() - self._started
        return self._spent + running

    def _start_run(self, trainer: Trainer) -> None:
        self._started = time.perf_counter()

    def _end_run(self, trainer: Trainer) -> None:
        self._spent = self.spent
        self._started = None

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        spent = self.spent
        if spent >= self.seconds:
            return self._stop(f"{spent:.3g}s spent by step {record.step}")
        return None

    def check_before(self, trainer: Trainer) -> Stop | None:
        if self._spent >= self.seconds:
            return self._stop(f"{self._spent:.3g}s already spent")
        return None

    def __repr__(self) -> str:
        return f"TimeLimit({self.seconds:g}s)"


@attrs.define(repr=False)
class StopOnNaN(StoppingCriterion):
    """Stop when a step's loss is nan or infinite (like Keras' ``TerminateOnNaN``).

    >>> StopOnNaN()
    StopOnNaN()
    """

    status = "nonfinite"

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        if not math.isfinite(record.loss):
            return self._stop(f"loss became {record.loss} at step {record.step}")
        return None

    def __repr__(self) -> str:
        return "StopOnNaN()"
