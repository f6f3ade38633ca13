"""``ProgressBar``: a tqdm progress bar over the steps, with the loss in its postfix.

tqdm is an optional dependency (``pip install steploop[progress]``); it is imported when a
``ProgressBar`` is built, never by ``import steploop``.
"""

from __future__ import annotations

import importlib
import sys
from typing import IO, TYPE_CHECKING, Any

from steploop import _validate
from steploop.callbacks.base import Callback
from steploop.schedule import Schedule, as_schedule, every_repr

if TYPE_CHECKING:
    from steploop.records import RunResult, StepRecord
    from steploop.trainer import Trainer


class ProgressBar(Callback):
    """Show a tqdm bar that advances once per step and shows the loss every ``every`` steps.

    ``total`` sets the bar's length when the number of steps is known in advance.

    >>> import io
    >>> ProgressBar(total=100, file=io.StringIO())
    ProgressBar(total=100, every=1)
    """

    may_stop = False
    reads_gradients = False

    def __init__(
        self, total: int | None = None, every: int | Schedule = 1, file: IO[str] | None = None
    ):
        try:
            self._tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            raise ImportError(
                "ProgressBar needs tqdm: pip install 'steploop[progress]' (or tqdm)"
            ) from None
        self.total = None if total is None else _validate.count("ProgressBar total", total)
        self.schedule = as_schedule(every)
        self.file = _validate.text_file("ProgressBar file", file)
        self._bar: Any = None

    def on_run_begin(self, trainer: Trainer) -> None:
        self._bar = self._tqdm(
            total=self.total,
            initial=trainer.step,
            unit="step",
            file=self.file if self.file is not None else sys.stderr,
            dynamic_ncols=True,
        )

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if self.schedule.fires(record.step):
            self._bar.set_postfix(loss=f"{record.loss:.4g}", refresh=False)
        self._bar.update(1)

    def on_run_end(self, trainer: Trainer, result: RunResult) -> None:
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{result.loss:.4g}", status=result.status, refresh=False)
            self._bar.close()
            self._bar = None

    def __repr__(self) -> str:
        return f"ProgressBar(total={self.total}, every={every_repr(self.schedule)})"
