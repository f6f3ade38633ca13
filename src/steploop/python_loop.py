"""The core's loop of steps in Python: ``run_steps`` for a strategy without a compiled loop.

``run_steps_in_python`` calls ``step`` up to ``count`` times and returns a ``FusedResult`` equal
to what step-by-step runs record (the Trainer fuses any strategy with it under
``steps_per_call=K``; eager TensorFlow and JAX strategies use it too). ``fused_or_plain`` runs a
strategy's compiled loops, or one step in Python when they cannot start.

>>> from steploop.criteria_program import CriteriaProgram
>>> from steploop.numpy import GradientDescent
>>> quadratic = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
>>> result = run_steps_in_python(quadratic, 3, 1, CriteriaProgram([]), None, False)
>>> result.steps, result.output.loss.round(4).tolist()
(3, [16.0, 10.24, 6.5536])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from steploop.criteria_program import Quantities
from steploop.ops import HOST
from steploop.records import check_value_names
from steploop.strategy import END, LAST, FusedResult, StepOutput, StepStrategy, checked_loss

if TYPE_CHECKING:
    from steploop.criteria_program import CriteriaProgram
    from steploop.loop_body import CompiledLoops
    from steploop.strategy import BatchCursor


def run_steps_in_python(
    strategy: StepStrategy,
    count: int,
    first_step: int,
    stopper: CriteriaProgram,
    feed: BatchCursor | None,
    keep_gradients: bool | str,
) -> FusedResult:
    """Do up to ``count`` steps of ``strategy``, ending after the step where ``stopper`` fires,
    the strategy's ``stop_after`` asks to stop or the Trainer was asked to (``stopper.stop_asked``),
    or when ``feed`` is exhausted: ``run_steps`` for a strategy that is not ``Fusable``, calling
    ``step`` in a Python loop (results equal step by step). The steps of one call report the
    same value names (they are stacked): a step whose names differ raises a ``ValueError``."""
    # each step's output on the host, converted once: its loss, and its values and gradients
    # only where they are stacked (floats are not tracked by the garbage collector; a call keeps
    # no object a step it does not need)
    losses: list[float] = []
    value_rows: list[Mapping[str, Any]] = []
    gradient_rows: list[Mapping[str, Any]] = []
    targets: list[Any] = []
    states = stopper.initial()
    verdicts: tuple[Any, ...] = ()
    stopped = exhausted = False
    every = keep_gradients is True
    gradients_needed = every or stopper.needs_gradients
    output = last_output = None
    error: BaseException | None = None
    reason: str | BaseException | None = None
    stops_itself = getattr(strategy, "stop_after", None)
    step, to_host, where = strategy.step, strategy.to_host, f"{type(strategy).__name__}.step"
    evaluate = stopper.evaluate if stopper else None  # bound once: this loop runs every step
    release = getattr(strategy, "release", None)  # Releasing: what a step kept for its callbacks
    target = None
    names: Any = None  # the value names of the call's first step: every step must report them
    kept: Any = None  # so too its gradients' and target gradients' names, when every step's are
    for index in range(count):
        try:  # a step that raises after others: they are recorded (as plain steps), then it
            if index and release is not None:  # no callback sees the step before inside a call
                release()
            if feed is None:
                output = step()
            else:
                batch = feed.next()
                if batch is END:
                    exhausted = True
                    break
                if stopper.stop_asked:  # by the data as it yielded: the step does not run
                    feed.put_back(batch)
                    break
                output = step(batch)
            loss = checked_loss(strategy, output)
            values = output.values
            if values:  # a bad name fails at its step, before the next, as for a plain step
                check_value_names(where, values)
                values = to_host(dict(values))
            if names is None:
                names = values.keys() if values else ()
            elif (values.keys() if values else ()) != names:
                raise ValueError(_differ(where, "values named", first_step, index, names, values))
            gradients = output.gradients if gradients_needed else None
            row = Quantities(
                first_step + index,
                loss,
                values or {},
                to_host(dict(gradients)) if gradients else {},
            )
            if every:  # every step's gradients and target gradients are stacked: the same names
                if output.target_gradients is not None:
                    target = to_host(dict(output.target_gradients))
                now = (row.gradients.keys(), () if target is None else target.keys())
                if not index:
                    kept = now
                elif now != kept:
                    what, at = (
                        ("gradients of", 0) if now[0] != kept[0] else ("target gradients for", 1)
                    )
                    raise ValueError(_differ(where, what, first_step, index, kept[at], now[at]))
        except BaseException as raised:
            error = raised
            break
        losses.append(loss)
        if names:
            value_rows.append(row.values)
        if every:
            gradient_rows.append(row.gradients)
        last_output = output
        if target is not None:
            targets.append(target)
            target = None
        if stops_itself is not None:  # asked first, as a plain step's commit asks it
            try:
                reason = stops_itself(row.step, row.values)
            except BaseException as raised:  # no criterion took the step; the Trainer raises
                error = reason = raised  # it where it asks (FusedCall.stop_after)
                break
        if evaluate is not None:
            try:  # a criterion that raises: its step stays recorded, as after a plain step
                stopped, states, verdicts = evaluate(HOST, states, row)
            except BaseException as raised:  # the criteria before it took the step
                error, states = raised, stopper.states_until_error(states, row)
                break
        stopped = stopped or reason is not None
        if stopped or stopper.stop_asked:
            break
    output = last_output
    gradients_stacked = every and strategy.reports_gradients
    stacked = _stacked(losses, value_rows, gradient_rows if gradients_stacked else None, targets)
    last = keep_gradients == LAST and losses and output is not None
    if last and output is not None:  # the last step's alone, no row axis
        gradients, targets_of_last = output.gradients, output.target_gradients
        stacked = attrs.evolve(
            stacked,
            gradients=None if gradients is None else strategy.to_host(dict(gradients)),
            target_gradients=None
            if targets_of_last is None
            else strategy.to_host(dict(targets_of_last)),
        )
    return FusedResult(
        steps=len(losses),
        output=stacked,
        states=states,
        verdicts=tuple(bool(met) for met in verdicts),
        stopped=bool(stopped),
        exhausted=exhausted,
        last_gradients=bool(last),
        error=error,
        in_python=True,
        strategy_stop=reason,
        stop_honoured=stopper.stop_asked,
    )


def _differ(where: str, what: str, first: int, index: int, before: Any, now: Any) -> str:
    """The message for a step of a call in Python that reports other names than its first."""
    return (
        f"{where} returned {what} {sorted(now)} at step {first + index}, but {sorted(before)} at "
        f"step {first}, the first step of its fused call: the steps of one call report the same "
        "names (steps_per_call=1 records names that change from step to step)"
    )


def fused_or_plain(
    strategy: StepStrategy,
    loops: CompiledLoops,
    count: int,
    first_step: int,
    stopper: CriteriaProgram,
    feed: BatchCursor | None,
    keep_gradients: bool | str,
) -> FusedResult:
    """Up to ``count`` steps of ``strategy`` in one call of its compiled ``loops``; when
    ``feed``'s next batch cannot be stacked (``loops.run`` returns ``None``), one plain step,
    which says what is wrong with it: ``run_steps`` of a strategy ready to fuse."""
    chunk = loops.run(count, first_step, stopper, feed, keep_gradients)
    if chunk is None:
        return run_steps_in_python(strategy, 1, first_step, stopper, feed, keep_gradients)
    return chunk


def _stack(trees: list[Any]) -> Any:
    """One array per leaf, with a leading row per tree."""
    first = trees[0]
    if isinstance(first, Mapping):
        return {key: _stack([tree[key] for tree in trees]) for key in first}
    return np.stack([np.asarray(tree) for tree in trees])


def _stacked(
    losses: list[float],
    values: list[Mapping[str, Any]],
    gradients: list[Mapping[str, Any]] | None,
    targets: list[Any],
) -> StepOutput:
    """One ``StepOutput`` with a leading row per step, from the steps' host quantities (the
    values and gradients of every step, or none)."""
    if not losses:
        return StepOutput(loss=np.zeros(0))
    return StepOutput(
        loss=np.array(losses),
        gradients=None if gradients is None else _stack(gradients),
        target_gradients=_stack(targets) if targets else None,
        values=_stack(values) if values else {},
    )
