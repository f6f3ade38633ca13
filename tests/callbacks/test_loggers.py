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


def test_csv_logger_keeps_every_column_when_values_change(tmp_path):
    """A value a step does not report is nan in its row; one reported for the first time later
    is added as a column, nan in the rows before: nothing dropped, as in the history."""

    class Changing(Scripted):
        def step(self):
            out = super().step()
            values = [{"b": 1.0}, {}, {"a": 2.0, "b": 3.0}][self.calls - 1]
            return sl.StepOutput(loss=out.loss, values=values)

    path = tmp_path / "x.csv"
    trainer = sl.Trainer(Changing([1, 2, 3]), callbacks=[sl.CSVLogger(path)], steps_per_call=1)
    trainer.run(max_steps=3)
    assert list(csv.reader(path.open())) == [
        ["step", "loss", "b", "a"],
        ["1", "1.0", "1.0", "nan"],
        ["2", "2.0", "nan", "nan"],
        ["3", "3.0", "3.0", "2.0"],
    ]


# -- what earlier callbacks logged (Evaluate's val_loss, ReduceLROnPlateau's lr) -------------


def _evaluated_run(tmp_path, loggers, steps_per_call=1):
    from steploop.numpy import GradientDescent

    gd = GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=0.25)
    callbacks = [sl.Evaluate([3.0, 5.0], every=2), *loggers]
    trainer = sl.Trainer(gd, callbacks, data=[4.0] * 4, steps_per_call=steps_per_call)
    trainer.run()
    return trainer


def test_csv_logger_writes_the_columns_earlier_callbacks_logged(tmp_path):
    """val_loss first appears at step 2: the file gains the column then, nan before, as the
    history; each row holds the history's value at its step."""
    path = tmp_path / "log.csv"
    trainer = _evaluated_run(tmp_path, [sl.CSVLogger(str(path))])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["step", "loss", "val_loss"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3", "4"]
    val = trainer.history["val_loss"]
    assert [row[2] for row in rows[1:]] == [repr(v) if v == v else "nan" for v in val.tolist()]
    assert rows[2][2] == repr(float(val[1])) and rows[1][2] == "nan"


def test_print_logger_prints_what_earlier_callbacks_logged(tmp_path):
    """val_loss is printed at the evaluated steps only (not as nan at the others)."""
    out = io.StringIO()
    trainer = _evaluated_run(tmp_path, [sl.PrintLogger(file=out, variables=False, gradients=False)])
    lines = out.getvalue().splitlines()
    val = trainer.history["val_loss"]
    assert lines[0] == f"step 1: loss={trainer.history['loss'][0]:.6g}"
    assert lines[1] == f"step 2: loss={trainer.history['loss'][1]:.6g} val_loss={val[1]:.7g}"


def test_a_logger_listed_before_the_evaluation_is_refused(tmp_path):
    """Loggers report what callbacks listed before them logged: one listed before the Evaluate
    would write val_loss as nan in every row (the value is logged after its row), so the
    Trainer refuses it (the message: tests/callbacks/test_evaluate.py)."""
    from steploop.numpy import GradientDescent

    gd = GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=0.25)
    callbacks = [sl.CSVLogger(str(tmp_path / "log.csv")), sl.Evaluate([3.0, 5.0], every=2)]
    with pytest.raises(ValueError, match=r"^callbacks\[0\] CSVLogger\(.*logs columns after it"):
        sl.Trainer(gd, callbacks, data=[4.0] * 4)


def test_a_logger_listed_before_a_learning_rate_callback_is_refused(tmp_path):
    """The learning-rate callbacks log lr at every step: a logger before one would report it
    as missing (nan) in every row; a subclass is named by its own class."""
    from steploop.numpy import GradientDescent

    class MyLog(sl.CSVLogger):
        pass

    gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
    path = str(tmp_path / "log.csv")
    for rates in (sl.LearningRateScheduler(lambda step: 0.1), sl.ReduceLROnPlateau(patience=2)):
        with pytest.raises(ValueError, match=r"^callbacks\[0\] MyLog\(.* logs columns after"):
            sl.Trainer(gd, [MyLog(path), rates, sl.MaxSteps(3)])
    trainer = sl.Trainer(gd, [sl.LearningRateScheduler(lambda step: 0.1), MyLog(path)])
    trainer.run(max_steps=3)
    with open(path) as file:
        rows = list(csv.reader(file))
    losses = [repr(float(loss)) for loss in trainer.history["loss"]]
    assert rows == [["step", "loss", "lr"], ["1", losses[0], "0.1"], ["2", losses[1], "0.1"],
                    ["3", losses[2], "0.1"]]


def test_csv_with_logged_columns_is_the_same_fused(tmp_path):
    """steps_per_call=4: the same file, byte for byte."""
    plain, fused = tmp_path / "plain.csv", tmp_path / "fused.csv"
    _evaluated_run(tmp_path, [sl.CSVLogger(str(plain))])
    _evaluated_run(tmp_path, [sl.CSVLogger(str(fused))], steps_per_call=4)
    assert plain.read_bytes() == fused.read_bytes()


def test_csv_resumed_from_before_a_column_appeared_equals_one_run(tmp_path):
    """Checkpoint at step 1 (columns step, loss), val_loss added at step 2, the process dies
    after step 3; the resumed run's file equals an uninterrupted run's, byte for byte."""
    from steploop.numpy import GradientDescent

    class DiesAt3(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.step == 3:
                raise RuntimeError("the process dies after the logger wrote step 3")

    def trainer(path, ckpt, *extra):
        gd = GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=0.25)
        callbacks = [
            sl.Evaluate([3.0, 5.0], every=2),
            sl.CSVLogger(str(path)),
            sl.Checkpoint(str(ckpt), every=sl.at(1)),
            *extra,
        ]
        return sl.Trainer(gd, callbacks, data=[4.0] * 4, steps_per_call=1)

    whole = tmp_path / "whole.csv"
    trainer(whole, tmp_path / "c1").run()
    path = tmp_path / "resumed.csv"
    with pytest.raises(RuntimeError, match="dies after"):
        trainer(path, tmp_path / "c2", DiesAt3()).run()
    assert next(csv.reader(path.open())) == ["step", "loss", "val_loss"]
    second = trainer(path, tmp_path / "c2")
    assert second.restore(str(tmp_path / "c2")) == 1
    second.run()
    assert path.read_bytes() == whole.read_bytes()
