"""Loggers: format_record's defaults and extras, target gradients, the CSV file's encoding under
an ASCII locale, columns a run does not have, runs that fail before the logger began, and
CSVLogger.set_state on the file."""

import codecs
import csv
import io
import locale
import logging
import sys
from fractions import Fraction

import numpy as np
import pytest

import steploop as sl
from steploop.callbacks.loggers import format_record
from tests.helpers import FailsToBegin, quadratic, run_failing_around_one
from tests.scripted import Scripted


class Changing(sl.StepStrategy):
    """Step i reports loss i + 1 and the values ``values[i]``."""

    def __init__(self, values):
        self.values = values
        self.calls = 0

    def step(self):
        self.calls += 1
        return sl.StepOutput(loss=float(self.calls), values=self.values[self.calls - 1])


@pytest.fixture
def ascii_locale():
    """The C locale for the test: a file opened without an encoding could only hold ASCII."""
    if sys.flags.utf8_mode:
        pytest.skip("Python's UTF-8 mode ignores the locale's encoding")
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        if codecs.lookup(locale.getpreferredencoding(False)).name != "ascii":
            pytest.skip("the C locale's encoding is not ASCII here")
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)


# -- format_record and PrintLogger ------------------------------------------------------------


def test_format_record_shows_variables_and_gradients_by_default():
    """Called with the record only, the line has the variables and the gradients."""
    lines = []

    class Formats(sl.Callback):
        def on_step_end(self, trainer, record):
            lines.append(format_record(record))

    sl.Trainer(quadratic(0.25), [Formats()]).run(max_steps=2)
    # x: 0 -> 2 -> 3; loss (x-4)**2 = 16, 4; gradient 2(x-4) = -8, -4 (before the update)
    assert lines == ["step 1: loss=16 x=2 grad[x]=-8", "step 2: loss=4 x=3 grad[x]=-4"]


def test_format_record_extra_numbers_are_converted_to_float_and_none_is_left_out():
    """An extra of None is not logged (nan as a float); a Fraction is printed as its float."""
    record = sl.StepRecord(step=3, loss=2.5)
    extra = {"gone": None, "quarter": Fraction(1, 4), "missing": float("nan")}
    assert format_record(record, extra=extra) == "step 3: loss=2.5 quarter=0.25"


def test_print_logger_prints_the_gradients_of_every_target():
    """Each extra target's gradients follow the loss's, one part per target and variable."""

    class Targets(sl.StepStrategy):
        reports_gradients = True

        def step(self):
            return sl.StepOutput(
                loss=2.0,
                gradients={"w": np.array(1.0)},
                target_gradients={"z": {"w": np.array(3.0)}, "y": {"w": np.array(-0.5)}},
            )

    out = io.StringIO()
    sl.Trainer(Targets(), [sl.PrintLogger(file=out)]).run(max_steps=1)
    assert out.getvalue().splitlines() == [
        "step 1: loss=2 grad[w]=1 grad_z[w]=3 grad_y[w]=-0.5",
        "budget: run(max_steps=1) did its 1 steps",
    ]


# -- CSVLogger --------------------------------------------------------------------------------


def test_a_restored_column_the_run_does_not_have_is_nan_even_named_step(tmp_path):
    """Columns restored by set_state that this trainer never reports are written as nan."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"step,loss,STEP\r\n")
    logger = sl.CSVLogger(path)
    logger.set_state({"started": True, "columns": ["step", "loss", "STEP"], "last_step": 0})
    sl.Trainer(Scripted([1.5, 2.5]), [logger]).run(max_steps=2)
    assert path.read_bytes() == b"step,loss,STEP\r\n1,1.5,nan\r\n2,2.5,nan\r\n"


def test_the_file_is_utf8_whatever_the_locale(tmp_path, ascii_locale):
    """A non-ASCII value name is written as UTF-8 under an ASCII locale."""
    path = tmp_path / "log.csv"
    values = {"λ": [0.5, 0.25]}
    sl.Trainer(Scripted([1.0, 2.0], values=values), [sl.CSVLogger(path)]).run(max_steps=2)
    assert path.read_bytes() == "step,loss,λ\r\n1,1.0,0.5\r\n2,2.0,0.25\r\n".encode()


def test_a_new_column_rewrites_the_utf8_file_whatever_the_locale(tmp_path, ascii_locale):
    """The file is read back and rewritten as UTF-8 when a column is added, and set_state
    reads and rewrites it as UTF-8 too."""
    path = tmp_path / "log.csv"
    strategy = Changing([{"λ": 0.5}, {"λ": 0.25, "μ": 4.0}])
    logger = sl.CSVLogger(path)
    sl.Trainer(strategy, [logger]).run(max_steps=2)
    assert path.read_bytes() == "step,loss,λ,μ\r\n1,1.0,0.5,nan\r\n2,2.0,0.25,4.0\r\n".encode()
    # back to step 1, with the columns as they were then
    logger.set_state({"started": True, "columns": ["step", "loss", "λ"], "last_step": 1})
    assert path.read_bytes() == "step,loss,λ\r\n1,1.0,0.5\r\n".encode()


def test_runs_that_fail_before_the_logger_began_leave_it_and_its_file_alone(tmp_path, caplog):
    """on_run_end of a run whose on_run_begin failed earlier in the list raises nothing, before
    the logger's first run and after a finished one; the finished run's file is kept."""
    path = tmp_path / "log.csv"
    trainer = sl.Trainer(Scripted([1.5, 2.5]), [FailsToBegin({1, 3}), sl.CSVLogger(path)])
    with caplog.at_level(logging.ERROR, logger="steploop"):
        run_failing_around_one(trainer)
    assert caplog.records == []
    assert path.read_bytes() == b"step,loss\r\n1,1.5\r\n"


def test_set_state_of_a_logger_that_never_started_leaves_the_file_alone(tmp_path):
    """started False: the file at the path is not the logger's and is kept as it is; the
    state (no columns yet) reads back."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"someone else's,file\r\n7,8\r\n")
    logger = sl.CSVLogger(path)
    state = {"started": False, "columns": None, "last_step": 0}
    logger.set_state(state)
    assert logger.get_state() == state
    assert path.read_bytes() == b"someone else's,file\r\n7,8\r\n"


def test_set_state_of_a_started_logger_whose_file_is_gone_does_not_create_it(tmp_path):
    """started True but no file at the path: nothing to cut, nothing created."""
    path = tmp_path / "log.csv"
    logger = sl.CSVLogger(path)
    logger.set_state({"started": True, "columns": ["step", "loss"], "last_step": 2})
    assert not path.exists()
    assert logger.get_state() == {"started": True, "columns": ("step", "loss"), "last_step": 2}


def test_set_state_before_the_first_row_empties_the_file(tmp_path):
    """Saved after the logger began but before its first row: the rows written later by the
    run that died are dropped, header too, and the resumed run writes the header again."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"step,loss\r\n2,1.0\r\n")
    logger = sl.CSVLogger(path, every=2)
    logger.set_state({"started": True, "columns": None, "last_step": 0})
    assert path.read_bytes() == b""
    sl.Trainer(Scripted([3.0, 2.0]), [logger]).run(max_steps=2)
    assert list(csv.reader(path.open(newline=""))) == [["step", "loss"], ["2", "2.0"]]
