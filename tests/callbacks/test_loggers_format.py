"""How the loggers write numbers and arrays, their arguments' messages and their state."""

import csv
import io

import numpy as np
import pytest

import steploop as sl
from steploop.callbacks.loggers import format_value
from tests.scripted import Scripted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.9999993, "3.999999"),
        (np.float32(0.5), "0.5"),
        (12345678.0, "1.234568e+07"),
        (np.array([1.0, 2.5]), "[1 2.5]"),
        (np.arange(4.0).reshape(2, 2), "[0 1 2 3]"),
        (np.arange(5.0), "<(5,) norm 5.47723>"),
        (np.ones((3, 3)), "<(3, 3) norm 3>"),
        # float32 squares would overflow: the norm is summed in float64
        (np.full(5, 1e20, np.float32), "<(5,) norm 2.23607e+20>"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_print_logger_lines_with_values_gradients_and_no_variables():
    out = io.StringIO()
    strategy = Scripted([4.0, 2.0], gradients=[[1.0, 2.0], [0.5, 0.5]], values={"acc": [0.25, 1]})
    logger = sl.PrintLogger(file=out, variables=True)
    sl.Trainer(strategy, [logger]).run(max_steps=2)
    assert out.getvalue().splitlines() == [
        "step 1: loss=4 acc=0.25 grad[w]=[1 2]",
        "step 2: loss=2 acc=1 grad[w]=[0.5 0.5]",
        "budget: run(max_steps=2) did its 2 steps",
    ]
    assert logger.get_state() == {"last_printed": 2}
    assert logger.reads_gradients is True and logger.needs_live_state is True
    quiet = sl.PrintLogger(variables=False, gradients=False)
    assert quiet.reads_gradients is False and quiet.needs_live_state is False


def test_print_logger_prints_the_last_step_once_and_not_after_an_error():
    out = io.StringIO()
    logger = sl.PrintLogger(every=2, file=out, gradients=False)
    trainer = sl.Trainer(Scripted([5.0, 4.0, 3.0, 2.0]), [logger])
    trainer.run(max_steps=3)
    assert out.getvalue().splitlines() == [
        "step 2: loss=4",
        "step 3: loss=3",
        "budget: run(max_steps=3) did its 3 steps",
    ]
    assert logger.get_state() == {"last_printed": 3}
    logger.set_state({"last_printed": "3"})
    assert logger.get_state() == {"last_printed": 3}

    class Fails(sl.Callback):
        def on_step_end(self, trainer, record):
            raise RuntimeError("boom")

    out = io.StringIO()
    failing = sl.Trainer(Scripted([1.0]), [sl.PrintLogger(every=5, file=out), Fails()])
    with pytest.raises(RuntimeError):
        failing.run(max_steps=1)
    assert failing.result.status == "error"
    assert out.getvalue().splitlines() == [f"error: {failing.result.stop_reason}"]


def test_logger_arguments_are_named():
    with pytest.raises(TypeError) as raised:
        sl.PrintLogger(file="out.txt")
    assert str(raised.value) == (
        "PrintLogger file must be an open text file (with write) or None, got 'out.txt' (str)"
    )
    with pytest.raises(TypeError) as raised:
        sl.PrintLogger(variables=1)
    assert str(raised.value) == "PrintLogger variables must be a bool, got 1 (int)"
    with pytest.raises(TypeError) as raised:
        sl.PrintLogger(gradients="no")
    assert str(raised.value) == "PrintLogger gradients must be a bool, got 'no' (str)"
    with pytest.raises(TypeError) as raised:
        sl.CSVLogger(3)
    assert str(raised.value) == "CSVLogger path must be a str or os.PathLike, got 3 (int)"
    with pytest.raises(ValueError) as raised:
        sl.CSVLogger("")
    assert str(raised.value) == "CSVLogger path must not be empty"


def test_csv_logger_refuses_a_missing_folder_by_name(tmp_path):
    folder = tmp_path / "nope"
    with pytest.raises(ValueError) as raised:
        sl.CSVLogger(folder / "log.csv")
    assert str(raised.value) == (
        f"CSVLogger path {str(folder / 'log.csv')!r}: folder {str(folder)!r} does not exist"
    )


def test_reprs():
    assert repr(sl.PrintLogger()) == "PrintLogger(every=1)"
    assert repr(sl.CSVLogger("run.csv", every=5)) == "CSVLogger('run.csv', every=5)"


def test_csv_cells_are_reprs_words_for_non_finite_and_json_for_arrays(tmp_path):
    path = tmp_path / "log.csv"
    values = {"a": [0.1, np.inf], "b": [np.array([1.0, 2.5]), np.array([-np.inf, 0.0])]}
    logger = sl.CSVLogger(path)
    sl.Trainer(Scripted([1.5, np.nan], values=values), [logger]).run(max_steps=2)
    assert list(csv.reader(path.open())) == [
        ["step", "loss", "a", "b"],
        ["1", "1.5", "0.1", "[1.0, 2.5]"],
        ["2", "nan", "inf", "[-Infinity, 0.0]"],
    ]
    assert logger.get_state() == {
        "started": True,
        "columns": ("step", "loss", "a", "b"),
        "last_step": 2,
    }
    assert logger.may_stop is False and logger.reads_gradients is False


def test_a_column_other_callbacks_did_not_log_at_a_step_is_left_out_of_its_line():
    out = io.StringIO()
    evaluate = sl.Evaluate(every=2, fn=lambda: {"loss": 0.5})
    logger = sl.PrintLogger(file=out, gradients=False)
    sl.Trainer(Scripted([3.0, 2.0, 1.0]), [evaluate, logger]).run(max_steps=3)
    assert out.getvalue().splitlines() == [
        "step 1: loss=3",
        "step 2: loss=2 val_loss=0.5",
        "step 3: loss=1",
        "budget: run(max_steps=3) did its 3 steps",
    ]


def test_the_first_run_truncates_an_existing_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("old,rows\n1,2\n")
    logger = sl.CSVLogger(path)
    sl.Trainer(Scripted([1.0]), [logger]).run(max_steps=1)
    assert list(csv.reader(path.open())) == [["step", "loss"], ["1", "1.0"]]
