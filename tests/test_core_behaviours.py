"""Core behaviours users rely on, each pinned by a test that fails when it breaks (no framework):
the slips a hand-made mutation run found surviving the suite."""

import csv
import math
import os
import tempfile

import numpy as np
import pytest

import steploop as sl
from steploop.callbacks import criteria
from tests.helpers import RaiseAt, batch_replay, quadratic
from tests.scripted import Scripted


def run(losses, *callbacks, values=None, **kwargs):
    trainer = sl.Trainer(Scripted(losses, values=values), list(callbacks), **kwargs)
    return trainer, trainer.run()


def test_early_stopping_in_max_mode_needs_an_improvement_above_min_delta():
    """mode='max': a value improves only when it beats the best by more than min_delta."""
    values = {"acc": [1.0, 1.4, 1.3, 2.0, 1.0, 1.0]}
    stopper = sl.EarlyStopping(patience=2, min_delta=0.5, monitor="acc", mode="max")
    _, result = run([0.0] * 6, stopper, values=values)
    assert result.steps == 3  # 1.4 and 1.3 are within 0.5 of 1.0: two steps without improvement
    assert "(best 1 at step 1, stopped at step 3)" in result.stop_reason


def test_and_says_converged_when_any_part_is_a_convergence_criterion():
    _, result = run([5.0] * 5, sl.MaxSteps(3) & sl.LossBelow(10.0))
    assert (result.steps, result.status) == (3, "converged")
    _, result = run([5.0] * 5, sl.MaxSteps(3) & sl.MaxSteps(2))
    assert (result.steps, result.status) == (3, "budget")


def test_time_limit_counts_each_run_once_and_not_the_time_between(monkeypatch):
    """A fake clock: 2 s inside the first run, 100 s between runs, 1.5 s inside the second."""
    now = [0.0]
    monkeypatch.setattr(criteria.time, "perf_counter", lambda: now[0])

    class Tick(sl.Callback):
        def on_step_end(self, trainer, record):
            now[0] += 0.5

    limit = sl.TimeLimit(10)
    trainer = sl.Trainer(quadratic(), [Tick(), limit])
    trainer.run(max_steps=4)
    assert limit.spent == 2.0
    now[0] += 100.0
    trainer.run(max_steps=3)
    assert limit.spent == 3.5
    assert limit.get_state() == {"spent": 3.5}


def test_restore_rewinds_the_data_position_of_a_trainer_that_ran_further(tmp_path):
    """A trainer that ran 7 steps, restored to a checkpoint of step 4, takes batch 4 next."""
    data = list(range(20))
    sl.Trainer(batch_replay([]), [sl.Checkpoint(tmp_path, every=100)], data=data).run(4)
    seen = []
    trainer = sl.Trainer(batch_replay(seen), [sl.MaxSteps(30)], data=data)
    trainer.run(max_steps=7)
    assert trainer.restore(tmp_path) == 4
    trainer.run(max_steps=2)
    assert seen[-2:] == [4, 5] and trainer.history["step"].tolist() == [1, 2, 3, 4, 5, 6]


def test_history_equality_treats_nan_as_equal_and_sees_differences():
    a, b = sl.History(), sl.History()
    for history in (a, b):
        history.append(1, math.nan, {"v": math.nan})
    assert a == b
    b.append(2, 1.0)
    assert a != b


def test_the_step_column_starts_where_the_steps_start():
    history = sl.History()
    history.append(3, 1.0)
    history.extend(4, [2.0, 3.0])
    assert history["step"].tolist() == [3, 4, 5]


def test_a_second_run_and_a_restored_run_continue_the_step_column(tmp_path):
    trainer = sl.Trainer(quadratic(), [sl.Checkpoint(tmp_path, every=2)])
    trainer.run(max_steps=3)
    trainer.run(max_steps=2)
    assert trainer.history["step"].tolist() == [1, 2, 3, 4, 5]
    resumed = sl.Trainer(quadratic(), [sl.Checkpoint(tmp_path, every=2)])
    resumed.restore(tmp_path)
    resumed.run(max_steps=2)
    assert resumed.history["step"].tolist() == [1, 2, 3, 4, 5, 6, 7]


