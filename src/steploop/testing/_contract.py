"""The checks of one step and its methods: ``step_contract``, ``gradient_names``,
``check_signature`` and ``release`` (see ``steploop.strategy`` for the contract they test).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np

from steploop.callbacks.base import Callback
from steploop.capabilities import Releasing
from steploop.strategy import StepOutput
from steploop.testing._case import Case
from steploop.testing._outcome import run_difference


def _one_step(case: Case, strategy: Any) -> StepOutput:
    """One step, called as the Trainer calls it, checked to be a ``StepOutput``."""
    how = "step(batch)" if case.takes_batch else "step()"
    output = strategy.step(case.first_batch()) if case.takes_batch else strategy.step()
    if not isinstance(output, StepOutput):
        case.fail(f"{how} must return a StepOutput, got {type(output).__name__}")
    return output


def _numpy_leaves(case: Case, tree: Any, what: str) -> None:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            _numpy_leaves(case, value, f"{what}[{key!r}]")
    elif not isinstance(tree, (np.ndarray, np.generic)):
        case.fail(f"to_host must return NumPy values; {what} is a {type(tree).__name__}")


def step_contract(case: Case) -> None:
    """``step`` returns a ``StepOutput`` whose loss ``to_host`` makes a finite NumPy scalar;
    ``to_host`` gives NumPy values; gradients are filled exactly when ``reports_gradients``."""
    strategy = case.fresh()
    output = _one_step(case, strategy)
    loss = strategy.to_host(output.loss)
    _numpy_leaves(case, loss, "the loss")
    if np.ndim(loss) != 0:
        case.fail(f"the loss must be a scalar, got shape {np.shape(loss)}")
    if np.asarray(loss).dtype.kind not in "fiu":
        case.fail(f"the loss must be a number, got dtype {np.asarray(loss).dtype}")
    if not np.isfinite(loss):
        case.fail(f"the first step's loss must be finite, got {loss!r}")
    if output.values:
        _numpy_leaves(case, strategy.to_host(dict(output.values)), "values")
    gradients = output.gradients or {}
    filled = bool(gradients)
    declared = type(strategy).__name__ + ".reports_gradients"
    if strategy.reports_gradients and not filled:
        case.fail(f"{declared} is True but the step's gradients are {output.gradients!r}")
    if filled and not strategy.reports_gradients:
        case.fail(f"{declared} is False but the step filled gradients {sorted(gradients)}")
    if filled:
        _numpy_leaves(case, strategy.to_host(dict(gradients)), "gradients")


def gradient_names(case: Case) -> None:
    """The gradients' names are unique and are the names of ``variables()``, with their shapes
    (and so for every target's gradients)."""
    strategy = case.fresh()
    if not strategy.reports_gradients:
        case.skip(f"{type(strategy).__name__}.reports_gradients is False: no gradients to name")
    output = _one_step(case, strategy)
    reported = {"gradients": output.gradients or {}}
    for target, grads in (output.target_gradients or {}).items():
        reported[f"target_gradients[{target!r}]"] = grads
    for what, grads in reported.items():
        names = list(grads)
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            case.fail(f"{what} names {twice} more than once: {names}")
    variables = strategy.variables()
    if not variables:
        case.skip(f"{type(strategy).__name__}.variables() is empty: nothing to match names to")
    for what, grads in reported.items():
        if set(grads) != set(variables):
            missing, extra = (
                sorted(set(variables) - set(grads)),
                sorted(set(grads) - set(variables)),
            )
            case.fail(
                f"{what} are named {sorted(grads)}, expected the names of variables() "
                f"{sorted(variables)} (missing {missing}, unknown {extra})"
            )
        for name, value in strategy.to_host(dict(grads)).items():
            if np.shape(value) != np.shape(variables[name]):
                case.fail(
                    f"{what}[{name!r}] has shape {np.shape(value)}, the variable has "
                    f"{np.shape(variables[name])}"
                )


def check_signature(case: Case) -> None:
    """``check(takes_batch)`` accepts the way the Trainer will call ``step`` (twice: a second
    Trainer on the same strategy), and a Trainer built that way runs a step."""
    strategy = case.fresh()
    how = "step(batch), the Trainer having data" if case.takes_batch else "step(), without data"
    for attempt in ("", " a second time"):
        try:
            answer = strategy.check(case.takes_batch)
        except (TypeError, ValueError) as error:
            case.fail(
                f"check(takes_batch={case.takes_batch}) raised{attempt} "
                f"{type(error).__name__}: {error}; expected it to accept {how}"
            )
        if answer is not None:
            case.fail(f"check(takes_batch={case.takes_batch}) must return None, got {answer!r}")
    trainer = case.trainer(strategy)
    if case.run(trainer, 1).steps != 1:
        case.fail(f"a Trainer built for {how} did not run its one step")


class _ReleaseCounts(Callback):
    """Notes, at each step's ``on_step_end``, how often ``release`` was called before it."""

    may_stop = False
    reads_gradients = False

    def __init__(self, calls: list[int]) -> None:
        self.calls = calls
        self.seen: list[tuple[int, int]] = []

    def on_step_end(self, trainer: Any, record: Any) -> None:
        self.seen.append((record.step, len(self.calls)))


def release(case: Case) -> None:
    """A ``Releasing`` strategy's ``release()`` is called by the Trainer once after every step
    (before the next step's callbacks; calls from inside ``step`` are not counted), and extra
    calls are harmless: the run carries on as one run would."""
    strategy = case.fresh()
    releasing = isinstance(strategy, Releasing)  # a flag: strategy keeps its own type
    if not releasing:
        case.skip(f"{type(strategy).__name__} is not Releasing (it has no release())")
    calls: list[int] = []  # the calls from outside step (a step may release the last one's)
    inside: list[int] = []
    original, plain_step = strategy.release, strategy.step

    def counted() -> None:
        if not inside:
            calls.append(1)
        original()

    def stepping(*args: Any) -> Any:
        inside.append(1)
        try:
            return plain_step(*args)
        finally:
            inside.pop()

    strategy.release = counted  # type: ignore[method-assign]
    strategy.step = functools.wraps(plain_step)(stepping)  # type: ignore[method-assign]
    counts = _ReleaseCounts(calls)
    trainer = case.trainer(strategy, [counts])
    first = case.steps // 2
    case.run(trainer, first)
    for step, before in counts.seen:
        if before != step - 1:
            case.fail(
                f"release() was called {before} times before the callbacks of step {step}; "
                f"expected {step - 1}, once after each earlier step"
            )
    if len(calls) < first:
        case.fail(f"release() was called {len(calls)} times in a run of {first} steps")
    strategy.release()
    strategy.release()
    resumed = case.run(trainer, case.steps - first)
    difference = run_difference(case.reference(case.steps), resumed)
    if difference:
        case.fail(f"after two more release() calls the run went on differently: {difference}")
