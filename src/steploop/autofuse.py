"""How many steps each call of the strategy does: ``Trainer(steps_per_call=K)`` or ``"auto"``.

Fused calls are exact (``steploop.fusion``): same stop step, history, records and variables as a
step-by-step run. So ``"auto"``, the default, only chooses call sizes. It takes one step a call
when fusing could change what happens or would gain nothing (``why_plain`` says which came first):

* the strategy is not ``Fusable``, or it is but runs eagerly (``steps_in_python``: a TensorFlow
  strategy with ``compile=False``, ``OptaxStep(jit=False)``): its calls would be the core's
  Python loop of its ``step`` (``run_steps_in_python``), which is exact only for strategies that
  say so (value names that change from step to step cannot be stacked in one call; eager steps
  take milliseconds, so fusing them would gain nothing worth that);
* a callback may stop the run from the host (a criterion without an array form, a callback that
  calls ``trainer.stop``): a fused call could run past its step. Wall-clock limits
  (``TimeLimit``) are the exception: when they fire depends on time, not on the steps, and each
  call is short (below), so they are checked after each call;
* a callback, or a part of a composite criterion, needs live state at every step
  (``EarlyStopping(restore_best_weights=True)``, ``Every(cb, 1)`` of a live callback);
* a callback with step hooks that does not say what it needs (neither it nor a class up to the
  one that writes its step hooks sets ``needs_live_state``, and those hooks are not steploop's):
  it might read ``StepRecord.variables`` or change the strategy at any step;
* ``iterate()``: the body of the caller's loop is such a callback.

Otherwise ``run()`` fuses. Each distinct call size is a separately compiled loop (TensorFlow,
JAX), so ``Sizes`` uses few: the first calls do ``FIRST_SIZE`` steps; from the wall time of a
call (the first call of a size, which compiles it, only ever makes calls longer) it moves to the
power of two of steps that takes at most ``CALL_SECONDS``, at most ``MAX_SIZE``, and never uses
more than ``MAX_SIZES`` sizes with a strategy. The sizes belong to the strategy (``sizes_of``):
a new Trainer on the same strategy starts at the size the last one found, with the loops it
compiled. A call cut short (``max_steps``, an epoch's end, a callback's live step) takes the
largest power of two that fits, or plain steps once the sizes are spent. Steps longer than half
``CALL_SECONDS`` make calls plain steps, with one call of the smallest size every
``PROBE_EVERY`` steps to see whether they got faster. Short calls keep a ``TimeLimit``, a
progress bar and Ctrl-C responsive. A call keeps its last step's gradients (the last record
has them after ``run()``, as a step-by-step run's has); when a callback reads every step's,
calls are also cut to hold at most ``KEPT_BYTES``.

>>> from steploop.numpy import GradientDescent
>>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
>>> CallSizes("auto", gd, []).reason
'GradientDescent is not Fusable (no multi-step call of its own)'
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from steploop.callbacks.base import Callback
from steploop.callbacks.criteria import TimeLimit
from steploop.callbacks.every import Every
from steploop.callbacks.stopping import StoppingCriterion
from steploop.capabilities import Fusable, has
from steploop.fusion import FusionPlan, step_hooks
from steploop.readback import FusedCall
from steploop.strategy import LAST

if TYPE_CHECKING:
    from steploop.criteria_program import CriteriaProgram
    from steploop.epochs import Epochs
    from steploop.strategy import BatchCursor, StepStrategy

#: Seconds of wall time a fused call aims at, at most (with powers of two, at least half of it
#: when the steps allow): a ``TimeLimit``, a progress bar and Ctrl-C wait no longer than this.
CALL_SECONDS = 0.05
#: Steps of the first fused calls, before any has been timed.
FIRST_SIZE = 4
#: The most steps a call does under ``"auto"``.
MAX_SIZE = 1024
#: The most distinct call sizes (compiled loops) a Trainer uses under ``"auto"``.
MAX_SIZES = 4
#: Once calls fell to one step, every this many plain steps one call of the smallest size used
#: times the steps again, so that one slow call does not leave a strategy unfused for good.
PROBE_EVERY = 256

#: A fused call that keeps every step's gradients (for a callback that reads them) is cut so
#: that they take at most this many bytes.
KEPT_BYTES = 64 * 2**20

#: The clock calls are timed with (tests replace it).
clock: Callable[[], float] = time.perf_counter


def _power_of_two(n: float) -> int:
    """The largest power of two <= ``n`` (1 when ``n`` < 2)."""
    return 1 << (int(n).bit_length() - 1) if n >= 2 else 1


def _declares(callback: Callback) -> bool:
    """Whether ``callback`` says what fused calls must give it: it has no step hooks, it sets
    ``needs_live_state`` (on itself, or on a class no further up than its step hooks), or its
    step hooks are steploop's (which declare theirs)."""
    if isinstance(callback, Every):
        return _declares(callback.callback)
    if not step_hooks(callback) or "needs_live_state" in vars(callback):
        return True
    for kind in type(callback).__mro__:  # the nearest class that declares or writes step hooks
        if "needs_live_state" in vars(kind):
            return True
        if "on_step_begin" in vars(kind) or "on_step_end" in vars(kind):
            return kind.__module__.startswith("steploop.")
    return False


