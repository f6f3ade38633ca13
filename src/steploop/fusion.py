"""What a Trainer's callbacks allow a fused call to do: where it must end, what runs inside it.

``FusionPlan`` reads the callbacks once, when the Trainer is built:

* the stopping criteria with an array form go into the in-graph program (``CriteriaProgram``),
  so a fused call ends exactly where one of them is met; a composite with host-only parts
  contributes its array-form parts (``StoppingCriterion.exact_part``), so only the host-only part
  can run past;
* ``records_needed``: whether any callback needs each step's record (else ``run()`` takes a
  call's rows at once);
* ``call_size``: how many steps the next call may do, ending where a callback needs live state
  (``Callback.next_sync_step``) and where the run's budget ends;
* a warning, for ``steps_per_call > 1``, naming every callback that may stop the run from the
  host and so may let it go past its step.

>>> from steploop.callbacks.criteria import MaxSteps, TimeLimit
>>> plan = FusionPlan([TimeLimit(600) | MaxSteps(20)], steps_per_call=1)
>>> plan.stopper
CriteriaProgram([MaxSteps(20)])
>>> plan.call_size(step=15, budget=None)
1
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence

from steploop.callbacks.base import Callback, overridden_hooks
from steploop.callbacks.stopping import StoppingCriterion
from steploop.criteria_program import CriteriaProgram
from steploop.records import Stop

log = logging.getLogger("steploop")


def step_hooks(callback: Callback) -> bool:
    """Whether ``callback`` implements ``on_step_begin`` or ``on_step_end``."""
    hooks = overridden_hooks(callback)
    return "on_step_begin" in hooks or "on_step_end" in hooks


class FusionPlan:
    """The Trainer's callbacks read for fused calls of ``steps_per_call`` steps."""

    def __init__(self, callbacks: Sequence[Callback], steps_per_call: int) -> None:
        self.callbacks = tuple(callbacks)
        self.steps_per_call = steps_per_call
        criteria = [c for c in self.callbacks if isinstance(c, StoppingCriterion)]
        in_graph = [c for c in criteria if c.array_form]
        bounds = [part for c in criteria if not c.array_form if (part := c.exact_part())]
        self.stopper = CriteriaProgram(in_graph + bounds)
        #: True when the program holds parts of host-checked composites: it may end a call where
        #: no criterion is met on the host (an ``&`` whose host-only part is not met)
        self.bounded = bool(bounds)
        self._evaluated = {id(c) for c in in_graph}
        #: whether run() needs per-step records: a callback with step hooks outside the program
        self.records_needed = any(
            step_hooks(c) for c in self.callbacks if id(c) not in self._evaluated
        )

    def call_size(self, step: int, budget: int | None, ready: bool = True) -> int:
        """How many steps the call after ``step`` may do (at least 1, at most ``budget``); 1 when
        the strategy is not ``ready`` to fuse."""
        if self.steps_per_call == 1 or not ready:
            return 1
        count = self.steps_per_call if budget is None else min(self.steps_per_call, budget)
        for callback in self.callbacks:
            due = callback.next_sync_step(step, count)
            if due is not None:
                count = min(count, due - step)
        return max(count, 1)

    def check_agreement(self, stopped_in_call: bool, stop: Stop | None, step: int) -> None:
        """Log when the in-graph criteria ended a call but no criterion stopped on the host."""
        if stopped_in_call and stop is None and not self.bounded:
            log.warning(
                "the in-graph stopping criteria fired at step %d but their host check did not; "
                "the run carries on (their numbers differ in the last bit)",
                step,
            )

    def host_stoppers(self) -> Iterator[tuple[int, Callback]]:
        """``(index, callback)`` for each callback that may stop the run but is checked on the
        host only, after a call (so a fused call may run past the step where it asks to stop)."""
        for index, callback in enumerate(self.callbacks):
            if id(callback) in self._evaluated or not callback.may_stop:
                continue
            if not step_hooks(callback) or callback.next_sync_step(0, 1) == 1:
                continue
            if isinstance(callback, StoppingCriterion) and callback.stops_at_sync:
                continue
            yield index, callback

    def warn_host_stoppers(self, stacklevel: int) -> None:
        """Warn about each callback that may stop the run but is checked only after a call."""
        k = self.steps_per_call
        for index, callback in self.host_stoppers():
            if isinstance(callback, StoppingCriterion):
                host = ", ".join(repr(part) for part in callback.host_only_parts())
                partial = host != repr(callback)
                what = f"its part(s) {host} have" if partial else "it has"
                fix = "stopping criteria with an array form, such as LossBelow or MaxSteps, stop "
                fix += "exactly, also as parts of it" if partial else "exactly"
            else:
                what = "it has"
                fix = (
                    f"if it never calls trainer.stop, set may_stop = False on "
                    f"{type(callback).__name__} to silence this warning"
                )
            warnings.warn(
                f"steps_per_call={k}: callbacks[{index}] {callback!r} may stop the run but "
                f"{what} no array form, so they are checked after each fused chunk and the run "
                f"may go up to {k - 1} steps past the step where they ask to stop ({fix})",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
