"""The checks of whole runs, each an equivalence with a plain run of fresh strategies:
``survives_callback_error``, ``pieces_equal_one_run``, ``determinism``,
``fused_equals_step_by_step`` and ``checkpoint_resume``.

"Equal" is exact: the history bit for bit, the variables, the step count (see ``_outcome``).
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from steploop.callbacks.base import Callback
from steploop.callbacks.criteria import LossBelow, MaxSteps
from steploop.capabilities import Checkpointable
from steploop.checkpoint import Checkpoint
from steploop.testing._case import Case
from steploop.testing._outcome import run_difference


class _Planted(Exception):
    """The error a check's callback raises on purpose."""


class _RaiseOnce(Callback):
    """Raises ``_Planted`` in ``on_step_end`` of step ``at``, once."""

    may_stop = False
    reads_gradients = False

    def __init__(self, at: int) -> None:
        self.at = at
        self.raised = False

    def on_step_end(self, trainer: Any, record: Any) -> None:
        if record.step == self.at and not self.raised:
            self.raised = True
            raise _Planted(f"planted by the conformance kit at step {self.at}")


def survives_callback_error(case: Case) -> None:
    """A callback's error mid-run reaches the caller and leaves the strategy usable: a later
    run carries on from the step the error followed and ends as an uninterrupted run."""
    at = case.steps // 2
    trainer = case.trainer(case.fresh(), [_RaiseOnce(at)])
    try:
        trainer.run(max_steps=case.steps)
    except _Planted:
        pass
    else:
        case.fail(f"the error a callback raised at step {at} did not reach the caller")
    if trainer.step != at:
        case.fail(f"after the error at step {at} the Trainer is at step {trainer.step}")
    resumed = case.run(trainer, case.steps - at)
    difference = run_difference(case.reference(case.steps), resumed)
    if difference:
        case.fail(f"the run resumed after a callback's error at step {at} gave {difference}")


def pieces_equal_one_run(case: Case) -> None:
    """``run(max_steps=a)``, ``run(max_steps=0)``, ``run(max_steps=b)`` on one Trainer equal one
    ``run(max_steps=a + b)`` of a fresh strategy."""
    first = case.steps // 2
    trainer = case.trainer(case.fresh())
    for piece in (first, 0, case.steps - first):
        pieces = case.run(trainer, piece)
    difference = run_difference(case.reference(case.steps), pieces)
    if difference:
        case.fail(
            f"runs of {first}, 0 and {case.steps - first} steps differ from one run of "
            f"{case.steps}: {difference}"
        )


def determinism(case: Case) -> None:
    """Two fresh strategies run the same way give identical histories and variables."""
    first = case.reference(case.steps)
    difference = run_difference(first, case.reference(case.steps))
    if difference:
        case.fail(f"a second fresh strategy, run as the first, gave {difference}")


def _tolerance(losses: np.ndarray) -> float | None:
    """A ``LossBelow`` tolerance that fires first near the middle of ``losses`` (``None`` when
    no step after the first reaches a new lowest loss)."""
    middle = len(losses) // 2
    order = sorted(range(1, len(losses)), key=lambda i: abs(i - middle))
    for i in order:
        before = float(np.min(losses[:i]))
        if np.isfinite(losses[i]) and losses[i] < before:
            return (float(losses[i]) + before) / 2
    return None


def fused_equals_step_by_step(case: Case) -> None:
    """``Trainer(steps_per_call=K)`` equals ``steps_per_call=1``: the history, the variables,
    the stop step and status, with ``LossBelow(tol) | MaxSteps(n)`` (tol makes it stop midway)
    and with a ``run(max_steps=n)`` budget."""
    plain = case.reference(case.steps)
    tol = _tolerance(plain.history["loss"])

    def criteria() -> list[Callback]:
        budget = MaxSteps(case.steps)
        return [budget] if tol is None else [LossBelow(tol) | budget]

    stopped = case.run(case.trainer(case.fresh(), criteria()), case.steps)
    for k in case.subject.fused:
        for label, expected, callbacks, budget in (
            (f"criteria {criteria()[0]!r}", stopped, criteria(), case.steps),
            (f"run(max_steps={case.steps})", plain, [], case.steps),
        ):
            trainer = case.trainer(case.fresh(), callbacks, steps_per_call=k)
            difference = run_difference(expected, case.run(trainer, budget))
            if difference:
                case.fail(f"steps_per_call={k} with {label} gave {difference} (steps_per_call=1)")


def checkpoint_resume(case: Case) -> None:
    """A ``Checkpointable`` strategy run ``a`` steps with a ``Checkpoint``, restored into a fresh
    strategy and Trainer and run ``b`` more, equals an uninterrupted run of ``a + b``."""
    strategy = case.fresh()
    if not isinstance(strategy, Checkpointable):
        case.skip(f"{type(strategy).__name__} is not Checkpointable (no save/restore)")
    first = case.steps // 2
    with tempfile.TemporaryDirectory(prefix="steploop-conformance-") as directory:
        case.run(case.trainer(strategy, [Checkpoint(directory, every=first)]), first)
        trainer = case.trainer(case.fresh())
        restored = trainer.restore(directory)
        if restored != first:
            case.fail(f"Trainer.restore returned step {restored}, expected {first}")
        resumed = case.run(trainer, case.steps - first)
    difference = run_difference(case.reference(case.steps), resumed)
    if difference:
        case.fail(
            f"saved after {first} steps, restored into a fresh strategy and run "
            f"{case.steps - first} more, it gave {difference} (an uninterrupted run)"
        )
