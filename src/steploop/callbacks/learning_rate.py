"""``LearningRateScheduler``: the learning rate of each step as a function of the step.

Contract: before step ``s`` runs, the strategy's learning rate is ``fn(s)``; the history gets a
column ``lr`` holding the learning rate each step used. The strategy must have a settable
``learning_rate`` (``steploop.capabilities.LearningRateControl``: ``GradientDescent`` and the
TensorFlow strategies with a Keras optimizer whose learning rate is a number).

The rate for step ``s`` is set after step ``s - 1`` (at ``on_run_begin`` for a run's first
step), so it holds in fused calls too: a fused call ends after step ``c - 1`` for every step
``c`` where the rate changes. With ``changes_at`` (a ``Schedule``: ``every(n)``, ``at(...)``)
the calls end only there, and ``fn`` must not change elsewhere (checked: a change at another
step raises a ``ValueError`` naming it). Without it, ``fn`` may change at any step, and fused
calls do one step each (exact, and as slow as plain steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.capabilities import LearningRateControl, has
from steploop.schedule import Schedule

if TYPE_CHECKING:
    from steploop.records import StepRecord
    from steploop.trainer import Trainer


def rate_control(strategy: Any) -> str | None:
    """Why ``strategy``'s learning rate cannot be set from a callback, or ``None`` when it can:
    it has no ``learning_rate`` (``LearningRateControl``), or reading it raises a ``TypeError``
    (an ``OptaxStep`` whose optimiser holds no rate, a Keras rate that is a schedule)."""
    if not has(strategy, LearningRateControl):
        return (
            "needs a strategy with a settable learning_rate "
            f"(steploop.capabilities.LearningRateControl); {type(strategy).__name__} has none"
        )
    try:
        strategy.learning_rate  # noqa: B018 (read to check it)
    except TypeError as error:
        return f"needs a settable learning rate: {error}"
    return None


class LearningRateScheduler(Callback):
    """Set the learning rate to ``fn(step)`` before each step; record it as history column
    ``lr``. ``changes_at`` (a ``Schedule``) names the only steps where ``fn`` may change, so that
    fused calls end only there (see the module docstring).

    >>> import steploop as sl
    >>> from steploop.numpy import GradientDescent
    >>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
    >>> halve = sl.LearningRateScheduler(lambda s: 0.4 if s < 3 else 0.2, changes_at=sl.at(3))
    >>> trainer = sl.Trainer(gd, [halve], steps_per_call=8)
    >>> trainer.run(max_steps=4).steps, trainer.history["lr"].tolist()
    (4, [0.4, 0.4, 0.2, 0.2])
    """

    #: It logs the history column ``lr`` at every step: loggers must come after it.
    logs_columns: ClassVar[bool] = True

    may_stop = False
    reads_gradients = False
    needs_live_state = True

    def __init__(self, fn: Callable[[int], float], changes_at: Schedule | None = None) -> None:
        self.fn = _validate.callable_("LearningRateScheduler fn", fn, "a function of the step")
        if changes_at is not None and not isinstance(changes_at, Schedule):
            raise TypeError(
                f"LearningRateScheduler changes_at must be None or a steploop.Schedule "
                f"(every(n), at(...)), got {changes_at!r} ({type(changes_at).__name__})"
            )
        self.changes_at = changes_at
        self._set = 0.0  # the rate last given to the strategy

    def validate(self, trainer: Trainer) -> str | None:
        return rate_control(trainer.strategy)

    def next_sync_step(self, after: int, count: int) -> int | None:
        """End a call after step ``c - 1`` for each step ``c`` where the rate may change (the
        first step of the call was set already)."""
        if self.changes_at is None:
            return after + 1
        change = self.changes_at.first_within(after + 1, count - 1) if count > 1 else None
        return None if change is None else change - 1

    def rate(self, step: int) -> float:
        """``fn(step)``, checked: a finite number > 0."""
        return _validate.number(f"LearningRateScheduler fn({step})", self.fn(step), positive=True)

    def on_run_begin(self, trainer: Trainer) -> None:
        strategy: Any = trainer.strategy
        self._set = self.rate(trainer.step + 1)
        strategy.learning_rate = self._set

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        strategy: Any = trainer.strategy
        trainer.history.log("lr", strategy.learning_rate)  # as the strategy holds it
        step = record.step + 1
        rate, used = self.rate(step), self._set
        if rate == used:
            return
        if self.changes_at is not None and not self.changes_at.fires(step):
            raise ValueError(
                f"LearningRateScheduler fn changes the learning rate at step {step} "
                f"({used:g} -> {rate:g}), which is not in changes_at={self.changes_at!r}"
            )
        strategy.learning_rate = self._set = rate

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        at = "" if self.changes_at is None else f", changes_at={self.changes_at!r}"
        return f"LearningRateScheduler({name}{at})"
