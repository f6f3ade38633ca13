"""The subject of the checks (``Subject``: how to make the strategy and its data) and one
check's running context (``Case``: fresh guarded strategies, Trainers, bounded runs).

Every run the kit makes has a step budget that does not depend on the strategy being right
(``run(max_steps=...)`` or ``MaxSteps``), and every strategy the kit makes is guarded: its
``step`` and ``run_steps`` are counted, and a strategy that calls them far more often than the
budgets allow (a fused call that makes no progress, a loop that ignores its count) fails the check
instead of hanging it. A ``step`` that never returns cannot be bounded this way; run the kit under
a test timeout (``pytest-timeout``) for that.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import attrs

from steploop.callbacks.base import Callback
from steploop.strategy import StepStrategy
from steploop.testing._outcome import CheckFailed, CheckSkipped, Outcome, host_variables
from steploop.trainer import Trainer


def _data(value: Any) -> Any:
    """``data`` as the kit takes it: ``None``, a zero-argument factory, or a re-iterable."""
    if value is None or callable(value):
        return value
    if not isinstance(value, Iterable) or iter(value) is value:
        raise TypeError(
            "data must be None, a re-iterable (list, array, tf.data.Dataset) or a function "
            f"returning a fresh iterable of the same batches, got {type(value).__name__}"
        )
    return value


def _steps(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(f"steps must be an int >= 2, got {value!r}")
    return value


def _fused(value: Any) -> tuple[int, ...]:
    values = tuple(value)
    if not values or any(isinstance(k, bool) or not isinstance(k, int) or k < 2 for k in values):
        raise ValueError(f"fused must hold steps_per_call values >= 2, got {value!r}")
    return values


@attrs.frozen
class NonFiniteCase:
    """A strategy whose loss (or a gradient) is not finite at step ``step`` (counted from 1,
    at least 2) and finite before it: ``make(on_nonfinite)`` returns a fresh one under the given
    policy, fed ``data`` (as ``check_strategy``'s ``data``) when it is not ``None``."""

    make: Callable[[str], Any] = attrs.field(validator=attrs.validators.is_callable())
    step: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(2)])
    data: Any = attrs.field(default=None, converter=_data)


@attrs.frozen
class Subject:
    """What the checks run on: ``make()`` returns a fresh strategy (the same initial state every
    call); ``data`` the batches (``None``, a re-iterable, or a function returning them anew);
    ``steps`` the length of each run; ``fused`` the ``steps_per_call`` values compared with 1."""

    make: Callable[[], Any] = attrs.field(validator=attrs.validators.is_callable())
    data: Any = attrs.field(default=None, converter=_data)
    steps: int = attrs.field(default=6, converter=_steps)
    fused: tuple[int, ...] = attrs.field(default=(2, 3, 5), converter=_fused)
    nonfinite: NonFiniteCase | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(NonFiniteCase)),
    )


class _Guard:
    """Counts a strategy's ``step`` and ``run_steps`` calls; too many fail the check."""

    def __init__(self, case: Case, strategy: Any, limit: int) -> None:
        self._case, self._limit, self._calls = case, limit, 0
        try:
            strategy.step = self._wrap(strategy.step, "step")
            if callable(getattr(strategy, "run_steps", None)):
                strategy.run_steps = self._wrap(strategy.run_steps, "run_steps")
        except AttributeError:  # __slots__ or a read-only attribute: run unguarded
            pass

    def _wrap(self, method: Callable[..., Any], label: str) -> Callable[..., Any]:
        @functools.wraps(method)
        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls += 1
            if self._calls > self._limit:
                self._case.fail(
                    f"the strategy's {label} was called {self._calls} times although the runs of "
                    f"this check allow at most {self._limit} steps: it ignores its count or "
                    "makes no progress (a fused call that returns no step)"
                )
            result = method(*args, **kwargs)
            if label == "run_steps":
                count, done = args[0] if args else kwargs["count"], getattr(result, "steps", 0)
                if isinstance(done, int) and done > count:
                    self._case.fail(f"run_steps(count={count}) did {done} steps, more than asked")
            return result

        return counted


@attrs.define
class Case:
    """One check's context: its ``name`` (in every failure) and the ``subject``."""

    name: str
    subject: Subject

    def fail(self, detail: str) -> NoReturn:
        raise CheckFailed(self.name, detail)

    def skip(self, reason: str) -> NoReturn:
        raise CheckSkipped(self.name, reason)

    @property
    def steps(self) -> int:
        return self.subject.steps

    @property
    def takes_batch(self) -> bool:
        return self.subject.data is not None

    def fresh(self, make: Callable[[], Any] | None = None) -> Any:
        """A fresh strategy from ``make`` (default: the subject's), checked and guarded."""
        strategy = (make or self.subject.make)()
        if not isinstance(strategy, StepStrategy):
            self.fail(f"make_strategy() must return a StepStrategy, got {type(strategy).__name__}")
        _Guard(self, strategy, limit=4 * self.steps + 32)
        return strategy

    def batches(self, data: Any = attrs.NOTHING) -> Any:
        """A fresh iterable of the batches (``None`` without data)."""
        data = self.subject.data if data is attrs.NOTHING else data
        return data() if callable(data) else data

    def first_batch(self) -> Any:
        for batch in self.batches():
            return batch
        self.fail("data holds no batch")

    def trainer(
        self,
        strategy: Any,
        callbacks: Sequence[Callback] = (),
        *,
        steps_per_call: int = 1,
        data: Any = attrs.NOTHING,
    ) -> Trainer:
        return Trainer(
            strategy, list(callbacks), data=self.batches(data), steps_per_call=steps_per_call
        )

    def run(self, trainer: Trainer, max_steps: int | None = None) -> Outcome:
        """Run ``trainer`` (``max_steps`` in this call) and return what it left behind."""
        result = trainer.run(max_steps=max_steps)
        return outcome(trainer, result.status, result.stop_reason)

    def reference(self, steps: int, *, data: Any = attrs.NOTHING) -> Outcome:
        """A fresh strategy run for ``steps`` steps, plain, in one call."""
        return self.run(self.trainer(self.fresh(), data=data), steps)


def outcome(trainer: Trainer, status: str, reason: str) -> Outcome:
    return Outcome(
        history=trainer.history.snapshot(),
        variables=host_variables(trainer.strategy),
        steps=trainer.step,
        status=status,
        reason=reason,
    )
