"""steps_per_call=K gives what a step-by-step run gives: records, history, stop step, variables."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop.numpy import GradientDescent
from tests.helpers import batch_replay, quadratic
from tests.strategies import array_criteria, learning_rates, pieces, starts, steps_per_call


def outcome(trainer, result, strategy):
    return (
        result.status,
        result.steps,
        result.stop_reason,
        float(strategy.params["x"]),
        trainer.history["loss"].tolist(),
    )


@given(array_criteria(), steps_per_call, learning_rates, starts)
def test_fused_run_equals_step_by_step(criteria, k, lr, start):
    """run() with steps_per_call=K ends at the same step, with the same reason, history and x."""
    outcomes = []
    for per_call in (1, k):
        strategy = quadratic(lr, start)
        trainer = sl.Trainer(strategy, criteria(), steps_per_call=per_call)
        outcomes.append(outcome(trainer, trainer.run(), strategy))
    assert outcomes[0] == outcomes[1]


@given(array_criteria(), steps_per_call, learning_rates)
def test_fused_records_equal_step_by_step(criteria, k, lr):
    """iterate() yields the same records (step, loss, gradients) either way."""
    seen = []
    for per_call in (1, k):
        trainer = sl.Trainer(quadratic(lr), criteria(), steps_per_call=per_call)
        seen.append([(r.step, r.loss, float(r.gradients["x"])) for r in trainer.iterate()])
    assert seen[0] == seen[1]


@given(steps_per_call, pieces(total_max=40))
def test_fused_runs_in_pieces_equal_one_run(k, budgets):
    """run(max_steps=n) calls of a fused trainer add up to one run of their total."""
    pieces_strategy, whole_strategy = quadratic(0.05), quadratic(0.05)
    trainer = sl.Trainer(pieces_strategy, [sl.StopOnNaN()], steps_per_call=k)
    for budget in budgets:
        assert trainer.run(max_steps=budget).status == "budget"
    sl.Trainer(whole_strategy, [sl.StopOnNaN()]).run(max_steps=sum(budgets))
    assert trainer.step == sum(budgets) == trainer.history.rows
    assert float(pieces_strategy.params["x"]) == float(whole_strategy.params["x"])


def test_nonfinite_loss_stops_a_fused_run_at_the_same_step():
    """A diverging run (lr > 1) stops on the first infinite loss, fused or not."""
    results = []
    for k in (1, 64):
        strategy = quadratic(learning_rate=5.0)
        with np.errstate(over="ignore", invalid="ignore"):
            results.append(sl.Trainer(strategy, [sl.StopOnNaN()], steps_per_call=k).run())
    assert results[0].steps == results[1].steps
    assert results[1].status == "nonfinite"
    assert results[1].stop_reason == results[0].stop_reason


class Keep(sl.Callback):
    """Keeps every record it sees, and x when it is live (it then reads the variables)."""

    may_stop = False

    def __init__(self, live=False, reads_gradients=True):
        self.needs_live_state = live
        self.reads_gradients = reads_gradients
        self.records, self.seen = [], []

    def on_step_end(self, trainer, record):
        self.records.append(record)
        if self.needs_live_state:
            self.seen.append((record.step, float(record.variables["x"])))


def test_live_callback_runs_at_its_exact_step_and_cuts_chunks():
    """A live callback every 5 steps sees the variables of exactly those steps."""
    seen = []
    for k in (1, 12):
        peek = Keep(live=True)
        trainer = sl.Trainer(quadratic(), [sl.Every(peek, 5), sl.MaxSteps(33)], steps_per_call=k)
        trainer.run()
        seen.append(peek.seen)
    assert [step for step, _ in seen[1]] == [5, 10, 15, 20, 25, 30]
    assert seen[0] == seen[1]


def test_variables_inside_a_chunk_are_refused_with_the_reason():
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(10)], steps_per_call=10)
    records = list(trainer.iterate())
    assert float(records[-1].variables["x"]) == pytest.approx(4 - 4 * 0.8**10)
    with pytest.raises(
        RuntimeError,
        match=r"variables of step 3 is not available: step 3 ran "
        r"inside a fused call of 10 steps \(steps_per_call=10\)",
    ):
        _ = records[2].variables


def test_first_chunk_follows_the_budget_and_history_rows():
    """Chunks never run past run(max_steps); the history has one row per step."""
    trainer = sl.Trainer(quadratic(), [sl.StopOnNaN()], steps_per_call=8)
    result = trainer.run(max_steps=21)
    assert (result.steps, result.status) == (21, "budget")
    assert trainer.history["step"].tolist() == list(range(1, 22))


class StopAt(sl.Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, record):
        if record.step == self.step:
            trainer.stop(f"asked at step {self.step}")


def test_host_only_criteria_are_named_in_a_warning_and_apply_after_the_chunk():
    with pytest.warns(
        UserWarning, match=r"steps_per_call=5: callbacks\[1\] TimeLimit\(60s\) may stop"
    ):
        sl.Trainer(quadratic(), [sl.MaxSteps(9), sl.TimeLimit(60)], steps_per_call=5)
    with pytest.warns(UserWarning, match=r"callbacks\[0\] StopAt"):
        trainer = sl.Trainer(quadratic(), [StopAt(3), sl.MaxSteps(50)], steps_per_call=5)
    result = trainer.run()
    assert (result.steps, result.stop_reason) == (
        5,
        "asked at step 3 (asked after step 3; took effect after step 5, the last step of its "
        "fused call)",
    )


def test_array_criteria_and_loggers_raise_no_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.Trainer(
            quadratic(),
            [
                sl.LossBelow(1e-9) | sl.MaxSteps(9),
                sl.EarlyStopping(3),
                sl.CSVLogger(tmp_path / "a"),
            ],
            steps_per_call=5,
        )
        sl.Trainer(quadratic(), [StopAt(3)], steps_per_call=1)


def test_gradients_not_kept_are_refused_with_the_reason():
    """A callback that says it reads no gradients lets fused calls drop them, visibly."""

    losses = Keep(reads_gradients=False)
    sl.Trainer(quadratic(), [losses, sl.MaxSteps(6)], steps_per_call=3).run()
    assert [r.loss for r in losses.records][:2] == [16.0, (0.8 - 4) ** 2]
    with pytest.raises(RuntimeError, match="gradients of step 1 was not kept"):
        _ = losses.records[0].gradients


@given(steps_per_call, st.integers(min_value=1, max_value=30), st.integers(0, 40))
def test_data_position_is_the_same_fused_or_not(k, stop_after, size):
    """A criterion that stops mid-chunk leaves the next batch for the next run, and exhaustion
    ends the run after the same step."""
    runs = []
    for per_call in (1, k):
        seen = []
        trainer = sl.Trainer(
            batch_replay(seen),
            [sl.MaxSteps(stop_after)],
            data=list(range(size)),
            steps_per_call=per_call,
        )
        first = trainer.run()
        trainer.callbacks[0].n = stop_after + 5
        second = trainer.run()
        runs.append((first.status, first.steps, second.status, second.steps, seen))
    assert runs[0] == runs[1]


def test_steps_per_call_is_checked():
    expected = "steps_per_call must be 'auto' or an int >= 1, got "
    with pytest.raises(ValueError, match=expected + "0"):
        sl.Trainer(quadratic(), steps_per_call=0)
    with pytest.raises(TypeError, match=expected + r"2\.0 \(float\)"):
        sl.Trainer(quadratic(), steps_per_call=2.0)
    with pytest.raises(ValueError, match=expected + "'fast'"):
        sl.Trainer(quadratic(), steps_per_call="fast")
    with pytest.raises(TypeError, match=expected + r"True \(bool\)"):
        sl.Trainer(quadratic(), steps_per_call=True)


def test_leaving_iterate_inside_a_chunk_counts_the_steps_that_ran():
    strategy = quadratic()
    trainer = sl.Trainer(strategy, [sl.MaxSteps(100)], steps_per_call=10)
    for record in trainer.iterate():
        if record.step == 4:
            break
    assert trainer.step == 10 == trainer.history.rows
    assert trainer.result.status == "stopped"
    assert float(strategy.params["x"]) == pytest.approx(4 - 4 * 0.8**10)


def test_default_run_steps_works_for_any_strategy():
    """A strategy that writes only step() can be fused (in a Python loop)."""

    class Halve(sl.StepStrategy):
        def __init__(self):
            self.x = 1024.0

        def step(self):
            self.x /= 2
            return sl.StepOutput(loss=self.x)

    halve = Halve()
    result = sl.Trainer(halve, [sl.LossBelow(1.0)], steps_per_call=4).run()
    assert (result.steps, halve.x, result.stop_reason) == (
        11,
        0.5,
        "LossBelow(1): loss 0.5 < 1 at step 11",
    )


def test_multi_parameter_gradients_survive_chunks():
    gd = GradientDescent(
        lambda p: (float(np.sum(p["w"] ** 2)), {"w": 2 * p["w"]}),
        {"w": [1.0, -2.0]},
        learning_rate=0.1,
    )
    trainer = sl.Trainer(gd, [sl.MaxSteps(3)], steps_per_call=3)
    grads = [r.gradients["w"].tolist() for r in trainer.iterate()]
    assert grads == [[2.0, -4.0], [1.6, -3.2], [1.28, -2.56]]
