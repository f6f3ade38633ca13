"""ProgressBar: what each drawing of the bar shows, its width, the missing-tqdm and file
messages, the repr, and runs that fail before the bar began."""

import io
import itertools
import logging
import os
import re
import sys

import pytest

import steploop as sl
from tests.helpers import FailsToBegin, quadratic, run_failing_around_one

tqdm = pytest.importorskip("tqdm")
tqdm_std = pytest.importorskip("tqdm.std")


@pytest.fixture
def ticking(monkeypatch):
    """tqdm's clock advances one second at each reading, so the bar is drawn at every update
    (its minimum interval is 0.1 s); its monitor thread is off."""
    clock = itertools.count(0.0, 1.0)
    monkeypatch.setattr(tqdm_std, "time", lambda: next(clock))
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def frames(text):
    """The bar as drawn each time (tqdm starts every drawing with a carriage return)."""
    return text.split("\r")[1:]


def postfix(frame):
    """The loss and status shown in a drawing, or None."""
    found = re.search(r", (loss=[^\]]*)\]", frame)
    return found and found.group(1)


def test_each_drawing_shows_the_loss_of_the_last_every_th_step(ticking):
    """every=2 on (x-4)**2 at rate 0.25 (losses 16, 4, 1, 0.25): the bar is drawn when made,
    after each step and once more when closed; the loss shown changes at steps 2 and 4 only,
    and the closing drawing adds the status."""
    out = io.StringIO()
    trainer = sl.Trainer(quadratic(0.25), [sl.ProgressBar(total=4, every=2, file=out)])
    trainer.run(max_steps=4)
    drawn = frames(out.getvalue())
    assert [postfix(frame) for frame in drawn] == [
        None,
        None,
        "loss=4",
        "loss=4",
        "loss=0.25",
        "loss=0.25, status=budget",
    ]
    assert drawn[-1].endswith("]\n")
    assert drawn[0].startswith("  0%|") and "| 0/4 [00:00<?, ?step/s]" in drawn[0]  # unit: step


def test_a_later_run_s_bar_starts_at_the_trainer_s_step():
    """The bar of the second run begins at step 2 of 4, where the first run left off."""
    out = io.StringIO()
    trainer = sl.Trainer(quadratic(0.25), [sl.ProgressBar(total=4, file=out)])
    trainer.run(max_steps=2)
    first_run_end = len(out.getvalue())
    trainer.run(max_steps=2)
    second = frames(out.getvalue()[first_run_end:])
    assert "| 2/4 [" in second[0] and " 50%|" in second[0]
    assert "| 4/4 [" in second[-1]


def test_the_bar_follows_the_terminal_width(ticking, monkeypatch):
    """The width is read at every drawing: 40 columns (a 41-column terminal) until a callback
    after the bar widens the terminal to 61 at step 2, then 60."""

    class Terminal(io.StringIO):
        def fileno(self):
            return 1

    columns = [41]
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=None: os.terminal_size((columns[0], 9)))

    class Widens(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.step == 2:
                columns[0] = 61

    out = Terminal()
    sl.Trainer(quadratic(0.25), [sl.ProgressBar(total=4, file=out), Widens()]).run(max_steps=4)
    widths = [len(frame.rstrip("\n")) for frame in frames(out.getvalue())]
    assert widths == [40, 40, 40, 60, 60, 60]


def test_runs_that_fail_before_the_bar_began_log_nothing_from_it(caplog):
    """on_run_end of runs whose on_run_begin failed earlier in the list (before the bar's first
    run and after a finished one) raises nothing; only the run that ran drew a bar."""

    out = io.StringIO()
    trainer = sl.Trainer(quadratic(0.25), [FailsToBegin({1, 3}), sl.ProgressBar(total=1, file=out)])
    with caplog.at_level(logging.ERROR, logger="steploop"):
        run_failing_around_one(trainer)
    assert caplog.records == []
    assert out.getvalue().count("\n") == 1 and out.getvalue().endswith("status=budget]\n")


def test_without_tqdm_the_message_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    with pytest.raises(ImportError) as raised:
        sl.ProgressBar()
    assert str(raised.value) == "ProgressBar needs tqdm: pip install 'steploop[progress]' (or tqdm)"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_file_that_is_not_a_text_file_is_named_in_the_message():
    with pytest.raises(TypeError) as raised:
        sl.ProgressBar(file="out.txt")
    assert str(raised.value) == (
        "ProgressBar file must be an open text file (with write) or None, got 'out.txt' (str)"
    )


def test_repr_shows_the_default_every():
    assert repr(sl.ProgressBar(file=io.StringIO())) == "ProgressBar(total=None, every=1)"
    assert repr(sl.ProgressBar(total=7, every=3)) == "ProgressBar(total=7, every=3)"