def test_on_error_reaches_the_callbacks_that_implement_it():
    errors, ends = [], []

    class OnError(sl.Callback):
        def on_error(self, trainer, error):
            errors.append(str(error))

    class OnRunEnd(sl.Callback):
        def on_run_end(self, trainer, result):
            ends.append(result.status)

    trainer = sl.Trainer(quadratic(), [OnRunEnd(), OnError(), RaiseAt(2)])
    with pytest.raises(RuntimeError):
        trainer.run(max_steps=5)
    assert errors == ["died at step 2"] and ends == ["error"]


@pytest.mark.parametrize("k", [3, 4, 5])
def test_checkpoints_in_fused_runs_save_the_variables_of_their_step(k):
    """A save step on a call's last step or inside a call: the saved x is the x of that step."""
    plain, fused = tempfile.mkdtemp(), tempfile.mkdtemp()
    sl.Trainer(quadratic(0.05), [sl.Checkpoint(plain, every=3, keep=10)]).run(max_steps=12)
    sl.Trainer(
        quadratic(0.05), [sl.Checkpoint(fused, every=3, keep=10)], steps_per_call=k
    ).run(max_steps=12)
    for step in (3, 6, 9, 12):
        with np.load(os.path.join(plain, f"ckpt-{step}.params.npz")) as want, np.load(
            os.path.join(fused, f"ckpt-{step}.params.npz")
        ) as got:
            assert float(got["x"]) == float(want["x"])


def test_csv_logger_every_n_writes_rows_n_2n_3n(tmp_path):
    path = tmp_path / "log.csv"
    sl.Trainer(quadratic(), [sl.CSVLogger(path, every=3)]).run(max_steps=10)
    assert [row[0] for row in csv.reader(path.open())] == ["step", "3", "6", "9"]


def test_csv_cells_follow_the_sorted_header(tmp_path):
    path = tmp_path / "log.csv"
    values = {"zeta": [1.0, 2.0], "alpha": [10.0, 20.0]}
    run([5.0, 4.0], sl.CSVLogger(path), sl.MaxSteps(2), values=values)
    rows = list(csv.reader(path.open()))
    assert rows == [["step", "loss", "alpha", "zeta"], ["1", "5.0", "10.0", "1.0"],
                    ["2", "4.0", "20.0", "2.0"]]


def test_restore_loads_the_latest_of_the_kept_checkpoints(tmp_path):
    sl.Trainer(quadratic(), [sl.Checkpoint(tmp_path, every=2, keep=3)]).run(max_steps=7)
    trainer = sl.Trainer(quadratic(), [sl.Checkpoint(tmp_path, every=2, keep=3)])
    assert trainer.restore(tmp_path) == 7 and trainer.history.rows == 7


def test_a_restored_csv_logger_keeps_the_checkpoint_row_and_drops_later_ones(tmp_path):
    path = tmp_path / "log.csv"
    folder = tmp_path / "ckpt"
    first = sl.Trainer(
        quadratic(), [sl.CSVLogger(path), sl.Checkpoint(folder, every=4), RaiseAt(6)]
    )
    with pytest.raises(RuntimeError):
        first.run(max_steps=10)
    assert [row[0] for row in csv.reader(path.open())][-1] == "6"
    second = sl.Trainer(quadratic(), [sl.CSVLogger(path), sl.Checkpoint(folder, every=4)])
    assert second.restore(folder) == 4
    assert [row[0] for row in csv.reader(path.open())] == ["step", "1", "2", "3", "4"]


