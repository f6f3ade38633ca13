"""``ReduceLROnPlateau``: multiply the learning rate by ``factor`` when a monitored quantity has
stopped improving (Keras' callback, with its cooldown made to mean what it says).

Contract, per check (every step for ``"loss"`` or a step's value; each step an earlier
``Evaluate`` publishes for ``"val_loss"`` and the like, see ``steploop.callbacks.monitor``):

1. a value that beats the best so far by more than ``min_delta`` becomes the best;
2. during a cooldown (the ``cooldown`` checks after a reduction) nothing else happens;
3. otherwise an improving check resets the count, and any other one adds to it; when the count
   reaches ``patience``, the rate becomes ``max(rate * factor, min_lr)`` (if it is above
   ``min_lr``), the count restarts and the cooldown begins.

The new rate holds from the next step on. Keras' ``cooldown=c`` ignores ``c - 1`` checks (its
``cooldown=1`` ignores none); here ``cooldown=c`` ignores ``c``. The history gets a column
``lr``: the rate each step used. The state (best, count, cooldown left, rate) is saved in
checkpoints, and a resumed run sets the saved rate before its first step.

Fused calls: a reduction can happen only after ``patience`` checks without improvement (plus
the cooldown left), so a fused call ends at the first step where one could happen and nowhere
else (``next_sync_step``): fused runs equal step-by-step runs exactly, at a cost of a call
ending every ``patience`` checks while the monitor does not improve.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.callbacks.learning_rate import LearningRateScheduler, rate_control
from steploop.callbacks.monitor import auto_mode, step_value

if TYPE_CHECKING:
    from steploop.records import StepRecord
    from steploop.trainer import Trainer


def _factor(value: Any) -> float:
    factor = _validate.number("ReduceLROnPlateau factor", value)
    if not 0.0 < factor < 1.0:
        raise ValueError(
            f"ReduceLROnPlateau factor must be > 0 and < 1 (it multiplies the rate), got {factor:g}"
        )
    return factor


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` checks of ``monitor``
    without an improvement by more than ``min_delta``; then ignore ``cooldown`` checks; never go
    below ``min_lr``. ``mode`` is ``"min"``, ``"max"`` or ``"auto"`` (as ``EarlyStopping``).
    See the module docstring for the exact rules.

    A flat loss: the first check sets the best, the next two do not improve on it, so the rate
    halves after step 3, and again after step 5.

    >>> import steploop as sl
    >>> from steploop.numpy import GradientDescent
    >>> flat = GradientDescent(lambda x: (1.0, 0.0 * x), 0.0, learning_rate=0.1)
    >>> plateau = sl.ReduceLROnPlateau(factor=0.5, patience=2)
    >>> trainer = sl.Trainer(flat, [plateau], steps_per_call=4)
    >>> trainer.run(max_steps=6).steps, trainer.history["lr"].tolist()
    (6, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025])
    """

    #: It logs the history column ``lr`` at every step: loggers must come after it.
    logs_columns: ClassVar[bool] = True

    may_stop = False
    reads_gradients = False

    def __init__(
        self,
        monitor: str = "loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 0.0,
        cooldown: int = 0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"ReduceLROnPlateau monitor must be a non-empty str, got {monitor!r}")
        if mode not in ("min", "max", "auto"):
            raise ValueError(
                f"ReduceLROnPlateau mode must be 'min' or 'max' (or 'auto': from the monitored "
                f"name), got {mode!r}"
            )
        self.monitor = monitor
        self.factor = _factor(factor)
        self.patience = _validate.count("ReduceLROnPlateau patience", patience, minimum=0)
        self.min_delta = _validate.number(
            "ReduceLROnPlateau min_delta", min_delta, nonnegative=True
        )
        self.cooldown = _validate.count("ReduceLROnPlateau cooldown", cooldown, minimum=0)
        self.min_lr = _validate.number("ReduceLROnPlateau min_lr", min_lr, nonnegative=True)
        self.mode = auto_mode(monitor, mode)
        self._source: Any = None
        self._best = math.inf if self.mode == "min" else -math.inf
        self._wait = 0
        self._cooling = 0  # checks of the cooldown left
        self._rate: float | None = None  # the rate after the last check
        self._restored: float | None = None  # a rate to set before the next run's first step

    def watch(self, source: Any) -> None:
        """Read ``monitor`` from ``source``, the earlier callback that publishes it (``None``:
        from the step's own values); set when the Trainer is built."""
        self._source = source

    def validate(self, trainer: Trainer) -> str | None:
        strategy = trainer.strategy
        for callback in trainer.callbacks:
            if isinstance(callback, LearningRateScheduler):
                raise ValueError(
                    f"{self!r} and {callback!r} would both set the learning rate (and log "
                    "column 'lr'); use one of them"
                )
        return rate_control(strategy)

    # -- fused calls ---------------------------------------------------------------------------
    def checks_to_reduction(self) -> int:
        """How many more checks the earliest possible reduction is away (at least 1)."""
        if self._cooling:
            return self._cooling + max(self.patience, 1)
        return max(self.patience - self._wait, 1)

    def next_sync_step(self, after: int, count: int) -> int | None:
        """The step of the earliest possible reduction, if it falls in ``after + 1 .. after +
        count``: a fused call ends there, so the new rate holds from the next step (none once
        the rate is at ``min_lr``)."""
        if self._rate is not None and self._rate <= self.min_lr:
            return None
        if self._source is None:
            step = after + self.checks_to_reduction()
            return step if step <= after + count else None
        schedule, step = self._source.schedule, after
        for _ in range(self.checks_to_reduction()):
            found = schedule.first_within(step, after + count - step)
            if found is None:
                return None
            step = found
        return step

    # -- the checks -----------------------------------------------------------------------------
    def on_run_begin(self, trainer: Trainer) -> None:
        if self._restored is not None:
            strategy: Any = trainer.strategy
            strategy.learning_rate = self._restored
            self._restored = None

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        strategy: Any = trainer.strategy
        rate = strategy.learning_rate
        trainer.history.log("lr", rate)  # the rate this step used
        self._rate = rate
        if self._source is None:
            value = step_value("ReduceLROnPlateau", self.monitor, record.loss, record.values)
        else:
            published = self._source.published_at(record.step)
            if published is None:
                return
            value = step_value("ReduceLROnPlateau", self.monitor, record.loss, published)
        new_rate = self._check(value, rate)
        if new_rate != rate:
            strategy.learning_rate = new_rate
            self._rate = strategy.learning_rate

    def _check(self, value: float, rate: float) -> float:
        """Take one check of ``value`` (rules 1-3 of the module docstring); return the rate."""
        if self.mode == "min":
            improved = value < self._best - self.min_delta
        else:
            improved = value > self._best + self.min_delta
        if improved:
            self._best = value
        if self._cooling:
            self._cooling -= 1
            return rate
        if improved:
            self._wait = 0
            return rate
        self._wait += 1
        if self._wait < self.patience or rate <= self.min_lr:
            return rate
        self._wait, self._cooling = 0, self.cooldown
        return max(rate * self.factor, self.min_lr)

    # -- checkpoints ----------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "best": self._best,
            "wait": self._wait,
            "cooldown": self._cooling,
            "learning_rate": self._rate,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self._best = float(state["best"])
        self._wait, self._cooling = int(state["wait"]), int(state["cooldown"])
        self._rate = self._restored = state["learning_rate"]

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(monitor={self.monitor!r}, factor={self.factor:g}, "
            f"patience={self.patience}, mode={self.mode!r})"
        )
