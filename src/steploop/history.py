"""Columnar history of a training run: one row per step, one NumPy column per quantity.

Columns ``step`` (integers) and ``loss`` are always there, empty before the first step; a
``Trainer(..., epochs=n)`` adds ``epoch`` (integers, counted from 1). A
strategy's reported ``values`` and anything a callback logs with ``History.log`` become further
columns of floats; a step that has no entry for a column reads ``nan`` there. As in pandas,
``len(history)`` is the number of rows (steps) and iterating gives the column names. Each column
stores numbers in a NumPy buffer that doubles when full, so appending costs O(1) amortised and no
Python object is kept per step. Reading a column returns a read-only view of the rows so far.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any

import numpy as np

from steploop.history_columns import STEPS_MAX, STEPS_MIN, Column, Steps, new_column, step_number
from steploop.records import check_value_names


class History:
    """Per-step numbers of a run, read as ``history["loss"]`` (a NumPy array, one entry per step).

    Reads like a pandas ``DataFrame`` of numbers: ``len(history)`` counts rows, ``list(history)``
    and ``history.keys()`` name the columns, ``history[name]`` is a column.

    >>> history = History()
    >>> history["loss"].tolist(), len(history)
    ([], 0)
    >>> history.append(1, 16.0)
    >>> history.append(2, 10.24, {"lr": 0.1})
    >>> history["step"].tolist(), history["loss"].tolist(), history["lr"].tolist(), len(history)
    ([1, 2], [16.0, 10.24], [nan, 0.1], 2)
    """

    def __init__(self) -> None:
        self._rows = 0
        self._columns: dict[str, Column | Steps] = {"step": Steps(), "loss": Column((), 16)}
        self._read_only = False

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any]) -> History:
        """A history holding ``columns`` (as ``{name: history[name]}`` gave them), e.g. loaded from
        a checkpoint.

        >>> History.from_columns({"step": [1, 2], "loss": [4.0, 1.0]})["loss"].tolist()
        [4.0, 1.0]
        """
        history = cls()
        arrays = {name: np.asarray(value, dtype=np.float64) for name, value in columns.items()}
        if "step" not in arrays or "loss" not in arrays:
            raise ValueError(f"History.from_columns needs 'step' and 'loss', got {sorted(arrays)}")
        steps = arrays["step"]
        if steps.ndim == 1 and not np.array_equal(steps, np.round(steps)):
            raise ValueError("History.from_columns: column 'step' must hold whole numbers")
        rows = len(steps)
        for name, array in arrays.items():
            if array.ndim == 0 or len(array) != rows:
                raise ValueError(
                    f"History.from_columns: column {name!r} has shape {array.shape}, "
                    f"expected {rows} rows"
                )
            column = history._columns[name] = new_column(name, array.shape[1:], rows)
            column.set_rows(0, array)
        history._rows = rows
        return history

    def snapshot(self) -> History:
        """A read-only view of the rows and columns so far, in O(columns).

        Rows are only ever appended, so the view shares the buffers and stays exact while the
        history grows; steps and columns added later do not show in it.

        >>> history = History()
        >>> history.append(1, 4.0)
        >>> frozen = history.snapshot()
        >>> history.append(2, 1.0)
        >>> frozen["loss"].tolist(), history["loss"].tolist()
        ([4.0], [4.0, 1.0])
        """
        view = History.__new__(History)  # no fresh buffers: the view takes this one's
        view._rows = self._rows
        view._columns = dict(self._columns)
        view._read_only = True
        return view

    def __len__(self) -> int:
        """The number of rows (steps recorded), as ``len`` of a pandas ``DataFrame``."""
        return self._rows

    def __iter__(self) -> Iterator[str]:
        """The column names."""
        return iter(self._columns)

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def keys(self) -> KeysView[str]:
        """The column names."""
        return self._columns.keys()

    def values(self) -> ValuesView[np.ndarray]:
        """The columns."""
        return {name: self[name] for name in self._columns}.values()

    def items(self) -> ItemsView[str, np.ndarray]:
        """``(name, column)`` pairs."""
        return {name: self[name] for name in self._columns}.items()

    def get(self, name: str, default: Any = None) -> Any:
        """Column ``name``, or ``default`` when there is none."""
        return self[name] if name in self._columns else default

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names, in the order they appeared."""
        return tuple(self._columns)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            column = self._columns[name]
        except KeyError:
            raise KeyError(
                f"history has no column {name!r}; it has {sorted(self._columns)}"
            ) from None
        view = column.read(self._rows)
        view.flags.writeable = False
        return view

    @property
    def rows(self) -> int:
        """The number of steps recorded."""
        return self._rows

    def append(
        self,
        step: int,
        loss: float,
        values: Mapping[str, Any] | None = None,
        epoch: int | None = None,
    ) -> None:
        """Add the row of a new step with its loss, any further named values and its epoch.

        Every value is checked before the row is added, so a bad value leaves the history as it
        was.
        """
        if self._read_only:
            self._check_writable()
        if type(step) is not int or not STEPS_MIN <= step <= STEPS_MAX:
            step = step_number("History.append", "step", step)
        if not values and type(loss) is float:
            row = self._rows  # the common case, without the checks a float cannot fail
            self._rows += 1
            self._columns["step"].set(row, step)
            self._columns["loss"].set(row, loss)
            if epoch is not None:
                self._epochs(row).set(row, epoch)
            return
        check_value_names("History.append", values or {})
        entries = {"loss": loss, **(values or {})}
        arrays = {name: self._checked(name, value) for name, value in entries.items()}
        self._rows += 1
        self._columns["step"].set(self._rows - 1, step)  # an int: exact, not through float64
        for name, array in arrays.items():
            self._store(name, array)
        if epoch is not None:
            self._epochs(self._rows - 1).set(self._rows - 1, epoch)

    def _epochs(self, rows: int) -> Column | Steps:
        """The ``epoch`` column, made when the first step with an epoch is added after ``rows``
        rows without one (they read 0)."""
        column = self._columns.get("epoch")
        if column is None:
            column = self._columns["epoch"] = new_column("epoch", (), rows + 1)
            column.set_rows(0, np.zeros(rows, dtype=np.int64))
        return column

    def extend(
        self,
        first_step: int,
        losses: Any,
        values: Mapping[str, Any] | None = None,
        epoch: int | None = None,
    ) -> None:
        """Add the rows of ``len(losses)`` consecutive steps from ``first_step`` at once, all of
        ``epoch`` if given; each of ``values`` has one row per step. Checked first, so a bad value
        adds no row.

        >>> history = History()
        >>> history.extend(1, [16.0, 10.24], {"lr": [0.1, 0.1]})
        >>> history["step"].tolist(), history["lr"].tolist()
        ([1, 2], [0.1, 0.1])
        """
        self._check_writable()
        loss = np.asarray(losses)
        if loss.dtype.kind not in "fiu":
            raise TypeError(f"History.extend: losses must be numbers, got dtype {loss.dtype}")
        if loss.ndim != 1:
            raise ValueError(
                f"History.extend: losses must be one number per step, got {loss.shape}"
            )
        count = len(loss)
        if count == 0:
            return
        first_step = step_number("History.extend", "first_step", first_step, count)
        columns = self._columns
        if epoch is not None and not values:
            self._epochs(self._rows).set_rows(self._rows, np.full(count, epoch, dtype=np.int64))
        if not values:
            start = self._rows  # the common case: steps and losses only, columns in place
            self._rows += count
            steps = columns["step"]
            if not (isinstance(steps, Steps) and steps.consecutive(start, int(first_step))):
                steps.set_rows(start, np.arange(first_step, first_step + count))
            columns["loss"].set_rows(start, loss)
            return
        check_value_names("History.extend", values)
        entries = {
            "step": np.arange(first_step, first_step + count, dtype=np.int64),
            "loss": loss,
        }
        arrays = {}
        for name, value in {**entries, **(values or {})}.items():
            array = np.asarray(value, dtype=np.float64) if name not in entries else entries[name]
            if array.ndim == 0 or len(array) != count:
                raise ValueError(
                    f"History.extend: column {name!r} needs {count} rows, got shape {array.shape}"
                )
            if name not in entries:
                self._checked(name, array[0])
            arrays[name] = array
        start = self._rows
        if epoch is not None:
            self._epochs(start).set_rows(start, np.full(count, epoch, dtype=np.int64))
        self._rows += count
        for name, array in arrays.items():
            column = self._columns.get(name)
            if column is None:
                column = self._columns[name] = new_column(name, array.shape[1:], start + count)
            column.set_rows(start, array)

    def log(self, name: str, value: Any) -> None:
        """Record ``value`` under column ``name`` for the latest step (for callbacks).

        Values are numbers or arrays of one fixed shape per column.
        """
        self._check_writable()
        if self._rows == 0:
            raise ValueError(f"History.log({name!r}, ...) needs a step: no step has run yet")
        if name in ("step", "loss") or (name == "epoch" and name in self._columns):
            raise ValueError(f"History.log: column {name!r} is kept by the Trainer itself")
        self._store(name, self._checked(name, value))

    def _check_writable(self) -> None:
        if self._read_only:
            raise TypeError("this History is a snapshot (RunResult.history); it is read-only")

    def _checked(self, name: str, value: Any) -> np.ndarray:
        """``value`` as a float array fitting column ``name``, or a clear error."""
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"history column {name!r} takes numbers or numeric arrays, "
                f"got {type(value).__name__}"
            ) from None
        column = self._columns.get(name)
        if column is not None and array.shape != column.shape:
            raise ValueError(
                f"history column {name!r} holds values of shape {column.shape}, "
                f"got shape {array.shape} at row {self._rows}"
            )
        return array

    def _store(self, name: str, array: np.ndarray) -> None:
        column = self._columns.get(name)
        if column is None:
            column = self._columns[name] = new_column(name, array.shape, self._rows)
        column.set(self._rows - 1, array)

    def __eq__(self, other: object) -> bool:
        """Equal when the columns and their numbers are the same (nan equals nan)."""
        if not isinstance(other, History):
            return NotImplemented
        return set(self) == set(other) and all(
            np.array_equal(self[name], other[name], equal_nan=True) for name in self
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History(rows={self._rows}, columns={list(self._columns)})"