@pytest.mark.parametrize("crash_at", [3, 6, 8, 9, 11])
def test_a_checkpoint_listed_before_the_criteria_saves_their_state_after_the_step(crash_at):
    """Checkpoint saves after every other callback saw the step, wherever it is listed: a run
    resumed from it ends like one run."""
    folder = tempfile.mkdtemp()

    def stopper():
        return sl.EarlyStopping(patience=2, min_delta=1.0)

    reference = sl.Trainer(quadratic(0.05), [stopper()]).run()
    assert reference.steps > 11
    first = sl.Trainer(quadratic(0.05), [sl.Checkpoint(folder, every=1), stopper(),
                                         RaiseAt(crash_at)])
    with pytest.raises(RuntimeError):
        first.run()
    second = sl.Trainer(quadratic(0.05), [sl.Checkpoint(folder, every=1), stopper()])
    assert second.restore(folder) == crash_at - 1  # step crash_at's callbacks did not finish
    result = second.run()
    assert (result.steps, result.stop_reason) == (reference.steps, reference.stop_reason)


def test_iterate_takes_a_zero_budget_and_refuses_a_negative_one():
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(5)])
    assert list(trainer.iterate(0)) == [] and trainer.result.status == "budget"
    with pytest.raises(ValueError, match="max_steps must be an int >= 0, got -1"):
        trainer.iterate(-1)


class SeesSteps(sl.Callback):
    """Reads the trainer in on_step_begin and the previous record's variables, per step."""

    needs_live_state = False

    def __init__(self):
        self.begins, self.previous, self.expired = [], None, []

    def on_step_begin(self, trainer, step):
        self.begins.append((step, trainer.step))
        if self.previous is not None:
            try:
                self.previous.variables  # noqa: B018 - reading it is the test
            except RuntimeError:
                self.expired.append(self.previous.step)

    def on_step_end(self, trainer, record):
        self.previous = record


@pytest.mark.parametrize("k", [1, 4])
def test_replayed_steps_see_the_trainer_and_expire_the_previous_record(k):
    """Fused or not, on_step_begin gets the Trainer at the step before, and the previous step's
    variables are gone once the next step begins."""
    seen = SeesSteps()
    sl.Trainer(quadratic(), [seen], steps_per_call=k).run(max_steps=6)
    assert seen.begins == [(s, s - 1) for s in range(1, 7)]
    assert seen.expired == [1, 2, 3, 4, 5]


def test_describe_names_the_data():
    trainer = sl.Trainer(batch_replay([]), [sl.MaxSteps(2)], data=[1.0, 2.0, 3.0])
    assert trainer.describe().splitlines()[0] == "Trainer(GradientDescent, data=list of 3 batches)"


def test_time_limit_stops_when_the_time_spent_equals_the_limit(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(criteria.time, "perf_counter", lambda: now[0])

    class Tick(sl.Callback):
        def on_step_end(self, trainer, record):
            now[0] += 1.0

    limit = sl.TimeLimit(3)
    trainer = sl.Trainer(quadratic(), [Tick(), limit])
    assert trainer.run(max_steps=10).steps == 3
    assert trainer.run(max_steps=10).steps == 3  # already spent: no step


def test_and_of_two_budgets_says_the_first_parts_status():
    _, result = run([1.0, 1.0, math.nan, 1.0], sl.MaxSteps(3) & sl.StopOnNaN())
    assert (result.steps, result.status) == (3, "budget")
    _, result = run([1.0, 1.0, math.nan, 1.0], sl.StopOnNaN() & sl.MaxSteps(3))
    assert (result.steps, result.status) == (3, "nonfinite")


@pytest.mark.parametrize("k", [1, 5])
def test_a_composite_met_at_the_last_step_of_a_fused_run_stops_the_next_run(k):
    """The composite's verdict at the last step is remembered in the fast fused path too."""
    trainer = sl.Trainer(quadratic(0.1), [sl.LossBelow(1e-10) | sl.MaxSteps(10_000)],
                         steps_per_call=k)
    first = trainer.run()
    again = trainer.run()
    assert (again.steps, again.stop_reason) == (first.steps, first.stop_reason)