def _live_every_step(callback: Callback) -> bool:
    """Whether ``callback`` (or a part of a composite criterion) needs live state every step."""
    parts = callback.leaves() if isinstance(callback, StoppingCriterion) else ()
    for part in (callback, *parts):
        # a part that needs no live state and asks as Callback does: never (None)
        asks = part.needs_live_state or type(part).next_sync_step is not Callback.next_sync_step
        if asks and all(part.next_sync_step(after, 2) == after + 1 for after in (0, 1, 2)):
            return True
    return False


def _clock_only(callback: Callback) -> bool:
    """Whether ``callback`` stops from the host only on wall time (``TimeLimit`` parts)."""
    if not isinstance(callback, StoppingCriterion):
        return False
    return all(isinstance(part, TimeLimit) for part in callback.host_only_parts())


def why_plain(strategy: StepStrategy, plan: FusionPlan) -> str | None:
    """Why ``"auto"`` takes one step a call with this strategy and these callbacks (``None``:
    it fuses)."""
    if not has(strategy, Fusable):
        return f"{type(strategy).__name__} is not Fusable (no multi-step call of its own)"
    if getattr(strategy, "steps_in_python", False):
        return f"{type(strategy).__name__} runs eagerly (its calls would be a Python loop)"
    for index, callback in plan.host_stoppers():
        if not _clock_only(callback):
            return f"callbacks[{index}] {callback!r} may stop the run from the host"
    for index, callback in enumerate(plan.callbacks):
        if _live_every_step(callback):
            return f"callbacks[{index}] {callback!r} needs live state at every step"
        if not _declares(callback):
            return (
                f"callbacks[{index}] {callback!r} has step hooks but does not declare "
                "needs_live_state (set it, True or False, on its class to let calls fuse)"
            )
    return None


class Sizes:
    """The sizes of ``"auto"``'s fused calls, from the wall time of the calls so far."""

    def __init__(self) -> None:
        self.target = FIRST_SIZE
        self.used: list[int] = []  # each one a compiled loop, in the order first called
        self._plain = 0  # plain steps since calls fell to one step

    def _can_use(self, size: int) -> bool:
        return size in self.used or len(self.used) < MAX_SIZES

    def pick(self, bound: int) -> int:
        """Steps for the next call when it may do at most ``bound`` (1: a plain step)."""
        if self.target == 1 and self.used:  # fell to one step: a probe now and then
            self._plain += 1
            probe = min(self.used)
            if self._plain < PROBE_EVERY or probe > bound:
                return 1
            self._plain = 0
            return probe
        if bound >= self.target and self._can_use(self.target):
            return self.target
        bound = min(bound, self.target)  # short calls took the sizes: never one more
        if bound in self.used:
            return bound
        fits = _power_of_two(bound)
        if fits > 1 and self._can_use(fits):
            return fits
        return max((size for size in self.used if size <= bound), default=1)

    def took(self, size: int, steps: int, seconds: float) -> None:
        """A call of ``size`` steps did ``steps`` in ``seconds``: aim the next ones."""
        compiled = size not in self.used  # its time includes compiling the loop
        if compiled:
            self.used.append(size)
        probe = self.target == 1 and not compiled
        if (size != self.target and not probe) or steps == 0:
            return
        per_step = seconds / steps
        want = MAX_SIZE if per_step <= 0 else min(_power_of_two(CALL_SECONDS / per_step), MAX_SIZE)
        if want > self.target or (want < self.target and not compiled):
            usable = [s for s in self.used if s <= want] + [1]
            self.target = want if self._can_use(want) else max(usable)


