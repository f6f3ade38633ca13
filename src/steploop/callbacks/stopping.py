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

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from steploop._fields import field_names
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

    A criterion with an array form sets ``array_form = True`` and writes ``test`` (a pure
    function of an explicit state), ``reason`` and, when it keeps a running state, ``init``; its
    ``check``, its checkpointed state and its "met at the last step" are derived from them.
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
        """Return a ``Stop`` when the criterion is met after ``record``'s step (by default, from
        ``test`` on the host)."""
        held = self.__dict__  # state() and load(), inlined: this runs at every step
        state = held.get("_state")
        met, state = self.test(HOST, self.state() if state is None else state, record)
        if state:
            held["_state"] = state if type(state) is tuple else tuple(state)
        return self._stop(self.reason(record)) if met else None

    def state(self) -> tuple[Any, ...]:
        """The state after the last step ``test`` saw (``init()`` before the first). It is held
        here and nowhere else; ``test`` itself is a pure function of it."""
        state: tuple[Any, ...] | None = self.__dict__.get("_state")
        if state is None:
            state = self.__dict__["_state"] = tuple(self.init())
        return state

    def load(self, state: tuple[Any, ...]) -> None:
        """Take ``state`` (as ``test`` returned it, or host numbers) as the running state."""
        self.__dict__["_state"] = state if type(state) is tuple else tuple(state)

    # -- the array form -----------------------------------------------------------------------
    def init(self) -> tuple[float, ...]:
        """The state ``test`` starts from, as numbers (default: none, a stateless criterion)."""
        return ()

    @property
    def has_state(self) -> bool:  # type: ignore[override]
        """A criterion with a running state (``init()`` not empty) or its own ``get_state``."""
        if type(self).get_state is not StoppingCriterion.get_state:
            return True
        return bool(self.init())

    def get_state(self) -> dict[str, Any]:
        return {"state": [float(value) for value in self.state()]}

    def set_state(self, state: dict[str, Any]) -> None:
        self.load(tuple(float(value) for value in state["state"]))

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        """Return ``(met, new_state)`` after the step ``q`` (``step``, ``loss``, ``values``,
        ``gradients``), using only operators and the functions of ``ops``."""
        name = type(self).__name__
        if self.array_form:
            raise NotImplementedError(f"{name} sets array_form = True but implements no test")
        raise NotImplementedError(f"{name} must implement check or test (it has no array form)")

    def reason(self, q: Any) -> str:
        """Say why the criterion is met at ``q`` (the state has been loaded)."""
        return f"met at step {q.step}"

    @property
    def stops_at_sync(self) -> bool:
        """True when its host check can be met only at steps where fused calls end anyway (a
        monitor published by an earlier callback that needs live state there), so it stops
        exactly without an array form."""
        return False

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

    def combine(self, ops: Any, verdicts: Iterator[Any]) -> Any:
        """This criterion's verdict from its leaves' verdicts, taken in ``leaves()`` order."""
        return next(verdicts)

    def stop_from(self, verdicts: Iterator[Any], q: Any) -> Stop | None:
        """The ``Stop`` that ``check`` would have returned, from its leaves' verdicts at ``q``."""
        return self._remember(q.step, self._stop(self.reason(q)) if next(verdicts) else None)

    def evaluate(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        """``check`` the step, and remember the verdict (``check_before`` reads it)."""
        return self._remember(record.step, self.check(trainer, record))

    def _remember(self, step: int, stop: Stop | None) -> Stop | None:
        # only a verdict that stops is kept (the common case costs nothing): ``verdict_at``
        # answers for its step alone, and a Trainer forgets verdicts when it is built or restored
        if stop is not None:
            self.__dict__["_verdict"] = (step, stop, _settings(self))
        return stop

    def forget_verdict(self) -> None:
        """Drop the remembered verdict (a new Trainer, or one restored to another step)."""
        self.__dict__.pop("_verdict", None)

    def verdict_at(self, step: int) -> Stop | None:
        """The ``Stop`` this criterion returned at ``step`` (``None`` if it was not met there, if
        it did not see that step, or if its settings changed since)."""
        verdict = self.__dict__.get("_verdict")
        if verdict is None or verdict[0] != step or verdict[1] is None:
            return None
        if verdict[2] != _settings(self):
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
        stop = self.check(trainer, record)  # evaluate(), inlined: this runs at every step
        if stop is not None:
            self.stopped(trainer, record, stop)

    #: A CallbackList calls ``check`` and ``stopped`` for it (one call a step instead of two);
    #: an override of ``on_step_end`` in a subclass has no such mark and is called as it is.
    on_step_end.checks_only = True  # type: ignore[attr-defined]

    def stopped(self, trainer: Trainer, record: StepRecord, stop: Stop) -> None:
        """``check`` returned ``stop`` at ``record``'s step: remember it, and end the run."""
        self._remember(record.step, stop)
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
    names = field_names(type(criterion), init_only=True)
    return None if names is None else tuple(getattr(criterion, name) for name in names)


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
    def stops_at_sync(self) -> bool:  # type: ignore[override]
        return all(leaf.stops_at_sync for leaf in self.host_only_parts())

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

    def stop_from(self, verdicts: Iterator[Any], q: Any) -> Stop | None:
        stops = [part.stop_from(verdicts, q) for part in self.parts]
        return self._remember(q.step, self._join(stops))

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

    def combine(self, ops: Any, verdicts: Iterator[Any]) -> Any:
        joined = [part.combine(ops, verdicts) for part in self.parts]
        join = getattr(ops, self.operator)
        result = joined[0]
        for verdict in joined[1:]:
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


# the criteria themselves live in their own module; importable from here too
from steploop.callbacks.criteria import (  # noqa: E402
    EarlyStopping,
    GradientNormBelow,
    LossBelow,
    LossChangeBelow,
    MaxSteps,
    StopOnNaN,
    TimeLimit,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "EarlyStopping",
    "GradientNormBelow",
    "LossBelow",
    "LossChangeBelow",
    "MaxSteps",
    "StopOnNaN",
    "StoppingCriterion",
    "TimeLimit",
]
