"""The release hook: frees what a strategy kept alive for its step's callbacks.

The Trainer appends one ``Release`` after the user's callbacks, so it fires last: right after the
step's final ``on_step_end`` hook, and in ``on_error`` and ``on_run_end`` when something raised.
A persistent gradient tape therefore stays open while the step's callbacks run (they may ask it
for more gradients) and never outlives its step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steploop.callbacks.base import Callback
from steploop.capabilities import Releasing, has

if TYPE_CHECKING:
    from steploop.records import RunResult, StepRecord
    from steploop.strategy import StepStrategy
    from steploop.trainer import Trainer


class Release(Callback):
    """Call ``strategy.release()`` after every step's callbacks, on error and at the end of a run.

    >>> from steploop.numpy import GradientDescent
    >>> Release(GradientDescent(lambda x: (x * x, 2 * x), 1.0, learning_rate=0.1))
    Release(GradientDescent)
    """

    may_stop = False
    reads_gradients = False
    fires_last = True

    def __init__(self, strategy: StepStrategy) -> None:
        self.strategy = strategy
        #: the strategy's ``release`` (``None`` when it is not ``Releasing``: nothing to free)
        self._release = strategy.release if has(strategy, Releasing) else None

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if self._release is not None:
            self._release()

    @property
    def _needed_on_step_end(self) -> bool:
        """False when the strategy keeps nothing to release."""
        return self._release is not None

    def on_error(self, trainer: Trainer, error: BaseException) -> None:
        if self._release is not None:
            self._release()

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        if self._release is not None:
            self._release()

    def __repr__(self) -> str:
        return f"Release({type(self.strategy).__name__})"

    def describe(self) -> str:
        return f"{self!r}  (built in: frees the step's resources, e.g. a persistent tape)"
