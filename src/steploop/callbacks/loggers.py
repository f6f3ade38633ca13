"""Loggers: callbacks that report steps to people (``PrintLogger``) and files (``CSVLogger``).

The history is always kept by the Trainer; loggers only report. ``PrintLogger`` prints lines like
the article's output (step, loss, variable values, gradients where the strategy reports them)
and, at the end of a run, the last step if it was not printed and why the run stopped.
``CSVLogger`` writes one row per step and flushes it, so the file is complete up to the last
finished step even if the process dies.

Both also report what the callbacks listed before them logged for the step (``logged``): the
history columns beyond ``step``, ``loss``, ``epoch`` and the step's values, such as ``Evaluate``'s
``val_loss`` or the ``lr`` of ``ReduceLROnPlateau``. A column that first appears at a later step
(``val_loss`` after the first evaluation) becomes a new CSV column: the file is rewritten once
with it, ``nan`` in the rows before, as the history has.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from typing import IO, TYPE_CHECKING, Any, ClassVar

import attrs
import numpy as np

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.schedule import EVERY_STEP, Schedule, as_schedule, every_repr

if TYPE_CHECKING:
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer


def format_value(value: Any) -> str:
    """Format a number or small array compactly; large arrays as shape and norm.

    >>> format_value(3.9999993), format_value(np.array([1.0, 2.0])), format_value(np.ones((3, 3)))
    ('3.999999', '[1 2]', '<(3, 3) norm 3>')
    """
    array = np.asarray(value)
    if array.ndim == 0:
        return f"{float(array):.7g}"
    if array.size <= 4:
        return "[" + " ".join(f"{float(v):.7g}" for v in array.ravel()) + "]"
    norm = float(np.sqrt(np.sum(np.square(array, dtype=np.float64))))
    return f"<{array.shape} norm {norm:.6g}>"


#: History columns a logger reports from the record itself.
_OWN = ("step", "loss", "epoch")


def logged(trainer: Trainer, record: StepRecord) -> dict[str, Any]:
    """The history columns other callbacks logged, as they are at ``record``'s step (the last
    row): every column but ``step``, ``loss``, ``epoch`` and the step's values, in the order
    they appeared (``nan`` where a column was not logged at this step)."""
    history = trainer.history
    return {
        name: history[name][-1]
        for name in history.columns
        if name not in _OWN and name not in record.values
    }


def format_record(
    record: StepRecord,
    *,
    variables: bool = True,
    gradients: bool = True,
    extra: dict[str, Any] | None = None,
) -> str:
    """One line for a step: ``step 3: loss=10.24 x=1.952 grad[x]=-5.12``; ``extra`` (named
    numbers, ``nan`` ones left out) follows the step's values."""
    parts = [f"step {record.step}: loss={record.loss:.6g}"]
    parts += [f"{name}={format_value(value)}" for name, value in record.values.items()]
    for name, value in (extra or {}).items():
        if not np.all(np.isnan(np.asarray(value, dtype=np.float64))):
            parts.append(f"{name}={format_value(value)}")
    if variables:
        parts += [f"{name}={format_value(value)}" for name, value in record.variables.items()]
    if gradients:
        parts += [f"grad[{name}]={format_value(g)}" for name, g in record.gradients.items()]
        for target, grads in record.target_gradients.items():
            parts += [f"grad_{target}[{name}]={format_value(g)}" for name, g in grads.items()]
    return " ".join(parts)


