"""Schedules: at which steps a callback acts, in one place for every callback.

A ``Schedule`` answers two questions: ``fires(step)`` (does it act after this step?) and
``first_within(after, count)`` (the first step of ``after + 1 .. after + count`` where it acts),
which the Trainer asks to end a fused call where a callback needs live state. ``every(n)`` acts
on multiples of ``n``; ``at(*steps)`` on the given steps; ``every(epochs=n)`` on the last step of
every ``n``-th epoch of a ``Trainer(..., epochs=...)``. A callback's ``every=`` argument takes a
number (``every=10`` means ``every(10)``) or a ``Schedule``.

An epoch schedule reads the steps where epochs end from the Trainer that runs it (an
``EpochClock``, attached when the Trainer is built; see ``steploop.epochs``): it knows the end of
the current epoch as soon as the Trainer does (from ``len(data)``, or on the epoch's last batch),
and ``first_within`` looks no further than the current epoch, since a fused call never crosses
an epoch's end.

>>> every(10).fires(20), every(10).first_within(20, 15), at(3, 7).first_within(3, 10)
(True, 30, 7)
"""

from __future__ import annotations

import bisect
import weakref
from typing import Any, Protocol

import attrs

from steploop import _validate


@attrs.frozen
class Schedule:
    """Acts on multiples of ``period`` (``every(n)``) or on the sorted ``steps`` (``at(...)``)."""

    period: int | None = None
    steps: tuple[int, ...] = ()

    def fires(self, step: int) -> bool:
        """Whether the schedule acts after step ``step``."""
        if self.period is not None:
            return step % self.period == 0
        return step in self.steps

    def first_within(self, after: int, count: int) -> int | None:
        """The first step of ``after + 1 .. after + count`` where it acts, or ``None``."""
        if self.period is not None:
            first = (after // self.period + 1) * self.period
        else:
            index = bisect.bisect_right(self.steps, after)
            if index == len(self.steps):
                return None
            first = self.steps[index]
        return first if first <= after + count else None

    def __repr__(self) -> str:
        if self.period is not None:
            return f"every({self.period})"
        return f"at({', '.join(map(str, self.steps))})"


#: Every epoch schedule alive: where there is none, a Trainer has none to attach its clock to (and
#: skips looking through its callbacks' attributes for one).
LIVE_EPOCH_SCHEDULES: weakref.WeakValueDictionary[int, EpochSchedule] = (
    weakref.WeakValueDictionary()
)


class EpochClock(Protocol):
    """Where a Trainer's epochs end, as an epoch schedule asks (``steploop.epochs.Epochs``)."""

    def ending_at(self, step: int) -> int | None:
        """The number of the epoch whose last step is ``step``, when known, else ``None``."""

    def next_end(self, after: int) -> tuple[int, int] | None:
        """``(step, epoch)``: the current epoch's last step if known and after ``after``."""


@attrs.frozen
class EpochSchedule(Schedule):
    """Acts on the last step of every ``epochs``-th epoch; see ``every(epochs=n)``.

    The Trainer it is given to (through a callback) attaches its epoch clock when it is built;
    asked before that, it raises a ``RuntimeError`` that says so.
    """

    epochs: int = 1
    _clock: list[EpochClock | None] = attrs.field(
        factory=lambda: [None], eq=False, repr=False, alias="clock"
    )

    def __new__(cls, *args: Any, **kwargs: Any) -> EpochSchedule:
        schedule: EpochSchedule = object.__new__(cls)  # made, copied or unpickled: known alive
        LIVE_EPOCH_SCHEDULES[id(schedule)] = schedule  # by id: its hash needs its fields
        return schedule

    def __reduce_ex__(self, protocol: Any) -> Any:
        # protocols 0 and 1 would rebuild it with object.__new__, unregistered: use 2's way
        return object.__reduce_ex__(self, max(int(protocol), 2))

    def attach(self, clock: EpochClock) -> None:
        """Read epoch ends from ``clock`` (the Trainer's) from now on."""
        self._clock[0] = clock

    def _read(self) -> EpochClock:
        clock = self._clock[0]
        if clock is None:
            raise RuntimeError(
                f"{self!r} acts at the ends of epochs, but no Trainer with epochs runs it; give "
                "it to a callback of Trainer(..., epochs=n)"
            )
        return clock

    def fires(self, step: int) -> bool:
        epoch = self._read().ending_at(step)
        return epoch is not None and epoch % self.epochs == 0

    def first_within(self, after: int, count: int) -> int | None:
        end = self._read().next_end(after)
        if end is None or end[0] > after + count or end[1] % self.epochs:
            return None
        return end[0]

    def __repr__(self) -> str:
        return f"every(epochs={self.epochs})"


def every(n: int | None = None, *, epochs: int | None = None) -> Schedule:
    """Act on the steps that are multiples of ``n`` (every step for ``n = 1``), or, with
    ``epochs=n``, on the last step of every ``n``-th epoch (of a ``Trainer(..., epochs=...)``).

    >>> every(5), every(epochs=2)
    (every(5), every(epochs=2))
    """
    if (n is None) == (epochs is None):
        raise TypeError(
            f"every takes a number of steps or epochs=, exactly one of them; got n={n!r}, "
            f"epochs={epochs!r}"
        )
    if epochs is not None:
        return EpochSchedule(epochs=_validate.count("every epochs", epochs))
    return Schedule(period=_validate.count("every", n))


def at(*steps: int) -> Schedule:
    """Act on the given steps (counted from 1)."""
    if not steps:
        raise ValueError("at() needs at least one step")
    return Schedule(steps=tuple(sorted({_validate.count("at step", step) for step in steps})))


def as_schedule(value: Any, name: str = "every") -> Schedule:
    """``value`` as a ``Schedule``: a ``Schedule`` stays, a whole number ``n`` is ``every(n)``."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be an int or a steploop.Schedule (every(n), at(...)), got {value!r} "
            f"({type(value).__name__})"
        )
    return Schedule(period=_validate.count(name, value))


def every_repr(schedule: Schedule) -> str:
    """How an ``every=`` argument reads back: ``10`` for ``every(10)``, else the schedule."""
    return repr(schedule) if schedule.period is None else str(schedule.period)


#: The schedule of a callback that acts at every step.
EVERY_STEP = Schedule(period=1)
