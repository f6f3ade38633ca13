"""The loop: run a ``StepStrategy`` step after step and fire the callbacks around it.

One step, in order:

1. stop if a stop was requested, ``max_steps`` steps were done in this call, or ``data`` is
   exhausted (the next batch is fetched here);
2. ``on_step_begin(trainer, step)``; if a hook asks to stop, the step does not run (its batch is
   kept for the next call);
3. ``strategy.step()`` or ``strategy.step(batch)``; its ``StepOutput`` becomes a ``StepRecord``
   and a row of the ``History``;
4. ``on_step_end(trainer, record)`` for every callback in order, then the built-in ``Release``;
5. ``iterate()`` yields the record.

``run`` is ``iterate`` consumed to the end; both can be called again and carry on where the last
call stopped (step count, history, data position and callback state).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import numpy as np

from steploop import _validate
from steploop.callbacks.base import Callback, CallbackList, as_callbacks
from steploop.callbacks.cleanup import Release
from steploop.history import History
from steploop.records import STATUSES, Lazy, RunResult, StepRecord, Stop
from steploop.strategy import StepOutput, StepStrategy

log = logging.getLogger("steploop")

_NO_BATCH: Final = object()


class Trainer:
    """Runs ``strategy`` until a stopping criterion, a step budget or the data ends the run.

    >>> from steploop import LossBelow, MaxSteps
    >>> from steploop.numpy import GradientDescent
    >>> quadratic = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
    >>> result = Trainer(quadratic, callbacks=[LossBelow(1e-12) | MaxSteps(1000)]).run()
    >>> result.status, result.steps, round(float(quadratic.params["x"]), 5)
    ('converged', 70, 4.0)
    """

    def __init__(
        self,
        strategy: StepStrategy,
        callbacks: Iterable[Callback] = (),
        data: Iterable[Any] | None = None,
    ) -> None:
        if not isinstance(strategy, StepStrategy):
            raise TypeError(
                f"strategy must be a StepStrategy, got {type(strategy).__name__}; "
                "subclass steploop.StepStrategy or use a ready one such as steploop.tf.TapeStep"
            )
        user_callbacks = as_callbacks(callbacks)
        if data is not None and (
            isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable)
        ):
            raise TypeError(
                f"data must be an iterable of batches (a list, a generator, a tf.data.Dataset), "
                f"got {type(data).__name__}"
            )
        strategy.check(takes_batch=data is not None)
        if not strategy.reports_gradients:
            for index, callback in enumerate(user_callbacks):
                if callback.requires_gradients:
                    raise ValueError(
                        f"callbacks[{index}] {callback!r} needs gradients, but "
                        f"{type(strategy).__name__} reports none; use a strategy that reports "
                        "them (steploop.tf.TapeStep, for example)"
                    )
        self._strategy = strategy
        self._user_callbacks = tuple(user_callbacks)
        self._callbacks = CallbackList((*user_callbacks, Release(strategy)))
        self._data = data
        self._batches: Iterator[Any] | None = None
        self._pending: Any = _NO_BATCH
        self._history = History()
        self._step = 0
        self._stop: Stop | None = None
        self._result: RunResult | None = None
        self._last_record: StepRecord | None = None
        self._running = False

    # -- state ------------------------------------------------------------------------------
    @property
    def strategy(self) -> StepStrategy:
        return self._strategy

    @property
    def callbacks(self) -> tuple[Callback, ...]:
        """The user's callbacks, in the order they fire (the built-in release follows them)."""
        return self._user_callbacks

    @property
    def history(self) -> History:
        return self._history

    @property
    def step(self) -> int:
        """Steps done so far, over every run."""
        return self._step

    @property
    def result(self) -> RunResult | None:
        """The result of the last finished ``run``/``iterate`` call (``None`` before one)."""
        return self._result

    @property
    def last_record(self) -> StepRecord | None:
        """The record of the latest step (``None`` before the first)."""
        return self._last_record

    @property
    def stop_requested(self) -> Stop | None:
        """The pending stop request of the current run, if any."""
        return self._stop

    def stop(self, reason: str, status: str = "stopped") -> None:
        """Ask the run to end before its next step; the first request of a run wins.

        ``status`` is the word ``RunResult.status`` will carry (``stopped`` by default).
        """
        if not isinstance(reason, str) or not reason:
            raise TypeError(f"stop: reason must be a non-empty str, got {reason!r}")
        if status not in STATUSES or status == "error":
            allowed = [word for word in STATUSES if word != "error"]
            raise ValueError(f"stop: status must be one of {allowed}, got {status!r}")
        if self._stop is None:
            self._stop = Stop(reason, status)

    # -- running ----------------------------------------------------------------------------
    def run(self, max_steps: int | None = None) -> RunResult:
        """Run until a criterion fires, ``max_steps`` steps were done in this call, or the data
        ends; return the ``RunResult``.

        A run that nothing could end (no callback that may stop it, no ``max_steps``, no data)
        is refused with a ``ValueError`` rather than left to loop forever; ``iterate()`` leaves
        that to the caller's ``break``.
        """
        if (
            max_steps is None
            and self._data is None
            and not any(callback.may_stop for callback in self._user_callbacks)
        ):
            raise ValueError(
                "nothing would end this run: no callback can stop it, max_steps is None and "
                "there is no data; add a stopping criterion (e.g. steploop.MaxSteps(1000)) or "
                "pass max_steps"
            )
        for _ in self.iterate(max_steps):
            pass
        assert self._result is not None
        return self._result

    def iterate(self, max_steps: int | None = None) -> Iterator[StepRecord]:
        """Yield each step's record, with every callback firing, as ``run`` would.

        Leaving the loop with ``break`` ends the run (status ``stopped``; ``on_run_end`` hooks
        run); ``Trainer.result`` then holds its result and a later call carries on.
        """
        limit = None if max_steps is None else _validate.count("max_steps", max_steps, minimum=0)
        if self._running:
            raise RuntimeError("this Trainer is already running; run/iterate do not nest")
        return self._iterate(limit)

    def _iterate(self, limit: int | None) -> Iterator[StepRecord]:
        if self._running:  # two generators from iterate(), started one inside the other
            raise RuntimeError("this Trainer is already running; run/iterate do not nest")
        self._running = True
        started = time.perf_counter()
        self._stop = None
        final: Stop | None = None
        callbacks = self._callbacks
        strategy_step = self._strategy.step
        done = 0
        try:
            try:
                callbacks.on_run_begin(self)
                while self._stop is None:
                    if limit is not None and done >= limit:
                        final = Stop(f"run(max_steps={limit}) did its {limit} steps", "budget")
                        break
                    batch = self._next_batch()
                    if batch is _NO_BATCH:
                        final = Stop(f"data exhausted after {self._step} steps", "exhausted")
                        break
                    step = self._step + 1
                    if self._last_record is not None:
                        self._last_record._variables.expire(
                            f"StepRecord.variables of step {self._last_record.step} is gone: "
                            "variables are read on demand while their step is current (in its "
                            "callbacks or the body of an iterate() loop)"
                        )
                    callbacks.on_step_begin(self, step)
                    if self._stop is not None:
                        self._pending = batch
                        break
                    output = strategy_step() if self._data is None else strategy_step(batch)
                    record = self._record(step, output)
                    self._step = step
                    self._last_record = record
                    done += 1
                    callbacks.on_step_end(self, record)
                    yield record
            except GeneratorExit:
                final = Stop(f"the caller left iterate() after step {self._step}", "stopped")
            except BaseException as error:
                self._fail(error, started)
                raise
            self._finish(self._stop or final, started)
        finally:
            self._running = False

    def _next_batch(self) -> Any:
        if self._data is None:
            return None
        if self._pending is not _NO_BATCH:
            batch, self._pending = self._pending, _NO_BATCH
            return batch
        if self._batches is None:
            self._batches = iter(self._data)
        return next(self._batches, _NO_BATCH)

    def _record(self, step: int, output: Any) -> StepRecord:
        strategy = self._strategy
        name = type(strategy).__name__
        if not isinstance(output, StepOutput):
            raise TypeError(f"{name}.step must return a StepOutput, got {type(output).__name__}")
        loss = strategy.to_host(output.loss)
        if np.ndim(loss) != 0:
            raise ValueError(
                f"{name}.step returned a loss of shape {np.shape(loss)}; the loss must be a scalar"
            )
        try:
            loss = float(loss)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name}.step returned a loss of type {type(output.loss).__name__} that is not "
                "a number"
            ) from None
        values = strategy.to_host(dict(output.values)) if output.values else {}
        self._history.append(step, loss, values)
        gradients, targets = output.gradients, output.target_gradients
        return StepRecord(
            step=step,
            loss=loss,
            values=values,
            gradients_lazy=Lazy(None, {})
            if gradients is None
            else Lazy(lambda: strategy.to_host(gradients)),
            target_gradients_lazy=Lazy(None, {})
            if targets is None
            else Lazy(lambda: strategy.to_host(targets)),
            variables_lazy=Lazy(lambda: dict(strategy.variables())),
        )

    def _make_result(self, stop: Stop, started: float) -> RunResult:
        last = self._last_record
        self._result = RunResult(
            steps=self._step,
            loss=math.nan if last is None else last.loss,
            status=stop.status,
            stop_reason=stop.reason,
            history=self._history.snapshot(),
            elapsed=time.perf_counter() - started,
        )
        return self._result

    def _finish(self, stop: Stop | None, started: float) -> None:
        assert stop is not None
        result = self._make_result(stop, started)
        log.info("run ended after %d steps: %s", result.steps, result.stop_reason)
        first = self._call_each("on_run_end", result)
        if first is not None:
            raise first

    def _fail(self, error: BaseException, started: float) -> None:
        log.debug("run failed at step %d: %r", self._step + 1, error)
        self._call_each("on_error", error)
        stop = Stop(f"{type(error).__name__} after step {self._step}: {error}", "error")
        self._call_each("on_run_end", self._make_result(stop, started))

    def _call_each(self, hook: str, argument: Any) -> BaseException | None:
        """Call ``hook`` on every callback even if some raise; return the first exception."""
        first: BaseException | None = None
        for callback in self._callbacks:
            try:
                getattr(callback, hook)(self, argument)
            except Exception as exc:
                log.exception("%r.%s raised", callback, hook)
                first = first or exc
        return first

    # -- description ------------------------------------------------------------------------
    def describe(self) -> str:
        """Print, and return, the strategy and the callbacks in the order they fire."""
        lines = [f"Trainer({type(self._strategy).__name__}, data={_describe_data(self._data)})"]
        lines.append("callbacks, in the order they fire at every hook:")
        for index, callback in enumerate(self._callbacks, start=1):
            lines.append(f"  {index}. {callback.describe()}")
        text = "\n".join(lines)
        print(text)
        return text

    def __repr__(self) -> str:
        return f"<Trainer {type(self._strategy).__name__} at step {self._step}>"


def _describe_data(data: Any) -> str:
    if data is None:
        return "None"
    try:
        return f"{type(data).__name__} of {len(data)} batches"
    except TypeError:
        return type(data).__name__
