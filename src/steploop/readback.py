"""Reading a strategy's outputs back as ``StepRecord``s: a plain step's, and a fused call's.

``plain_record`` turns one step's ``StepOutput`` into its record: the loss and values cross to
the host at once (checked), the gradients and variables only when a callback reads them.
``FusedCall.run`` asks the strategy for up to ``count`` steps in one call (``run_steps``), checks
what came back, and brings the per-step losses and values to the host once. ``record(i)`` then
makes step ``i``'s ``StepRecord`` as a plain step would have: the gradients of every step cross to
the host once, when a record first reads them, and only the call's last step has live variables
(reading another step's raises an error that says why). ``next`` counts the steps already handed
to the callbacks, so the Trainer delivers each step exactly once, also when the caller leaves an
``iterate()`` loop in the middle of a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from steploop.capabilities import Fusable, has
from steploop.python_loop import run_steps_in_python
from steploop.records import Lazy, StepRecord, Stop, check_value_names, step_record
from steploop.strategy import FusedResult, StepOutput, checked_loss

if TYPE_CHECKING:
    from steploop.criteria_program import CriteriaProgram
    from steploop.strategy import BatchCursor, StepStrategy


def _expired(message: Callable[[], str]) -> Lazy:
    """A value that is not there: reading it raises the (lazily made) ``message``."""
    lazy = Lazy(lambda: None)
    lazy.expire(message)
    return lazy


def _numpy(tree: Any) -> Any:
    """A (nested mapping of) host values as NumPy arrays: ``to_host`` of an output that is on the
    host already."""
    if isinstance(tree, Mapping):
        return {key: _numpy(value) for key, value in tree.items()}
    return np.asarray(tree)


def _row(tree: Any, index: int) -> Any:
    """Row ``index`` of every array of a (nested mapping of) stacked arrays."""
    if isinstance(tree, Mapping):
        return {key: _row(value, index) for key, value in tree.items()}
    return np.asarray(tree[index])


class LiveVariables(Lazy):
    """The variables of a step, read from ``strategy`` (as a dict) on demand while the step is
    current; once ``expire`` is called (the next step begins) a read raises naming ``step``. One
    object a step, no closures: a plain step makes one.

    >>> class Two:
    ...     def variables(self):
    ...         return {"x": 2.0}
    >>> live = LiveVariables(Two(), 3)
    >>> live.get()
    {'x': 2.0}
    >>> gone = LiveVariables(Two(), 4)
    >>> gone.expire()
    >>> try:
    ...     gone.get()
    ... except RuntimeError as error:
    ...     print(str(error)[:41])
    StepRecord.variables of step 4 is gone: v
    """

    __slots__ = ("_step", "_strategy")

    def __init__(self, strategy: StepStrategy, step: int) -> None:  # not Lazy's: no compute
        self._strategy: StepStrategy | None = strategy
        self._step = step
        self._value = Lazy._UNSET

    def get(self) -> Any:
        if self._value is Lazy._UNSET:
            if self._strategy is None:  # expired before it was read
                raise RuntimeError(_gone(self._step))
            self._value = dict(self._strategy.variables())
            self._strategy = None
        return self._value

    def expire(self, message: Any = None) -> None:
        """Reads from now on raise, unless the variables were read while current."""
        if self._value is Lazy._UNSET:
            self._strategy = None


def plain_record(
    strategy: StepStrategy, step: int, output: StepOutput, epoch: int | None = None
) -> StepRecord:
    """The record of a plain step: ``output`` checked, its loss and values on the host."""
    loss = checked_loss(strategy, output)
    values = {}
    if output.values:
        check_value_names(f"{type(strategy).__name__}.step", output.values)
        values = strategy.to_host(dict(output.values))
    gradients, targets = output.gradients, output.target_gradients
    return step_record(
        step,
        loss,
        values,
        epoch,
        None if gradients is None else Lazy(lambda: strategy.to_host(gradients)),
        None if targets is None else Lazy(lambda: strategy.to_host(targets)),
        LiveVariables(strategy, step),
    )


def expire_variables(record: StepRecord | None) -> None:
    """Make ``record.variables`` raise from now on: its step is no longer the current one."""
    if record is not None and isinstance(record._variables, LiveVariables):  # the only live ones
        record._variables.expire()


def _gone(step: int) -> str:
    return (
        f"StepRecord.variables of step {step} is gone: variables are read on demand while "
        "their step is current (in its callbacks or the body of an iterate() loop)"
    )


class FusedCall:
    """The steps one ``run_steps`` call did, from step ``first`` on (all of epoch ``epoch``).

    >>> from steploop.numpy import GradientDescent
    >>> from steploop.criteria_program import CriteriaProgram
    >>> strategy = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
    >>> call = FusedCall.run(strategy, 3, 1, CriteriaProgram([]), None, True, steps_per_call=3)
    >>> call.steps, call.losses.round(4).tolist(), call.record(2).step, call.pending
    (3, [16.0, 10.24, 6.5536], 3, True)
    """

    def __init__(
        self,
        strategy: StepStrategy,
        chunk: FusedResult,
        first: int,
        keep: bool | str,
        steps_per_call: int | str,
        epoch: int | None = None,
    ) -> None:
        name = type(strategy).__name__
        if not isinstance(chunk, FusedResult):
            raise TypeError(
                f"{name}.run_steps must return a FusedResult, got {type(chunk).__name__}"
            )
        # a Python loop's output is on the host already; a compiled call's is the framework's
        to_host = _numpy if chunk.in_python else strategy.to_host
        losses = np.asarray(to_host(chunk.output.loss))
        if losses.ndim != 1 or len(losses) < chunk.steps or losses.dtype.kind not in "fiu":
            raise ValueError(
                f"{name}.run_steps returned losses of shape {losses.shape}; expected one scalar "
                f"loss per step ({chunk.steps} steps)"
            )
        self.chunk = chunk
        self.first = first
        self.epoch = epoch
        self.next = 0  # the steps already handed to the callbacks
        self.losses = losses[: chunk.steps]
        if chunk.output.values:
            check_value_names(f"{name}.run_steps", chunk.output.values)
        self.values = {
            key: np.asarray(value)[: chunk.steps]
            for key, value in to_host(dict(chunk.output.values)).items()
        }
        self._strategy = strategy
        self._keep = keep
        self._steps_per_call = steps_per_call
        gradients, targets = chunk.output.gradients, chunk.output.target_gradients
        self._gradients = None if gradients is None else Lazy(lambda: to_host(gradients))
        self._targets = None if targets is None else Lazy(lambda: to_host(targets))

    @classmethod
    def run(
        cls,
        strategy: StepStrategy,
        count: int,
        first: int,
        stopper: CriteriaProgram,
        feed: BatchCursor | None,
        keep: bool | str,
        steps_per_call: int | str,
        epoch: int | None = None,
    ) -> FusedCall:
        """Do up to ``count`` steps from step ``first`` in one call of ``strategy`` (it keeps
        every step's gradients if ``keep``)."""
        if has(strategy, Fusable):
            chunk = strategy.run_steps(count, first, stopper, feed, keep)
        else:
            chunk = run_steps_in_python(strategy, count, first, stopper, feed, keep)
        if isinstance(chunk, FusedResult) and not 0 <= chunk.steps <= count:
            raise ValueError(
                f"{type(strategy).__name__}.run_steps did {chunk.steps} steps; it was asked for "
                f"{count}"
            )
        if (
            isinstance(chunk, FusedResult)
            and not (chunk.steps or chunk.exhausted or chunk.stopped or chunk.error is not None)
            and not stopper.stop_asked
        ):
            raise ValueError(
                f"{type(strategy).__name__}.run_steps did no step, yet neither the data ended "
                "nor a criterion stopped the call; it must do at least one step when asked"
            )
        return cls(strategy, chunk, first, keep, steps_per_call, epoch)

    @property
    def steps(self) -> int:
        return self.chunk.steps

    @property
    def pending(self) -> bool:
        """Whether some step of the call has not been handed to the callbacks yet."""
        return self.next < self.chunk.steps

    def stop_after(self, step: int, values: Mapping[str, Any]) -> str | None:
        """The strategy's ``stop_after`` at a step of this call, asked once a step: a call in
        Python asked it at each of its steps already (only its last step can stop, or raise)."""
        chunk = self.chunk
        if not chunk.in_python:
            return self._strategy.stop_after(step, values)  # type: ignore[attr-defined]
        answer = chunk.strategy_stop if step == self.first + chunk.steps - 1 else None
        if isinstance(answer, BaseException):  # it raised there: as it would have, step by step
            raise answer
        return answer

    def asked_during(self, stop: Stop) -> Stop:
        """``stop``, asked while this call ran, as it took effect: where it takes effect step by
        step (``FusedResult.stop_honoured``, or a call of one step), else after the call's last
        step, which it then names."""
        if self.chunk.stop_honoured or self.steps <= 1:
            return stop
        return stop.during_call(self.first, self.first + self.steps - 1)

    def take_rest(self) -> tuple[int, np.ndarray, dict[str, np.ndarray]]:
        """The steps not yet handed to the callbacks, as history rows (first step, losses,
        values); they count as handed over."""
        start, self.next = self.next, self.chunk.steps
        rest = {key: value[start:] for key, value in self.values.items()}
        return self.first + start, self.losses[start:], rest

    def take(self) -> StepRecord:
        """The record of the next step not yet handed to the callbacks."""
        self.next += 1
        return self.record(self.next - 1)

    def record(self, i: int) -> StepRecord:
        """The ``StepRecord`` of the call's step ``i`` (counted from 0)."""
        step = self.first + i
        strategy = self._strategy

        def where() -> str:  # messages are made only if a missing value is read
            return (
                f"step {step} ran inside a fused call of {self.steps} steps "
                f"(steps_per_call={self._steps_per_call})"
            )

        if i == self.steps - 1:
            variables: Lazy = LiveVariables(strategy, step)
        else:
            variables = _expired(
                lambda: (
                    f"StepRecord.variables of step {step} is not available: {where()}; a "
                    "callback that reads variables sets needs_live_state = True, and the "
                    "Trainer ends a fused call at its steps"
                )
            )

        last_only = self.chunk.last_gradients

        def rows(host: Lazy | None, what: str) -> Lazy | None:
            if host is None and (self._keep is True or not strategy.reports_gradients):
                return None  # none reported
            if host is None or (last_only and i != self.steps - 1):
                return _expired(
                    lambda: (
                        f"StepRecord.{what} of step {step} was not kept: {where()}, and fused "
                        "calls return the last step's gradients, and every step's only for "
                        "callbacks with reads_gradients = True (or for iterate())"
                    )
                )
            if last_only:
                return host
            return Lazy(lambda: _row(host.get(), i))

        return StepRecord(
            step=step,
            loss=float(self.losses[i]),
            values={key: np.asarray(value[i]) for key, value in self.values.items()},
            epoch=self.epoch,
            gradients_lazy=rows(self._gradients, "gradients"),
            target_gradients_lazy=rows(self._targets, "target_gradients"),
            variables_lazy=variables,
        )
