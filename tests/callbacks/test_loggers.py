"""PrintLogger prints the article's lines; CSVLogger writes complete, flushed rows."""

import csv
import io

import pytest

import steploop as sl
from tests.helpers import quadratic
from tests.scripted import Scripted


def test_print_logger_prints_every_nth_step_then_the_last_and_the_reason():
    out = io.StringIO()
    trainer = sl.Trainer(
        quadratic(0.25),
        callbacks=[sl.LossBelow(0.01) | sl.MaxSteps(50), sl.PrintLogger(2, file=out)],
    )
    trainer.run()
    assert out.getvalue().splitlines() == [
        "step 2: loss=4 x=3 grad[x]=-4",
        "step 4: loss=0.25 x=3.75 grad[x]=-1",
        "step 6: loss=0.015625 x=3.9375 grad[x]=-0.25",
        "step 7: loss=0.00390625 x=3.96875 grad[x]=-0.125",
        "converged: LossBelow(0.01): loss 0.00390625 < 0.01 at step 7",
    ]


def test_print_logger_can_leave_out_variables_and_gradients():
    out = io.StringIO()
    sl.Trainer(
        quadratic(0.25), callbacks=[sl.PrintLogger(file=out, variables=False, gradients=False)]
    ).run(max_steps=1)
    assert out.getvalue().splitlines() == [
        "step 1: loss=16",
        "budget: run(max_steps=1) did its 1 steps",
    ]


def test_csv_logger_writes_every_row_and_appends_on_later_runs(tmp_path):
    path = tmp_path / "log.csv"
    values = {"lr": [0.1] * 6}
    trainer = sl.Trainer(
        Scripted([6, 5, 4, 3, 2, 1], values=values), callbacks=[sl.CSVLogger(path)]
    )
    trainer.run(max_steps=4)
    trainer.run(max_steps=2)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["step", "loss", "lr"]
    assert rows[1:] == [[str(i), f"{7.0 - i}", "0.1"] for i in range(1, 7)]


def test_csv_logger_is_complete_up_to_a_failing_step(tmp_path):
    path = tmp_path / "log.csv"

    class Fails(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.step == 3:
                raise RuntimeError("boom")

    trainer = sl.Trainer(Scripted([3, 2, 1, 0]), callbacks=[sl.CSVLogger(path), Fails()])
    with pytest.raises(RuntimeError):
        trainer.run(max_steps=4)
    assert [row[0] for row in csv.reader(path.open())] == ["step", "1", "2", "3"]


def test_csv_logger_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match=r"folder .* does not exist"):
        sl.CSVLogger(tmp_path / "nope" / "log.csv")


def test_csv_logger_refuses_changing_columns(tmp_path):
    class Changing(Scripted):
        def step(self):
            out = super().step()
            return sl.StepOutput(loss=out.loss, values={"a": 1.0} if self.calls == 1 else {})

    trainer = sl.Trainer(Changing([1, 2]), callbacks=[sl.CSVLogger(tmp_path / "x.csv")])
    with pytest.raises(ValueError, match=r"step 2 has columns \['step', 'loss'\], the file has"):
        trainer.run(max_steps=2)
