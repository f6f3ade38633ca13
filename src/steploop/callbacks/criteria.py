"""The stopping criteria that ship with steploop: budgets, convergence tests, non-finite losses.

Each states its condition once, as ``test(ops, state, q)``, a pure function of an explicit state
(``init()``), except ``TimeLimit``, which reads the clock on the host. See
``steploop.callbacks.stopping`` for the contract, composition and status words.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import attrs

from steploop import _validate
from steploop.callbacks.early_stopping import EarlyStopping
from steploop.callbacks.stopping import StoppingCriterion, _fmt
from steploop.ops import HOST
from steploop.records import Stop

__all__ = [
    "EarlyStopping",
    "GradientNormBelow",
    "LossBelow",
    "LossChangeBelow",
    "MaxSteps",
    "StopOnNaN",
    "TimeLimit",
]

if TYPE_CHECKING:
    from steploop.records import StepRecord
    from steploop.trainer import Trainer

@attrs.define(repr=False)
class MaxSteps(StoppingCriterion):
    """Stop when the trainer has done ``n`` steps in total (over all runs).

    A run started with the budget already spent does no step.

    >>> MaxSteps(1000)
    MaxSteps(1000)
    """

    n: int = attrs.field(converter=lambda value: _validate.count("MaxSteps n", value))
    status = "budget"
    array_form = True

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        return q.step >= self.n, ()

    def reason(self, q: Any) -> str:
        return f"reached {self.n} steps"

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
    array_form = True

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        return q.loss < self.tol, ()

    def reason(self, q: Any) -> str:
        return f"loss {_fmt(q.loss)} < {self.tol:g} at step {q.step}"

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
    array_form = True

    def init(self) -> tuple[float, ...]:
        return (math.nan, 0.0, math.nan)  # previous loss, calm steps, last change

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        previous, calm, _ = state
        change = abs(q.loss - previous)
        if ops is HOST:  # plain floats: ``where`` without its call (this runs at every step)
            calm = calm + 1.0 if change < self.tol else 0.0
        else:
            calm = ops.where(change < self.tol, calm + 1.0, 0.0)
        return calm >= self.patience, (q.loss, calm, change)

    def reason(self, q: Any) -> str:
        return (
            f"loss changed by less than {self.tol:g} for {self.patience} step(s) "
            f"(last change {_fmt(self.state()[2])} at step {q.step})"
        )


    def __repr__(self) -> str:
        return f"LossChangeBelow({self.tol:g}, patience={self.patience})"


@attrs.define(repr=False)
class GradientNormBelow(StoppingCriterion):
    """Stop when the global L2 norm of the loss's gradients is below ``tol``.

    Needs a strategy that reports gradients (``TapeStep``, ``PersistentTapeStep``). The norm is
    summed in float64 (in a fused call, by the framework: on large arrays its last bit may differ
    from NumPy's).

    >>> GradientNormBelow(1e-6)
    GradientNormBelow(1e-06)
    """

    tol: float = attrs.field(
        converter=lambda value: _validate.number("GradientNormBelow tol", value, positive=True)
    )
    requires_gradients = True
    array_form = True

    def init(self) -> tuple[float, ...]:
        return (math.nan,)  # the last norm

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        norm = ops.global_norm(q.gradients)
        return norm < self.tol, (norm,)

    def reason(self, q: Any) -> str:
        return f"gradient norm {_fmt(self.state()[0])} < {self.tol:g} at step {q.step}"


    def __repr__(self) -> str:
        return f"GradientNormBelow({self.tol:g})"


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

    def get_state(self) -> dict[str, Any]:
        return {"spent": self.spent}

    def set_state(self, state: dict[str, Any]) -> None:
        self._spent = float(state["spent"])

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
    array_form = True

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        if ops is HOST:  # a float: the namespace's two calls made directly (at every step)
            return not math.isfinite(q.loss), ()
        return ops.not_(ops.isfinite(q.loss)), ()

    def reason(self, q: Any) -> str:
        return f"loss became {q.loss} at step {q.step}"

    def __repr__(self) -> str:
        return "StopOnNaN()"