@attrs.define(repr=False)
class PrintLogger(Callback):
    """Print every ``every``-th step, then the last step and the stop reason at the end of a run.

    >>> PrintLogger(every=10)
    PrintLogger(every=10)
    """

    #: It reports what the callbacks before it logged: those that log columns come first.
    reports_logged: ClassVar[bool] = True

    schedule: Schedule = attrs.field(
        default=EVERY_STEP, alias="every", converter=as_schedule
    )
    variables: bool = attrs.field(
        default=True, converter=lambda value: _validate.flag("PrintLogger variables", value)
    )
    gradients: bool = attrs.field(
        default=True, converter=lambda value: _validate.flag("PrintLogger gradients", value)
    )
    file: IO[str] | None = attrs.field(
        default=None, converter=lambda value: _validate.text_file("PrintLogger file", value)
    )
    may_stop = False
    _last_printed: int = attrs.field(default=0, init=False)

    @property
    def reads_gradients(self) -> bool:  # type: ignore[override]
        return self.gradients

    @property
    def needs_live_state(self) -> bool:  # type: ignore[override]
        """Printing variables needs them live at every printed step."""
        return self.variables

    def _print(self, text: str) -> None:
        print(text, file=self.file if self.file is not None else sys.stdout)

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if self.schedule.fires(record.step):
            self._print(self._line(trainer, record))
            self._last_printed = record.step

    def _line(self, trainer: Trainer, record: StepRecord) -> str:
        extra = logged(trainer, record)
        return format_record(
            record, variables=self.variables, gradients=self.gradients, extra=extra
        )

    def get_state(self) -> dict[str, Any]:
        return {"last_printed": self._last_printed}

    def set_state(self, state: dict[str, Any]) -> None:
        self._last_printed = int(state["last_printed"])

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        last = trainer.last_record
        if last is not None and last.step != self._last_printed and result.status != "error":
            self._print(self._line(trainer, last))
            self._last_printed = last.step
        self._print(f"{result.status}: {result.stop_reason}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(every={every_repr(self.schedule)})"


@attrs.define(repr=False)
class CSVLogger(Callback):
    """Append a row per ``every``-th step (``step``, ``loss``, the step's values and what earlier
    callbacks logged) to ``path``.

    The file is truncated when the trainer's first run begins and appended to by later runs.
    Values that are arrays are written as JSON lists. A column seen for the first time at a
    later step is added then (the file is rewritten once, ``nan`` in the earlier rows); a column
    a step does not have is ``nan`` in its row, as in the history.

    >>> CSVLogger("run.csv")
    CSVLogger('run.csv', every=1)
    """

    #: It reports what the callbacks before it logged: those that log columns come first.
    reports_logged: ClassVar[bool] = True

    path: str = attrs.field(converter=lambda value: _validate.path("CSVLogger path", value))
    schedule: Schedule = attrs.field(
        default=EVERY_STEP, alias="every", converter=as_schedule
    )
    _file: IO[str] | None = attrs.field(default=None, init=False)
    _writer: Any = attrs.field(default=None, init=False)
    _columns: tuple[str, ...] | None = attrs.field(default=None, init=False)
    _started: bool = attrs.field(default=False, init=False)
    _last_step: int = attrs.field(default=0, init=False)
    may_stop = False
    reads_gradients = False

    def __attrs_post_init__(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ValueError(f"CSVLogger path {self.path!r}: folder {folder!r} does not exist")

    def on_run_begin(self, trainer: Trainer) -> None:
        mode = "a" if self._started else "w"
        self._file = open(self.path, mode, newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self._started = True

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if not self.schedule.fires(record.step):
            return
        assert self._file is not None
        extra = logged(trainer, record)
        cells = {"step": record.step, "loss": record.loss, **record.values, **extra}
        known = self._columns or ()
        order = ("step", "loss", *sorted(record.values), *extra)
        new = tuple(name for name in order if name not in known)
        if self._columns is None:
            self._columns = new
            self._writer.writerow(new)
        elif new:  # a value or a callback's column seen for the first time (val_loss, lr)
            self._widen((*known, *new))
        assert self._columns is not None
        row = [record.step] + [
            _cell(cells[name]) if name in cells else "nan" for name in self._columns[1:]
        ]
        self._writer.writerow(row)
        self._file.flush()
        self._last_step = record.step

    def _widen(self, columns: tuple[str, ...]) -> None:
        """Rewrite the file with the new ``columns``, ``nan`` in the rows written before."""
        assert self._file is not None and self._columns is not None
        self._file.close()
        with open(self.path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
        pad = ["nan"] * (len(columns) - len(self._columns))
        rows = [list(columns)] + [row + pad for row in rows[1:]]
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(rows)
        os.replace(temporary, self.path)
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self._columns = columns

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def get_state(self) -> dict[str, Any]:
        return {"started": self._started, "columns": self._columns, "last_step": self._last_step}

    def set_state(self, state: dict[str, Any]) -> None:
        """Resume the file: rows of steps after the checkpoint (written by the run that died) are
        dropped, since the resumed run writes them again."""
        self._started = bool(state["started"])
        columns = state["columns"]
        self._columns = None if columns is None else tuple(columns)
        self._last_step = int(state["last_step"])
        if not self._started or not os.path.exists(self.path):
            return
        with open(self.path, newline="", encoding="utf-8") as file:
            rows = list(csv.reader(file))
        kept = [row for row in rows[1:] if row and int(row[0]) <= self._last_step]
        if self._columns is None:  # no row was written before the checkpoint
            kept = []
        else:  # the columns as they were then (later ones are added again when seen)
            kept = [list(self._columns)] + [row[: len(self._columns)] for row in kept]
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(kept)
        os.replace(temporary, self.path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, every={every_repr(self.schedule)})"


def _cell(value: Any) -> str:
    array = np.asarray(value)
    if array.ndim == 0:
        number = float(array)
        return repr(number) if math.isfinite(number) else str(number)
    return json.dumps(array.tolist())
