"""The Trainer's own cost per step, and what it is measured against (steploop, NumPy and attrs
only: ``callgrind.py`` runs these under valgrind, where importing a framework would cost minutes).

* ``trainer_run(n)``: a ``Trainer`` with the five criteria of ``five_criteria()`` on ``NoOp``, a
  strategy whose step does nothing but return a loss, for ``n`` steps.
* ``bare_loop(n)``: the least a hand loop with five stopping conditions does: per step one frozen
  attrs record (step, loss) and five small functions called on it.
"""

from __future__ import annotations

import attrs

import steploop as sl


class NoOp(sl.StepStrategy):
    """A step that does nothing and reports a loss of 1."""

    def step(self, batch: object = None) -> sl.StepOutput:
        return sl.StepOutput(loss=1.0)


def five_criteria() -> list[sl.Callback]:
    """Five criteria that never stop a run (the overhead row and callgrind's)."""
    return [
        sl.MaxSteps(10**12),
        sl.LossBelow(0.0),
        sl.LossChangeBelow(1e-300, patience=10**12),
        sl.EarlyStopping(patience=10**12),
        sl.StopOnNaN(),
    ]


def trainer_run(n: int) -> int:
    return sl.Trainer(NoOp(), five_criteria()).run(max_steps=n).steps


@attrs.frozen
class Record:
    step: int
    loss: float


def bare_loop(n: int) -> int:
    """``n`` steps of a hand loop: a record and five stopping checks per step."""
    best = [float("inf")]
    last = [float("nan")]
    flat = [0]

    def max_steps(r: Record) -> bool:
        return r.step >= 10**12

    def loss_below(r: Record) -> bool:
        return r.loss < 0.0

    def loss_change(r: Record) -> bool:
        flat[0] = flat[0] + 1 if abs(r.loss - last[0]) < 1e-300 else 0
        last[0] = r.loss
        return flat[0] >= 10**12

    def early_stopping(r: Record) -> bool:
        if r.loss < best[0]:
            best[0] = r.loss
        return False

    def not_finite(r: Record) -> bool:
        return r.loss != r.loss

    checks = (max_steps, loss_below, loss_change, early_stopping, not_finite)
    step = 0
    while step < n:
        step += 1
        record = Record(step, 1.0)
        if any([check(record) for check in checks]):
            break
    if step != n:
        raise RuntimeError(f"bare_loop: stopped at step {step} of {n}")
    return step
