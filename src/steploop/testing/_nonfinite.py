"""The checks of ``on_nonfinite`` (see ``steploop.nonfinite``): ``nonfinite_skip``,
``nonfinite_stop`` and ``nonfinite_rollback``, run on the ``NonFiniteCase`` the user gives
(a strategy factory taking the policy, and the first step whose loss is not finite).

Under each policy, steps before that step report code ``0`` in ``values["nonfinite"]`` (the
history column ``nonfinite``) and that step a non-zero code; its update leaves the variables as
they were after the step before; ``skip`` and ``rollback`` carry on, ``stop`` ends the run after
that step with status ``nonfinite`` and a reason naming the step, fused or not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steploop.callbacks.base import Callback
from steploop.nonfinite import KEY, ROLLED_BACK
from steploop.testing._case import Case, NonFiniteCase
from steploop.testing._outcome import Outcome, run_difference, variables_difference


class _Variables(Callback):
    """Keeps every step's variables (the strategy's live state at that step)."""

    may_stop = False
    reads_gradients = False
    needs_live_state = True

    def __init__(self) -> None:
        self.at: dict[int, dict[str, np.ndarray]] = {}

    def on_step_end(self, trainer: Any, record: Any) -> None:
        self.at[record.step] = {k: np.array(v, copy=True) for k, v in record.variables.items()}


def _given(case: Case) -> NonFiniteCase:
    given = case.subject.nonfinite
    if given is None:
        case.skip("no NonFiniteCase given (check_strategy(..., nonfinite=NonFiniteCase(...)))")
    return given


def _fresh(case: Case, given: NonFiniteCase, policy: str) -> Any:
    try:
        return case.fresh(lambda: given.make(policy))
    except (TypeError, ValueError) as error:
        case.skip(f"the factory refused on_nonfinite={policy!r}: {error}")


def _policy_run(
    case: Case, policy: str, steps: int, steps_per_call: int = 1, probe: bool = True
) -> tuple[Outcome, _Variables]:
    given = _given(case)
    variables = _Variables()
    callbacks = [variables] if probe else []
    trainer = case.trainer(
        _fresh(case, given, policy), callbacks, steps_per_call=steps_per_call, data=given.data
    )
    return case.run(trainer, steps), variables


def _codes_and_state(case: Case, policy: str, run: Outcome, probe: _Variables) -> None:
    """The codes before and at the bad step, and the variables the bad step left."""
    at = _given(case).step
    if KEY not in run.history:
        case.fail(f"under on_nonfinite={policy!r} the history has no {KEY!r} column")
    codes = run.history[KEY]
    if len(codes) < at:
        case.fail(f"the run ended after {len(codes)} steps ({run.reason}), before step {at}")
    if np.any(codes[: at - 1] != 0):
        case.fail(f"codes {codes[:at].tolist()} for steps 1..{at}: expected 0 before step {at}")
    code = codes[at - 1]
    allowed = "a non-zero code" if policy == "rollback" else f"a code >= 1 (not {ROLLED_BACK})"
    if code == 0 or (policy != "rollback" and code < 1):
        case.fail(f"step {at}, whose loss is not finite, reported code {code}; expected {allowed}")
    difference = variables_difference(probe.at[at - 1], probe.at[at])
    if difference:
        case.fail(
            f"under on_nonfinite={policy!r} step {at} changed the variables: {difference} "
            f"(expected those after step {at - 1})"
        )


def _carries_on(case: Case, policy: str) -> None:
    at = _given(case).step
    run, probe = _policy_run(case, policy, at + 1)
    _codes_and_state(case, policy, run, probe)
    if run.steps != at + 1 or run.status != "budget":
        case.fail(
            f"under on_nonfinite={policy!r} the run must go on after step {at}: it did "
            f"{run.steps} of {at + 1} steps, status {run.status!r} ({run.reason})"
        )


def nonfinite_skip(case: Case) -> None:
    """``skip``: the bad step reports its code, leaves the variables unchanged, the run goes on."""
    _carries_on(case, "skip")


def nonfinite_rollback(case: Case) -> None:
    """``rollback``: the bad step reports a code, the state is put back, the run goes on."""
    _carries_on(case, "rollback")


def nonfinite_stop(case: Case) -> None:
    """``stop``: the run ends after the bad step (status ``nonfinite``, the reason names the
    step), its update not applied; fused calls stop at the same step."""
    at = _given(case).step
    run, probe = _policy_run(case, "stop", at + 2)
    _codes_and_state(case, "stop", run, probe)
    if run.steps != at or run.status != "nonfinite":
        case.fail(
            f"under on_nonfinite='stop' the run must end after step {at} with status "
            f"'nonfinite'; it did {run.steps} steps, status {run.status!r} ({run.reason})"
        )
    if f"step {at}" not in run.reason:
        case.fail(f"the stop reason must name step {at}, got {run.reason!r}")
    for k in case.subject.fused:
        fused, _ = _policy_run(case, "stop", at + 2, steps_per_call=k, probe=False)
        difference = run_difference(run, fused)
        if difference:
            case.fail(f"under on_nonfinite='stop', steps_per_call={k} gave {difference}")
