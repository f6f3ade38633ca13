"""Stopping criteria: callbacks that end the run when a condition on the steps holds.

A criterion implements ``check(trainer, record)``, returning a ``Stop`` (a reason and a status
word) when it is met, else ``None``; ``check_before(trainer)`` may stop a run before its first
step (a budget already spent). Criteria compose: ``a | b`` stops when either is met, ``a & b``
when both are met at the same step. Every part of a composition sees every step (no
short-circuit), so stateful parts such as ``EarlyStopping`` keep counting.

Array form: ``MaxSteps``, ``LossBelow``, ``LossChangeBelow``, ``GradientNormBelow``,
``EarlyStopping``, ``StopOnNaN`` and their ``|``/``&`` compositions state their test once, as
``test(ops, state, q)`` against an array namespace (``steploop.ops``), with their running state
as a tuple of numbers. Step by step the Trainer evaluates it with plain Python floats; a fused
multi-step call (``Trainer(steps_per_call=K)``) evaluates the same function inside the compiled
loop and loads the state back afterwards, so both stop at the same step. ``TimeLimit`` and
criteria written only as ``check`` are evaluated on the host, after each fused chunk.

Status words: budgets (``MaxSteps``, ``TimeLimit``) say ``budget``; ``StopOnNaN`` says
``nonfinite``; the convergence criteria (``LossBelow``, ``LossChangeBelow``,
``GradientNormBelow``, ``EarlyStopping``) say ``converged``. ``a | b`` takes the status of the
part that fired first in order; ``a & b`` says ``converged`` if any part is a convergence
criterion, else the status of its first part.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.ops import HOST
from steploop.records import Stop

if TYPE_CHECKING:
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class StoppingCriterion(Callback):
    """Base of the criteria; subclasses implement ``check`` (or the array form) and set ``status``.

    A criterion with an array form sets ``array_form = True`` and writes ``state()``, ``load``,
    ``test`` and ``reason``; its ``check`` is then derived from them.
    """

    status: str = "converged"
    may_stop = True

    #: True when the criterion's test is written against an array namespace (``test``), so a
    #: fused multi-step call can evaluate it inside the compiled loop.
    array_form: ClassVar[bool] = False

    @property
    def reads_gradients(self) -> bool:  # type: ignore[override]
        return self.requires_gradients

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        """Return a ``Stop`` when the criterion is met after ``record``'s step."""
        if not self.array_form:
            raise NotImplementedError(f"{type(self).__name__} must implement check or test")
        met, state = self.test(HOST, self.state(), record)
        if state:
            self.load(state)
        return self._stop(self.reason(record)) if met else None

    # -- the array form -----------------------------------------------------------------------
    def state(self) -> tuple[float, ...]:
        """The running state the test carries from step to step, as numbers (default: none)."""
        return ()

    def load(self, state: tuple[Any, ...]) -> None:
        """Take ``state`` (as ``test`` returned it, or host numbers) as the running state."""

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        """Return ``(met, new_state)`` after the step ``q`` (``step``, ``loss``, ``values``,
        ``gradients``), using only operators and the functions of ``ops``."""
        raise NotImplementedError(f"{type(self).__name__} has no array form")

    def reason(self, q: Any) -> str:
        """Say why the criterion is met at ``q`` (the state has been loaded)."""
        return f"met at step {q.step}"

    def leaves(self) -> tuple[StoppingCriterion, ...]:
        """The criteria with a state of their own in this one (itself, or a composite's parts)."""
        return (self,)

    def nodes(self, path: str) -> Iterator[tuple[str, StoppingCriterion]]:
        """``(path, criterion)`` for this criterion and, in a composite, every part under it."""
        yield path, self

    def exact_part(self) -> StoppingCriterion | None:
        """An array-form criterion that is met wherever this one's array-form parts could make it
        met (itself when it has an array form; ``None`` when it has no such part). A fused call
        ends where it is met, so those parts stop exactly; only the host-only parts may run
        past their step."""
        return self if self.array_form else None

    def host_only_parts(self) -> tuple[StoppingCriterion, ...]:
        """The leaves without an array form (checked on the host, after a fused call)."""
        return tuple(leaf for leaf in self.leaves() if not leaf.array_form)

    def combine(self, ops: Any, mets: Iterator[Any]) -> Any:
        """This criterion's verdict from its leaves' verdicts, taken in ``leaves()`` order."""
        return next(mets)

    def stop_from(self, mets: Iterator[Any], q: Any) -> Stop | None:
        """The ``Stop`` that ``check`` would have returned, from its leaves' verdicts at ``q``."""
        return self._remember(q.step, self._stop(self.reason(q)) if next(mets) else None)

    def evaluate(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        """``check`` the step, and remember the verdict (``check_before`` reads it)."""
        return self._remember(record.step, self.check(trainer, record))

    def _remember(self, step: int, stop: Stop | None) -> Stop | None:
        self.__dict__["_verdict"] = (step, stop, _settings(self))
        return stop

    def verdict_at(self, step: int) -> Stop | None:
        """The ``Stop`` this criterion returned at ``step`` (``None`` if it was not met there, if
        it did not see that step, or if its settings changed since)."""
        verdict = self.__dict__.get("_verdict")
        if verdict is None or verdict[0] != step or verdict[2] != _settings(self):
            return None
        stop: Stop | None = verdict[1]
        return stop

    def check_before(self, trainer: Trainer) -> Stop | None:
        """Return a ``Stop`` when the run must end before its next step: by default, when the
        criterion was met at the last step already (a run that converged, or was restored from
        a checkpoint taken when it converged, does not take one more step). It says the reason
        it stopped with, so a resumed run says the same as the run it resumes."""
        return self.verdict_at(trainer.step) if trainer.step else None

    def on_run_begin(self, trainer: Trainer) -> None:
        self._start_run(trainer)
        stop = self.check_before(trainer)
        if stop is not None:
            trainer.stop(stop.reason, status=stop.status)

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        stop = self.evaluate(trainer, record)
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


def _settings(criterion: StoppingCriterion) -> Any:
    """What identifies a criterion's settings (attrs fields set at construction), so a verdict
    is not reused after they change."""
    kind = type(criterion)
    if attrs.has(kind):
        return tuple(getattr(criterion, f.name) for f in attrs.fields(kind) if f.init)
    return None


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
    def array_form(self) -> bool:  # type: ignore[override]
        return all(part.array_form for part in self.parts)

    def leaves(self) -> tuple[StoppingCriterion, ...]:
        return tuple(leaf for part in self.parts for leaf in part.leaves())

    @property
    def requires_gradients(self) -> bool:  # type: ignore[override]
        return any(part.requires_gradients for part in self.parts)

    @property
    def has_state(self) -> bool:  # type: ignore[override]
        return any(part.has_state for part in self.parts)

    @property
    def state_key(self) -> str:  # type: ignore[override]
        own = self.__dict__.get("_state_key")
        return own or f" {self.symbol} ".join(p.state_key for p in self.parts if p.has_state)

    def get_state(self) -> dict[str, Any]:
        return {"parts": [part.get_state() for part in self.parts]}

    def set_state(self, state: dict[str, Any]) -> None:
        for part, part_state in zip(self.parts, state["parts"], strict=True):
            part.set_state(part_state)

    #: the ``ops`` function that joins the parts' verdicts in a graph (``any_`` or ``all_``)
    operator = ""

    def _join(self, stops: list[Stop | None]) -> Stop | None:
        """The composite's ``Stop`` from its parts' (in order)."""
        raise NotImplementedError

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        return self._join([part.evaluate(trainer, record) for part in self.parts])

    def check_before(self, trainer: Trainer) -> Stop | None:
        return self._join([part.check_before(trainer) for part in self.parts])

    def stop_from(self, mets: Iterator[Any], q: Any) -> Stop | None:
        return self._remember(q.step, self._join([part.stop_from(mets, q) for part in self.parts]))

    def exact_part(self) -> StoppingCriterion | None:
        if self.array_form:
            return self
        exact = [part for part in (p.exact_part() for p in self.parts) if part is not None]
        if not exact:
            return None
        # AnyOf: met when an exact part is (a host-only part may fire on the host too);
        # AllOf: a host-only part counts as met, so the call ends where the exact parts all are
        return exact[0] if len(exact) == 1 else type(self)(*exact)

    def nodes(self, path: str) -> Iterator[tuple[str, StoppingCriterion]]:
        yield path, self
        for index, part in enumerate(self.parts):
            yield from part.nodes(f"{path}.parts[{index}]")

    def combine(self, ops: Any, mets: Iterator[Any]) -> Any:
        verdicts = [part.combine(ops, mets) for part in self.parts]
        join = getattr(ops, self.operator)
        result = verdicts[0]
        for verdict in verdicts[1:]:
            result = join(result, verdict)
        return result

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
    operator = "any_"

    def _join(self, stops: list[Stop | None]) -> Stop | None:
        return next((stop for stop in stops if stop is not None), None)


class AllOf(_Composite):
    """Met when every part is met at the same step; ``a & b`` builds one.

    >>> LossBelow(1e-6) & MaxSteps(100)
    LossBelow(1e-06) & MaxSteps(100)
    """

    symbol = "&"
    operator = "all_"

    def _join(self, stops: list[Stop | None]) -> Stop | None:
        if any(stop is None for stop in stops):
            return None
        met = [stop for stop in stops if stop is not None]
        statuses = [stop.status for stop in met]
        status = "converged" if "converged" in statuses else statuses[0]
        return Stop(" and ".join(stop.reason for stop in met), status)


class _Running:
    """A criterion whose running state is the list ``_running``, updated in place (no attribute
    writes, which attrs would route through its setters at every step)."""

    _running: list[float]

    def state(self) -> tuple[float, ...]:
        return tuple(self._running)

    def load(self, state: tuple[Any, ...]) -> None:
        self._running[:] = state

    def get_state(self) -> dict[str, Any]:
        return {"running": list(self._running)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._running[:] = [float(value) for value in state["running"]]


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
class LossChangeBelow(_Running, StoppingCriterion):
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
    # previous loss, calm steps, last change (a list: updated in place, no attribute writes)
    _running: list[float] = attrs.field(factory=lambda: [math.nan, 0.0, math.nan], init=False)

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        previous, calm, _ = state
        change = abs(q.loss - previous)
        calm = ops.where(change < self.tol, calm + 1.0, 0.0)
        return calm >= self.patience, (q.loss, calm, change)

    def reason(self, q: Any) -> str:
        return (
            f"loss changed by less than {self.tol:g} for {self.patience} step(s) "
            f"(last change {_fmt(self._running[2])} at step {q.step})"
        )


    def __repr__(self) -> str:
        return f"LossChangeBelow({self.tol:g}, patience={self.patience})"


@attrs.define(repr=False)
class GradientNormBelow(_Running, StoppingCriterion):
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
    _running: list[float] = attrs.field(factory=lambda: [math.nan], init=False)  # last norm

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        norm = ops.global_norm(q.gradients)
        return norm < self.tol, (norm,)

    def reason(self, q: Any) -> str:
        return f"gradient norm {_fmt(self._running[0])} < {self.tol:g} at step {q.step}"


    def __repr__(self) -> str:
        return f"GradientNormBelow({self.tol:g})"


@attrs.define(repr=False)
class EarlyStopping(_Running, StoppingCriterion):
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
    array_form = True
    # best value, its step, steps without improvement
    _running: list[float] = attrs.field(factory=lambda: [math.nan, 0.0, 0.0], init=False)

    @monitor.validator
    def _check_monitor(self, attribute: Any, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"EarlyStopping monitor must be a str, got {type(value).__name__}")

    @mode.validator
    def _check_mode(self, attribute: Any, value: Any) -> None:
        if value not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', got {value!r}")

    def _value(self, ops: Any, q: Any) -> Any:
        if self.monitor == "loss":
            return q.loss
        try:
            return ops.number(q.values[self.monitor])
        except KeyError:
            raise ValueError(
                f"EarlyStopping monitor={self.monitor!r} is not among the step's values "
                f"{sorted(q.values)} (or 'loss')"
            ) from None

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        best, best_step, wait = state
        value = self._value(ops, q)
        if self.mode == "min":
            improved = ops.any_(ops.isnan(best), value < best - self.min_delta)
        else:
            improved = ops.any_(ops.isnan(best), -value < -best - self.min_delta)
        best = ops.where(improved, value, best)
        best_step = ops.where(improved, ops.number(q.step), best_step)
        wait = ops.where(improved, 0.0, wait + 1.0)
        met = ops.all_(ops.not_(improved), wait >= self.patience)
        return met, (best, best_step, wait)

    def reason(self, q: Any) -> str:
        return (
            f"{self.monitor} did not improve by more than {self.min_delta:g} for "
            f"{self.patience} step(s) (best {_fmt(self._running[0])} at step "
            f"{int(self._running[1])}, stopped at step {q.step})"
        )


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
        return ops.not_(ops.isfinite(q.loss)), ()

    def reason(self, q: Any) -> str:
        return f"loss became {q.loss} at step {q.step}"

    def __repr__(self) -> str:
        return "StopOnNaN()"
