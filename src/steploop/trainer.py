"""The loop: run a ``StepStrategy`` step after step and fire the callbacks around it.

One step, in order:

1. stop if a stop was requested, ``max_steps`` steps were done in this call, or ``data`` is
   exhausted (the next batch is fetched here); with ``epochs=n``, ``on_epoch_begin`` before an
   epoch's first step, and the run ends after the ``n``-th epoch (``steploop.epochs``);
2. ``on_step_begin(trainer, step)``; if a hook asks to stop, the step does not run (its batch is
   kept for the next call);
3. ``strategy.step()`` or ``strategy.step(batch)``; its ``StepOutput`` becomes a ``StepRecord``
   and a row of the ``History``;
4. ``on_step_end(trainer, record)`` for every callback in order, then the built-in ``Release``;
   after an epoch's last step, ``on_epoch_end``;
5. ``iterate()`` yields the record.

``run`` is ``iterate`` consumed to the end; both can be called again and carry on where the last
call stopped (step count, history, data position and callback state).

Fused steps: with ``steps_per_call=K`` the Trainer hands up to K steps at a time to
``strategy.run_steps`` (one compiled call for the TensorFlow and JAX strategies); ``"auto"``,
the default, fuses only where nothing can change and sizes the calls from their wall time
(``steploop.autofuse``). The array-form stopping criteria run inside that call, so it ends at
exactly the step a step-by-step run would stop at; a call also ends with the ``max_steps``
budget, the epoch, and where a callback needs live state (``Callback.next_sync_step``). Then each
step's record goes through the step hooks in order, as above, except that a stop asked by a
callback without an array form, or while a compiled call runs, takes effect after the call (an
explicit K warns about those; "auto" fuses with none of them but ``TimeLimit``). When no
callback needs the records, ``run()`` appends the call's rows to the history at once and loads
the criteria's states back. Records, history, stop step and variables equal a step-by-step
run's (``steploop.readback`` makes the records, ``steploop.fusion`` plans the calls).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from steploop import _arguments, _validate, autofuse, checkpoint
from steploop import epochs as epochs_module
from steploop.callbacks.base import Callback, CallbackList, overridden_hooks
from steploop.callbacks.cleanup import Release
from steploop.callbacks.monitor import link
from steploop.callbacks.signatures import as_callbacks
from steploop.capabilities import DataAware, Releasing, StopsItself, has
from steploop.fusion import step_hooks
from steploop.history import History
from steploop.readback import FusedCall, expire_variables, plain_record
from steploop.records import RunResult, StepRecord, Stop
from steploop.strategy import END, BatchCursor, StepStrategy, batches_from

log = logging.getLogger("steploop")


class Trainer:
    """Runs ``strategy`` until a stopping criterion, a step budget or the data ends the run.

    ``epochs=n`` passes over ``data`` ``n`` times (once without it; see ``steploop.epochs``).
    ``steps_per_call=K`` runs up to K steps per call of the strategy (fused; see the module
    docstring): same records, history, stop step and variables, far less per-step overhead.
    ``"auto"`` (the default) fuses where that cannot change anything; ``1`` never fuses.

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
        *,
        epochs: int | None = None,
        steps_per_call: int | str = "auto",
    ) -> None:
        _arguments.check_strategy(strategy)
        user_callbacks = as_callbacks(callbacks)
        _arguments.check_data(data)
        passes = epochs_module.check(epochs, data)
        setting = _arguments.check_steps_per_call(steps_per_call)
        strategy.check(takes_batch=data is not None)
        _arguments.check_gradients(strategy, user_callbacks)
        self._strategy = strategy
        self._asks_stop = has(strategy, StopsItself)
        self._data_from = strategy.data_from if has(strategy, DataAware) else batches_from
        self._user_callbacks = tuple(user_callbacks)
        self._callbacks = CallbackList((*user_callbacks, Release(strategy)), checked=True)
        self._has_step_begin = any("on_step_begin" in overridden_hooks(c) for c in self._callbacks)
        link(user_callbacks)  # monitors read what an earlier callback publishes (Evaluate)
        self._replayed = [c for c in self._callbacks if step_hooks(c)]
        self._data = data
        if data is not None and has(strategy, DataAware):
            self._data = strategy.prepare_data(data)
        self._feed: BatchCursor | None = None
        self._epochs = epochs_module.of(passes, self._data, self._data_from, self._callbacks)
        epochs_module.attach(user_callbacks, self._epochs)
        self._calls = autofuse.CallSizes(setting, strategy, user_callbacks)
        self._plan, self._stopper = self._calls.plan, self._calls.plan.stopper
        self._history = History()
        self._stop: Stop | None = None
        self._step = self._stop_step = 0  # the steps done; the step after which a stop was asked
        self._result: RunResult | None = None
        self._last_record: StepRecord | None = None
        self._running = False
        self._calls.warn(stacklevel=2)
        _arguments.check_callbacks(self, self._user_callbacks)
        checkpoint.forget_verdicts(self._user_callbacks)  # made in another Trainer

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps besides the strategy and the history: the step count (the data
        position with it), every stateful callback's state by its ``state_key``, and the stopping
        criteria met at the current step (so a resumed run that had converged stops at once)."""
        return checkpoint.trainer_state(self, self._epochs and self._epochs.state())

    def restore(self, directory: Any) -> int | None:
        """Load the latest checkpoint in ``directory``; return its step, or ``None`` when there
        is none yet (so one script both starts and resumes a run). It restores the strategy's
        variables and optimiser state, the step count, the history, the data position (epoch and
        batch) and each stateful callback's state: a later ``run()`` carries on as if the run
        had never stopped."""
        self._check_idle()
        restored = checkpoint.restore(self, os.fspath(directory), self._epochs)
        if restored is None:
            return None
        self._step, self._history = restored
        self._feed = self._last_record = self._result = None
        return self._step

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
        """Ask the run to end before its next step (asked while a step runs: after it); the first
        request of a run wins. ``status`` is the word ``RunResult.status`` will carry."""
        _arguments.check_stop(reason, status)
        if self._stop is None:
            self._stop = Stop(reason, status)
            self._stop_step = self._step
            self._stopper.stop_asked = True  # a call in Python ends after the running step

    def run(self, max_steps: int | None = None) -> RunResult:
        """Run until a criterion fires, ``max_steps`` steps were done in this call, or the data
        (every epoch) ends; return the ``RunResult``. A run that nothing could end (no callback
        that may stop it, no ``max_steps``, no data) is a ``ValueError``, not an endless loop;
        ``iterate()`` leaves that to the caller's ``break``."""
        _arguments.check_can_end(max_steps, self._data, self._user_callbacks)
        self._check_idle()
        limit = None if max_steps is None else _validate.count("max_steps", max_steps, minimum=0)
        for _ in self._iterate(limit, emit=False):
            pass
        assert self._result is not None
        return self._result

    def iterate(self, max_steps: int | None = None) -> Iterator[StepRecord]:
        """Yield each step's record, with every callback firing, as ``run`` would.

        Leaving the loop with ``break`` ends the run (status ``stopped``; ``on_run_end`` hooks
        run); ``Trainer.result`` then holds its result and a later call carries on. Under
        ``"auto"`` it takes one step a call. With ``steps_per_call=K`` the steps after the record
        left at have already run: every callback still sees each of them, in order, before the
        run ends."""
        limit = None if max_steps is None else _validate.count("max_steps", max_steps, minimum=0)
        self._check_idle()
        return self._iterate(limit, emit=True)

    def _check_idle(self) -> None:
        if self._running:
            raise RuntimeError("this Trainer is already running; run/iterate do not nest")

    def _iterate(self, limit: int | None, emit: bool) -> Iterator[StepRecord]:
        self._check_idle()  # two generators from iterate(), started one inside the other
        self._running = True
        started = time.perf_counter()
        self._stop, self._stopper.stop_asked = None, False
        final: Stop | None = None
        done = 0
        fast = not emit and not self._plan.records_needed
        keep = self._strategy.reports_gradients and (
            emit or any(c.reads_gradients for c in self._replayed)
        )
        replaying: FusedCall | None = None  # a fused call whose records are being delivered
        plain = self._calls.plain(emit)
        try:
            try:
                self._callbacks.on_run_begin(self)
                self._stopper.invalidate()
                if self._data is not None and self._feed is None and self._epochs is None:
                    # one batch a step: a restored trainer skips the batches its steps consumed
                    self._feed = BatchCursor(self._data_from(self._data, self._step))
                while self._stop is None:
                    if limit is not None and done >= limit:
                        final = Stop(f"run(max_steps={limit}) did its {limit} steps", "budget")
                        break
                    if self._epochs is not None:  # ends or begins an epoch when due
                        final, self._feed = self._epochs.ready(self), self._epochs.cursor
                        if final or self._stop:
                            break
                    count = 1 if plain else self._calls.size(
                        self._step, limit and limit - done, self._epochs, self._feed, keep
                    )
                    if count == 1:
                        record = self._plain_step()
                        if record is None:
                            if self._stop or (final := epochs_module.ran_out(self, self._epochs)):
                                break
                            continue
                        done += 1
                        if emit:
                            yield record
                        continue
                    expire_variables(self._last_record)
                    call = self._calls.run(
                        count, self._step + 1, self._stopper, self._feed, keep,
                        self._epochs and self._epochs.epoch,
                    )
                    chunk = call.chunk
                    done += chunk.steps
                    if self._stop is not None:  # asked while the call ran: at its step or end
                        self._stop = call.asked_during(self._stop)
                        self._stop_step = self._step + chunk.steps
                    if fast:
                        self._commit_at_once(call)
                    else:
                        replaying = call
                        while call.pending:
                            record = self._replay(call)
                            if emit:
                                yield record
                        replaying = None
                        self._plan.check_agreement(chunk.stopped, self._stop, self._step)
                    if chunk.error is not None:  # a step of a call in Python raised, after these
                        expire_variables(self._last_record)  # as when a plain step raises
                        self._callbacks.on_step_begin(self, self._step + 1)
                        raise chunk.error
                    if chunk.exhausted and (final := epochs_module.ran_out(self, self._epochs)):
                        break
            except GeneratorExit:
                left = self._step
                try:  # the fused call's later steps ran: every callback sees them, in order
                    while replaying is not None and replaying.pending:
                        self._replay(replaying)
                except BaseException as error:
                    self._fail(error, started, replaying)
                    raise
                final = Stop(f"the caller left iterate() after step {left}", "stopped")
            except BaseException as error:
                self._fail(error, started, replaying)
                raise
            stop = self._stop and self._stop.late(self._stop_step, self._step)
            self._finish(stop or final, started)
        finally:
            self._running = False

    def _plain_step(self) -> StepRecord | None:
        """One step with its hooks; ``None`` when the data is exhausted or a hook stopped it."""
        batch = None
        if self._feed is not None:
            batch = self._feed.next()
            if batch is END:
                return None
            if self._stop is not None:  # asked by the data as it yielded: no step takes it
                self._feed.put_back(batch)
                return None
        step = self._step + 1
        expire_variables(self._last_record)
        if self._has_step_begin:
            self._callbacks.on_step_begin(self, step)
        if self._stop is not None:  # asked by a step-begin hook
            if self._feed is not None:
                self._feed.put_back(batch)
            return None
        strategy = self._strategy
        output = strategy.step() if self._feed is None else strategy.step(batch)
        if self._stop is not None:  # asked during the step: it ends the run after it
            self._stop_step = step
        record = plain_record(strategy, step, output, self._epochs and self._epochs.epoch)
        self._commit(record)
        return record

    def _commit(self, record: StepRecord, stop_after: Any = None) -> None:
        """Record a finished step, plain or fused (the one place that does): its history row,
        the step count, the last record, the strategy's own stop, then ``on_step_end``."""
        self._history.append(record.step, record.loss, record.values, record.epoch)
        self._step = record.step
        self._last_record = record
        if self._asks_stop:
            self._strategy_stop(record, stop_after)
        ended = self._epochs is not None and self._epochs.took(1, record.step)
        self._callbacks.on_step_end(self, record)
        if ended and self._epochs:  # after the hooks of the epoch's last step
            self._epochs.close(self)

    def _strategy_stop(self, record: StepRecord, stop_after: Any = None) -> None:
        ask = stop_after or self._strategy.stop_after  # type: ignore[attr-defined]
        if (reason := ask(record.step, record.values)) is not None:  # once a step (FusedCall)
            self.stop(reason, "nonfinite")

    @property
    def steps_per_call(self) -> int:
        """The most steps one call may do (1 when ``"auto"`` chose one step a call)."""
        return self._calls.most

    def _replay(self, call: FusedCall) -> StepRecord:
        """Deliver the next step of a fused call to the callbacks, as a plain step would."""
        expire_variables(self._last_record)
        self._callbacks.on_step_begin(self, call.first + call.next)
        record = call.take()
        self._commit(record, call.stop_after)
        return record

    def _commit_at_once(self, call: FusedCall) -> None:
        """Take a call whose records no callback needs: rows at once, states loaded back."""
        if call.pending:
            record = self._count_rest(call)
            stops = self._stopper.take_back(call.chunk, record)  # loaded even if stop_after raises
            if self._asks_stop:
                self._strategy_stop(record, call.stop_after)
            for stop in stops:
                self.stop(stop.reason, stop.status)
            if has(self._strategy, Releasing):
                self._strategy.release()
            if self._epochs is not None and self._epochs.ended:
                self._epochs.close(self)

    def _count_rest(self, call: FusedCall) -> StepRecord:
        """Count the call's steps not yet delivered (history rows, step count), no callbacks."""
        first, losses, values = call.take_rest()
        self._history.extend(first, losses, values, call.epoch)
        expire_variables(self._last_record)
        self._last_record = record = call.record(call.steps - 1)
        self._step = record.step
        if self._epochs is not None:
            self._epochs.took(len(losses), record.step)
        return record

    def _make_result(self, stop: Stop, started: float) -> RunResult:
        self._result = RunResult.of(stop, self._step, self._last_record, self._history, started)
        return self._result

    def _finish(self, stop: Stop | None, started: float) -> None:
        assert stop is not None
        result = self._make_result(stop, started)
        log.info("run ended after %d steps: %s", result.steps, result.stop_reason)
        if (first := self._callbacks.call_each("on_run_end", self, result)) is not None:
            raise first

    def _fail(self, error: BaseException, started: float, call: FusedCall | None) -> None:
        if call is not None and call.pending:  # the call's later steps ran: count them, so the
            self._count_rest(call)  # step count and history match the variables; no callbacks
        log.debug("run failed at step %d: %r", self._step + 1, error)
        self._callbacks.call_each("on_error", self, error)
        stop = Stop(f"{type(error).__name__} after step {self._step}: {error}", "error")
        self._callbacks.call_each("on_run_end", self, self._make_result(stop, started))

    def describe(self) -> str:
        """Print, and return, the strategy, data, epochs, what ``steps_per_call`` chose (and
        why) and the callbacks in the order they fire."""
        parts = (self._strategy, self._data, self._epochs, self._callbacks, self._calls.describe())
        print(text := _arguments.describe(*parts))
        return text

    def __repr__(self) -> str:
        return f"<Trainer {type(self._strategy).__name__} at step {self._step}>"
