"""The column storage behind ``History``: growable NumPy buffers, one per quantity.

``Column`` keeps rows of one fixed trailing shape in a buffer that doubles when full (rows a step
skipped read ``nan``); ``Steps`` is the ``step`` column, which while the steps are consecutive
(the Trainer's always are) keeps only the first one; ``step_number`` checks a step fits it.

>>> column = Column((), 2)
>>> column.set(0, 1.5); column.set(2, 3.0)
>>> column.read(3).tolist()
[1.5, nan, 3.0]
>>> steps = Steps()
>>> steps.set_rows(0, [5, 6, 7]); steps.column is None, steps.read(3).tolist()
(True, [5, 6, 7])
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np


class Column:
    """A growable NumPy buffer of rows with a fixed trailing shape.

    Rows are written in order; ``filled`` rows are valid, and rows skipped over (steps that had no
    value for this column) read ``nan``: they are padded when a later row is written or read.
    """

    __slots__ = ("buffer", "filled", "shape")

    def __init__(self, shape: tuple[int, ...], capacity: int, dtype: Any = np.float64) -> None:
        self.shape = shape
        self.buffer = np.empty((max(capacity, 16), *shape), dtype=dtype)
        self.filled = 0

    def _grow(self, rows: int) -> None:
        if rows > len(self.buffer):
            grown = np.empty((max(2 * len(self.buffer), rows), *self.shape), self.buffer.dtype)
            grown[: self.filled] = self.buffer[: self.filled]
            self.buffer = grown

    def pad(self, rows: int) -> None:
        if self.filled < rows:
            self._grow(rows)
            self.buffer[self.filled : rows] = np.nan if self.buffer.dtype.kind == "f" else 0
            self.filled = rows

    def set(self, row: int, value: Any) -> None:
        if row == self.filled and row < len(self.buffer):  # the next row: every plain step
            self.buffer[row] = value
            self.filled = row + 1
            return
        self.pad(row)
        self._grow(row + 1)
        self.buffer[row] = value
        self.filled = max(self.filled, row + 1)

    def set_rows(self, start: int, values: np.ndarray) -> None:
        self.pad(start)
        end = start + len(values)
        self._grow(end)
        self.buffer[start:end] = values
        self.filled = max(self.filled, end)

    def read(self, rows: int) -> np.ndarray:
        self.pad(rows)
        return self.buffer[:rows]


class Steps:
    """The ``step`` column: while the steps are consecutive (the Trainer's always are) it keeps
    only the first one and makes the numbers when read; other steps turn it into a ``Column``."""

    __slots__ = ("column", "first")

    shape: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.first: int | None = None
        self.column: Column | None = None

    def _materialize(self, rows: int) -> Column:
        if self.column is None:
            self.column = Column((), rows, dtype=np.int64)
            if self.first is not None and rows:
                self.column.set_rows(0, np.arange(self.first, self.first + rows, dtype=np.int64))
        return self.column

    def consecutive(self, row: int, first_step: int) -> bool:
        """Whether steps from ``first_step`` at ``row`` on continue the implicit numbering."""
        if self.column is not None:
            return False
        if self.first is None and row == 0:
            self.first = first_step
            return True
        return self.first is not None and first_step == self.first + row

    def set(self, row: int, value: Any) -> None:
        if self.column is None and self.first is not None and value == self.first + row:
            return  # the next step: every plain step
        if not self.consecutive(row, int(value)):
            self._materialize(row).set(row, value)

    def set_rows(self, start: int, values: np.ndarray) -> None:
        steps = np.asarray(values).astype(np.int64)
        if len(steps) and self.column is None:
            expected = np.arange(steps[0], steps[0] + len(steps), dtype=np.int64)
            if np.array_equal(steps, expected) and self.consecutive(start, int(steps[0])):
                return
        self._materialize(start).set_rows(start, steps)

    def read(self, rows: int) -> np.ndarray:
        if self.column is not None:
            return self.column.read(rows)
        first = 1 if self.first is None else self.first
        return np.arange(first, first + rows, dtype=np.int64)


#: The steps an int64 ``step`` column holds.
STEPS_MIN, STEPS_MAX = -(2**63), 2**63 - 1


def step_number(where: str, name: str, value: Any, count: int = 1) -> int:
    """``value`` as a Python int whose ``count`` consecutive steps from it fit the int64 ``step``
    column; a ``TypeError`` for a non-integer (a float would be cut to its whole part), a
    ``ValueError`` for one out of range, both naming ``name``."""
    try:  # an int, a NumPy or JAX integer, a 0-d integer array; not a bool, nor a float
        number = operator.index(value) if not isinstance(value, (bool, np.bool_)) else None
    except TypeError:
        number = None
    if number is None:
        raise TypeError(f"{where}: {name} must be an int, got {type(value).__name__} {value!r}")
    last = number + max(count, 1) - 1
    if number < STEPS_MIN or last > STEPS_MAX:
        what = f"{name} {number} does" if count <= 1 else f"steps {number} .. {last} do"
        raise ValueError(f"{where}: {what} not fit the int64 'step' column")
    return number


def new_column(name: str, shape: tuple[int, ...], capacity: int) -> Column | Steps:
    if shape == () and name == "epoch":
        return Column((), capacity, dtype=np.int64)
    return Steps() if name == "step" and shape == () else Column(shape, capacity)
