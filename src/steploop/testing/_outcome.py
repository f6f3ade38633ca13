"""What a check ends with: ``CheckFailed`` (naming the check, what was expected and what was
received), ``CheckSkipped`` (the check does not apply, and why), and the comparisons of runs.

Runs are compared exactly: every history column bit for bit (``nan`` equals ``nan``), every
variable with ``numpy.array_equal``, the step count and, where it matters, the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from steploop.history import History


class CheckFailed(AssertionError):
    """A check found the strategy breaking the contract: ``check`` names it, ``detail`` says
    what was expected and what was received; ``failures`` maps every failed check to its detail.

    >>> str(CheckFailed("determinism", "loss differs at step 2"))
    "check 'determinism' failed: loss differs at step 2"
    """

    def __init__(self, check: str, detail: str, failures: Mapping[str, str] | None = None) -> None:
        self.check = check
        self.detail = detail
        self.failures = dict(failures or {check: detail})
        text = "; ".join(f"check {name!r} failed: {what}" for name, what in self.failures.items())
        super().__init__(text)


class CheckSkipped(Exception):
    """The check does not apply to this strategy; ``reason`` says why."""

    def __init__(self, check: str, reason: str) -> None:
        self.check = check
        self.reason = reason
        super().__init__(f"check {check!r} skipped: {reason}")


@attrs.frozen
class Outcome:
    """What one run left behind: its history, the variables after it, its step count, status."""

    history: History
    variables: dict[str, np.ndarray]
    steps: int
    status: str
    reason: str


def host_variables(strategy: Any) -> dict[str, np.ndarray]:
    """``strategy.variables()`` as fresh NumPy arrays."""
    return {name: np.array(value, copy=True) for name, value in strategy.variables().items()}


def history_difference(expected: History, received: History) -> str | None:
    """Where two histories differ (the first difference), or ``None`` when they are equal."""
    if set(expected) != set(received):
        return f"history columns {sorted(received)}, expected {sorted(expected)}"
    if len(expected) != len(received):
        return f"{len(received)} history rows, expected {len(expected)}"
    steps = expected["step"]
    for name in expected.columns:
        want, got = expected[name], received[name]
        if np.array_equal(want, got, equal_nan=True):
            continue
        rows = np.flatnonzero(~((want == got) | (np.isnan(want) & np.isnan(got))))
        row = int(rows[0]) if rows.size else 0
        return (
            f"history column {name!r} differs first at step {int(steps[row])}: "
            f"got {got[row].item()!r}, expected {want[row].item()!r}"
        )
    return None


def variables_difference(
    expected: Mapping[str, np.ndarray], received: Mapping[str, np.ndarray]
) -> str | None:
    """Which variable differs (names, shapes or values), or ``None`` when they are equal."""
    if set(expected) != set(received):
        return f"variables named {sorted(received)}, expected {sorted(expected)}"
    for name, want in expected.items():
        got = received[name]
        if np.shape(got) != np.shape(want):
            return f"variable {name!r} has shape {np.shape(got)}, expected {np.shape(want)}"
        if not np.array_equal(got, want, equal_nan=True):
            gap = np.max(np.abs(np.asarray(got, float) - np.asarray(want, float)), initial=0.0)
            return (
                f"variable {name!r} differs (largest difference {gap:.3g}): "
                f"got {got!r}, expected {want!r}"
            )
    return None


def run_difference(expected: Outcome, received: Outcome, *, status: bool = True) -> str | None:
    """How ``received`` differs from ``expected`` (steps, status, history, variables)."""
    if received.steps != expected.steps:
        return f"{received.steps} steps ({received.reason}), expected {expected.steps}"
    if status and received.status != expected.status:
        return f"status {received.status!r} ({received.reason}), expected {expected.status!r}"
    return history_difference(expected.history, received.history) or variables_difference(
        expected.variables, received.variables
    )