_SIZES: weakref.WeakKeyDictionary[Any, Sizes] = weakref.WeakKeyDictionary()


def sizes_of(strategy: StepStrategy) -> Sizes:
    """The call sizes ``"auto"`` found for ``strategy`` so far (new ones for a strategy that
    cannot be weakly referenced)."""
    try:
        return _SIZES.setdefault(strategy, Sizes())
    except TypeError:
        return Sizes()


class CallSizes:
    """A Trainer's call sizes: ``steps_per_call`` (an int, or ``"auto"``) read with its strategy
    and callbacks."""

    def __init__(
        self, setting: int | str, strategy: StepStrategy, callbacks: Sequence[Callback]
    ) -> None:
        self.setting = setting
        self.auto = setting == "auto"
        self.plan = FusionPlan(callbacks, MAX_SIZE if self.auto else int(setting))
        self._strategy = strategy
        self._fusable = has(strategy, Fusable)
        self.reason = why_plain(strategy, self.plan) if self.auto else None
        #: the most steps a call may do (1: every call is one plain step)
        self.most = 1 if self.reason else self.plan.steps_per_call
        self.sizes = sizes_of(strategy) if self.auto and not self.reason else Sizes()
        self._step_bytes: int | None = None  # of one step's gradients, once known

    def plain(self, emit: bool) -> bool:
        """Whether every call is one step (under ``"auto"``, also for ``iterate()``)."""
        return self.most == 1 or (self.auto and emit)

    def warn(self, stacklevel: int) -> None:
        """An explicit ``steps_per_call=K``: warn about callbacks that may stop from the host."""
        if not self.auto and self.most > 1:
            self.plan.warn_host_stoppers(stacklevel + 1)

    def size(
        self,
        step: int,
        budget: int | None,
        epochs: Epochs | None,
        feed: BatchCursor | None,
        keep: bool,
    ) -> int:
        """Steps for the call after ``step``, at most ``budget`` (1: a plain step); ``keep``:
        the call keeps every step's gradients."""
        ready = not self._fusable or self._strategy.ready_to_fuse  # type: ignore[attr-defined]
        if epochs is not None:  # a call ends with its epoch
            budget = epochs.budget(budget)
        if feed is not None and feed.has_pending:
            ready = False  # a batch put back starts the next call: a plain step takes it
        bound = self.plan.call_size(step, budget, ready)
        if not self.auto or bound == 1:
            return bound
        return self.sizes.pick(min(bound, self._kept_steps()) if keep else bound)

    def _kept_steps(self) -> int:
        """The most steps whose gradients fit in ``KEPT_BYTES``."""
        if not self._strategy.reports_gradients:
            return MAX_SIZE
        if self._step_bytes is None:  # the variables' size, read once (the gradients' size)
            variables = self._strategy.variables().values()
            self._step_bytes = sum(np.asarray(value).nbytes for value in variables)
        return max(1, KEPT_BYTES // max(self._step_bytes, 1))

    def run(
        self,
        count: int,
        first: int,
        stopper: CriteriaProgram,
        feed: BatchCursor | None,
        keep: bool,
        epoch: int | None,
    ) -> FusedCall:
        """One fused call of ``count`` steps (timed, under ``"auto"``), keeping every step's
        gradients if ``keep``, else the last step's."""
        kept = True if keep else LAST if self._strategy.reports_gradients else False
        started = clock()
        call = FusedCall.run(self._strategy, count, first, stopper, feed, kept, self.setting, epoch)
        if self.auto:
            self.sizes.took(count, call.steps, clock() - started)
        return call

    def describe(self) -> str:
        """What the setting chose, and why."""
        if not self.auto:
            return f"steps_per_call={self.setting}"
        if self.reason:
            return f"steps_per_call=auto → 1 step a call: {self.reason}"
        clocks = [repr(c) for _, c in self.plan.host_stoppers()]
        checked = f"; {', '.join(clocks)} checked after each call" if clocks else ""
        used = f"; sizes so far: {self.sizes.used}" if self.sizes.used else ""
        return (
            f"steps_per_call=auto (run() fuses up to {MAX_SIZE} steps a call of at most "
            f"{CALL_SECONDS * 1000:g} ms: criteria in array form, no callback needs live "
            f"state at every step{checked}; iterate() takes one step a call{used})"
        )

    def __repr__(self) -> Any:
        return f"CallSizes({self.setting!r})"
