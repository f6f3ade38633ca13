"""Schedules: at which steps a callback acts, in one place for every callback.

A ``Schedule`` answers two questions: ``fires(step)`` (does it act after this step?) and
``first_within(after, count)`` (the first step of ``after + 1 .. after + count`` where it acts),
which the Trainer asks to end a fused call where a callback needs live state. ``every(n)`` acts
on multiples of ``n``; ``at(*steps)`` on the given steps. A callback's ``every=`` argument takes
a number (``every=10`` means ``every(10)``) or a ``Schedule``.

>>> every(10).fires(20), every(10).first_within(20, 15), at(3, 7).first_within(3, 10)
(True, 30, 7)
"""

from __future__ import annotations

import bisect
from typing import Any

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


def every(n: int) -> Schedule:
    """Act on the steps that are multiples of ``n`` (every step for ``n = 1``)."""
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
