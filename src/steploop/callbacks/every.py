"""``Every``: a callback whose step hooks fire only on the steps of a schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from steploop.callbacks.base import Callback
from steploop.callbacks.signatures import check_signatures
from steploop.schedule import Schedule, as_schedule, every_repr

if TYPE_CHECKING:
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer


@attrs.define(repr=False)
class Every(Callback):
    """Call ``callback``'s step hooks only on the steps of ``schedule`` (``n``: multiples of n).

    Run hooks, epoch hooks and ``on_error`` always reach it.

    >>> from steploop.callbacks.loggers import PrintLogger
    >>> Every(PrintLogger(), 5)
    Every(callback=PrintLogger(every=1), every=5)
    """

    callback: Callback
    schedule: Schedule = attrs.field(converter=as_schedule)  # type: ignore[misc]

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.callback, Callback):
            raise TypeError(
                f"Every: callback must be a Callback, got {type(self.callback).__name__}"
            )
        check_signatures(self.callback, repr(self.callback))

    @property
    def requires_gradients(self) -> bool:  # type: ignore[override]
        return self.callback.requires_gradients

    @property
    def may_stop(self) -> bool:  # type: ignore[override]
        return self.callback.may_stop

    @property
    def needs_live_state(self) -> bool:  # type: ignore[override]
        return self.callback.needs_live_state

    @property
    def fires_last(self) -> bool:  # type: ignore[override]
        return self.callback.fires_last

    @property
    def reads_gradients(self) -> bool:  # type: ignore[override]
        return self.callback.reads_gradients

    @property
    def has_state(self) -> bool:  # type: ignore[override]
        return self.callback.has_state

    @property
    def state_key(self) -> str:  # type: ignore[override]
        return self.__dict__.get("_state_key") or self.callback.state_key

    def get_state(self) -> dict[str, Any]:
        return self.callback.get_state()

    def validate(self, trainer: Trainer) -> str | None:
        return self.callback.validate(trainer)

    def set_state(self, state: dict[str, Any]) -> None:
        self.callback.set_state(state)

    def next_sync_step(self, after: int, count: int) -> int | None:
        end = after + count
        first = self.schedule.first_within(after, count)
        while first is not None:
            if self.callback.next_sync_step(first - 1, 1) == first:
                return first
            first = self.schedule.first_within(first, end - first)
        return None

    def on_run_begin(self, trainer: Trainer) -> None:
        self.callback.on_run_begin(trainer)

    def on_epoch_begin(self, trainer: Trainer, epoch: int) -> None:
        self.callback.on_epoch_begin(trainer, epoch)

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        self.callback.on_epoch_end(trainer, epoch)

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        if self.schedule.fires(step):
            self.callback.on_step_begin(trainer, step)

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if self.schedule.fires(record.step):
            self.callback.on_step_end(trainer, record)

    def on_error(self, trainer: Trainer, error: BaseException) -> None:
        self.callback.on_error(trainer, error)

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        self.callback.on_run_end(trainer, result)

    def __repr__(self) -> str:
        return f"Every(callback={self.callback!r}, every={every_repr(self.schedule)})"
