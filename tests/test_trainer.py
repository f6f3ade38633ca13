"""The Trainer's loop: stopping, budgets, data, iterate/break, pieces, hook order, errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from tests.helpers import Recorder, batch_replay, gradient_descent, quadratic
from tests.strategies import pieces


def test_runs_the_article_problem_to_tolerance():
    """LossBelow | MaxSteps stops at the first step whose loss is below the tolerance."""
    gd = quadratic(0.1)
    result = sl.Trainer(gd, callbacks=[sl.LossBelow(1e-12) | sl.MaxSteps(1000)]).run()
    losses = result.history["loss"]
    first_below = int(np.argmax(losses < 1e-12)) + 1
    assert result.steps == first_below == 70
    assert result.status == "converged" and result.converged
    assert result.stop_reason == f"LossBelow(1e-12): loss {losses[-1]:.6g} < 1e-12 at step 70"
    assert result.loss == losses[-1]
    assert result.history["step"].tolist() == list(range(1, 71))


def test_max_steps_argument_is_a_budget_per_call():
    trainer = sl.Trainer(quadratic())
    first = trainer.run(max_steps=5)
    assert (first.steps, first.status, first.converged) == (5, "budget", False)
    assert first.stop_reason == "run(max_steps=5) did its 5 steps"
    assert trainer.run(max_steps=3).steps == 8
    assert trainer.run(max_steps=0).steps == 8


@pytest.mark.parametrize("bad", [-1, -100])
def test_negative_max_steps_is_refused(bad):
    with pytest.raises(ValueError, match=r"max_steps must be an int >= 0, got -\d+"):
        sl.Trainer(quadratic()).run(max_steps=bad)


@pytest.mark.parametrize("bad", [1.5, "3", True])
def test_non_integer_max_steps_is_refused(bad):
    with pytest.raises(TypeError, match="max_steps must be an int"):
        sl.Trainer(quadratic()).iterate(max_steps=bad)


def test_a_run_that_nothing_could_end_is_refused():
    """No criterion, no max_steps, no data: the run could never end, so it does not start."""
    trainer = sl.Trainer(quadratic(), callbacks=[sl.PrintLogger(), sl.CSVLogger("x.csv").every(2)])
    with pytest.raises(ValueError, match="nothing would end this run: no callback can stop it"):
        trainer.run()
    assert trainer.step == 0
    assert sl.Trainer(quadratic()).run(max_steps=4).steps == 4


def test_maxsteps_spent_means_next_run_does_nothing():
    trainer = sl.Trainer(quadratic(), callbacks=[sl.MaxSteps(10)])
    assert trainer.run().steps == 10
    again = trainer.run()
    assert (again.steps, again.status) == (10, "budget")
    assert again.stop_reason == "MaxSteps(10): 10 steps already done"


def test_data_exhausted_ends_the_run_and_batches_are_passed():
    seen = []

    def loss_and_grad(x, batch):
        seen.append(batch)
        return (x - batch) ** 2, 2 * (x - batch)

    gd = gradient_descent(loss_and_grad)
    result = sl.Trainer(gd, data=[1.0, 2.0, 3.0]).run()
    assert (result.steps, result.status) == (3, "exhausted")
    assert result.stop_reason == "data exhausted after 3 steps"
    assert seen == [1.0, 2.0, 3.0]


def test_data_position_carries_over_between_runs():
    seen = []
    trainer = sl.Trainer(batch_replay(seen), data=iter(range(10)))
    trainer.run(max_steps=4)
    trainer.run(max_steps=3)
    assert seen == list(range(7))


def test_iterate_yields_each_record_and_break_ends_the_run():
    events = []
    trainer = sl.Trainer(quadratic(), callbacks=[Recorder(events)])
    steps = []
    for record in trainer.iterate():
        steps.append(record.step)
        if record.step == 4:
            break
    assert steps == [1, 2, 3, 4]
    assert trainer.result.status == "stopped"
    assert trainer.result.stop_reason == "the caller left iterate() after step 4"
    assert events[-1] == ("cb", "run_end", "stopped")
    result = trainer.run(max_steps=2)
    assert result.steps == 6
    assert trainer.history["step"].tolist() == [1, 2, 3, 4, 5, 6]


def test_iterate_then_run_equals_one_run():
    one = quadratic()
    whole = sl.Trainer(one, callbacks=[sl.LossBelow(1e-10) | sl.MaxSteps(500)]).run()
    two = quadratic()
    trainer = sl.Trainer(two, callbacks=[sl.LossBelow(1e-10) | sl.MaxSteps(500)])
    for record in trainer.iterate():
        if record.step == 7:
            break
    split = trainer.run()
    assert split.steps == whole.steps
    assert split.history == whole.history
    assert two.params["x"] == one.params["x"]


@given(pieces(), st.sampled_from(["loss", "change", "early"]))
def test_run_in_pieces_equals_one_run(piece_sizes, kind):
    """Calling run(max_steps=k) repeatedly, then run(), gives the history and x of one run."""

    def criteria():
        stop = {
            "loss": sl.LossBelow(1e-9),
            "change": sl.LossChangeBelow(1e-7, patience=2),
            "early": sl.EarlyStopping(patience=3, min_delta=1e-6),
        }[kind]
        return [stop | sl.MaxSteps(150)]

    reference_gd = quadratic(0.05)
    reference = sl.Trainer(reference_gd, callbacks=criteria()).run()
    gd = quadratic(0.05)
    trainer = sl.Trainer(gd, callbacks=criteria())
    result = None
    for size in piece_sizes:
        result = trainer.run(max_steps=size)
        if result.status != "budget" or result.stop_reason.startswith("MaxSteps"):
            break
    if result.status == "budget" and result.stop_reason.startswith("run("):
        result = trainer.run()
    assert result.steps == reference.steps
    assert result.status == reference.status
    assert trainer.history == reference.history
    assert gd.params["x"] == reference_gd.params["x"]


def test_hooks_fire_in_registration_order_then_release():
    events = []
    trainer = sl.Trainer(
        quadratic(), callbacks=[Recorder(events, "a"), Recorder(events, "b"), sl.MaxSteps(2)]
    )
    trainer.run()
    assert events == [
        ("a", "run_begin", 0),
        ("b", "run_begin", 0),
        ("a", "step_begin", 1),
        ("b", "step_begin", 1),
        ("a", "step_end", 1),
        ("b", "step_end", 1),
        ("a", "step_begin", 2),
        ("b", "step_begin", 2),
        ("a", "step_end", 2),
        ("b", "step_end", 2),
        ("a", "run_end", "budget"),
        ("b", "run_end", "budget"),
    ]


def test_stop_lets_the_rest_of_the_step_end_hooks_run():
    events = []

    class StopAt3(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.step == 3:
                trainer.stop("enough")

    trainer = sl.Trainer(quadratic(), callbacks=[StopAt3(), Recorder(events)])
    result = trainer.run()
    assert (result.steps, result.status, result.stop_reason) == (3, "stopped", "enough")
    assert ("cb", "step_end", 3) in events and ("cb", "step_begin", 4) not in events


def test_first_stop_request_wins():
    class Stopper(sl.Callback):
        def __init__(self, reason):
            self.reason = reason

        def on_step_end(self, trainer, record):
            trainer.stop(self.reason)

    result = sl.Trainer(quadratic(), callbacks=[Stopper("first"), Stopper("second")]).run()
    assert result.stop_reason == "first"


def test_stop_in_step_begin_skips_the_step_and_keeps_its_batch():
    seen = []

    class StopBefore3(sl.Callback):
        def on_step_begin(self, trainer, step):
            if step == 3 and not seen.count("stopped"):
                seen.append("stopped")
                trainer.stop("pause")

    trainer = sl.Trainer(batch_replay(seen), data=[10, 20, 30, 40], callbacks=[StopBefore3()])
    assert trainer.run().steps == 2
    assert trainer.run().steps == 4
    assert seen == [10, 20, "stopped", 30, 40]


def test_stop_validates_its_arguments():
    trainer = sl.Trainer(quadratic())
    with pytest.raises(TypeError, match="reason must be a non-empty str"):
        trainer.stop("")
    with pytest.raises(ValueError, match="status must be one of"):
        trainer.stop("why", status="error")


class Boom(Exception):
    pass


def test_error_in_a_step_runs_on_error_and_run_end_then_reaches_the_caller():
    events = []

    def loss_and_grad(x):
        if len([e for e in events if e[1] == "step_begin"]) == 3:
            raise Boom("bad step")
        return (x - 4) ** 2, 2 * (x - 4)

    trainer = sl.Trainer(gradient_descent(loss_and_grad), callbacks=[Recorder(events)])
    with pytest.raises(Boom, match="bad step"):
        trainer.run(max_steps=10)
    assert trainer.step == 2
    assert events[-2:] == [("cb", "error", "Boom"), ("cb", "run_end", "error")]
    assert trainer.result.status == "error"
    assert trainer.result.stop_reason == "Boom after step 2: bad step"


def test_error_in_a_callback_skips_later_step_hooks_but_not_cleanup():
    events = []

    class Raiser(sl.Callback):
        def on_step_end(self, trainer, record):
            raise Boom("callback failed")

    trainer = sl.Trainer(quadratic(), callbacks=[Raiser(), Recorder(events)])
    with pytest.raises(Boom):
        trainer.run(max_steps=5)
    assert ("cb", "step_end", 1) not in events
    assert events[-2:] == [("cb", "error", "Boom"), ("cb", "run_end", "error")]
    assert trainer.step == 1


def test_a_failing_cleanup_hook_does_not_hide_the_first_error(caplog):
    class BadEnd(sl.Callback):
        def on_run_end(self, trainer, result):
            raise RuntimeError("secondary")

    def loss_and_grad(x):
        raise Boom("primary")

    events = []
    trainer = sl.Trainer(gradient_descent(loss_and_grad), callbacks=[BadEnd(), Recorder(events)])
    with pytest.raises(Boom, match="primary"):
        trainer.run(max_steps=1)
    assert events[-1] == ("cb", "run_end", "error")
    assert "BadEnd.on_run_end raised" in caplog.text


def test_run_end_hook_errors_surface_after_all_run_end_hooks_ran():
    events = []

    class BadEnd(sl.Callback):
        def on_run_end(self, trainer, result):
            raise RuntimeError("end failed")

    trainer = sl.Trainer(quadratic(), callbacks=[BadEnd(), Recorder(events)])
    with pytest.raises(RuntimeError, match="end failed"):
        trainer.run(max_steps=1)
    assert events[-1] == ("cb", "run_end", "budget")


def test_run_does_not_nest():
    class Nested(sl.Callback):
        def on_step_end(self, trainer, record):
            trainer.run(max_steps=1)

    with pytest.raises(RuntimeError, match="already running"):
        sl.Trainer(quadratic(), callbacks=[Nested()]).run(max_steps=1)


def test_describe_prints_the_callbacks_in_firing_order(capsys):
    trainer = sl.Trainer(
        quadratic(), callbacks=[sl.LossBelow(1e-12) | sl.MaxSteps(1000), sl.PrintLogger(every=10)]
    )
    text = trainer.describe()
    assert capsys.readouterr().out == text + "\n"
    assert text.splitlines() == [
        "Trainer(GradientDescent, data=None)",
        "steps_per_call=auto → 1 step a call: GradientDescent is not Fusable (no multi-step call "
        "of its own)",
        "callbacks, in the order they fire at every hook:",
        "  1. LossBelow(1e-12) | MaxSteps(1000)",
        "  2. PrintLogger(every=10)",
        "  3. Release(GradientDescent)  (built in: frees the step's resources, e.g. a persistent "
        "tape)",
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"strategy": object()}, TypeError, "strategy must be a StepStrategy, got object"),
        ({"callbacks": sl.MaxSteps(3)}, TypeError, "got a single MaxSteps"),
        ({"callbacks": [sl.MaxSteps(3), print]}, TypeError, r"callbacks\[1\] must be a Callback"),
        ({"callbacks": "abc"}, TypeError, "callbacks must be a list of Callback objects, got str"),
        ({"data": "abc"}, TypeError, "data must be an iterable of batches"),
        ({"data": 3}, TypeError, "data must be an iterable of batches.*got int"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, message):
    arguments = {"strategy": quadratic(), **kwargs}
    with pytest.raises(error, match=message):
        sl.Trainer(**arguments)


def test_hook_signatures_are_checked_at_construction():
    class Wrong(sl.Callback):
        def on_step_end(self, record):
            pass

    with pytest.raises(
        TypeError,
        match=r"callbacks\[0\] \(Wrong\)\.on_step_end must accept "
        r"\(trainer, record\); its signature is \(record\)",
    ):
        sl.Trainer(quadratic(), callbacks=[Wrong()])


def test_strategy_arity_is_checked_against_data():
    with pytest.raises(
        TypeError, match=r"loss_and_grad\(x\) cannot be called as \(params, batch\)"
    ):
        sl.Trainer(quadratic(), data=[1, 2])


def test_gradient_criteria_need_a_strategy_that_reports_gradients():
    class NoGradients(sl.StepStrategy):
        def step(self):
            return sl.StepOutput(loss=1.0)

    with pytest.raises(
        ValueError,
        match=r"GradientNormBelow\(0.1\) needs gradients, but "
        "NoGradients reports none",
    ):
        sl.Trainer(NoGradients(), callbacks=[sl.MaxSteps(3) | sl.GradientNormBelow(0.1)])


def test_step_must_return_a_step_output_with_a_scalar_loss():
    class ReturnsFloat(sl.StepStrategy):
        def step(self):
            return 1.0

    class ReturnsVector(sl.StepStrategy):
        def step(self):
            return sl.StepOutput(loss=np.ones(3))

    with pytest.raises(TypeError, match=r"ReturnsFloat\.step must return a StepOutput, got float"):
        sl.Trainer(ReturnsFloat()).run(max_steps=1)
    with pytest.raises(ValueError, match=r"returned a loss of shape \(3,\)"):
        sl.Trainer(ReturnsVector()).run(max_steps=1)


def test_values_reach_the_record_and_the_history():
    class WithValues(sl.StepStrategy):
        def __init__(self):
            self.n = 0

        def step(self):
            self.n += 1
            return sl.StepOutput(loss=1.0 / self.n, values={"n": self.n, "pair": [self.n, -self.n]})

    trainer = sl.Trainer(WithValues())
    records = list(trainer.iterate(max_steps=3))
    assert [float(r.values["n"]) for r in records] == [1.0, 2.0, 3.0]
    assert trainer.history["n"].tolist() == [1.0, 2.0, 3.0]
    assert trainer.history["pair"].tolist() == [[1, -1], [2, -2], [3, -3]]


def test_result_before_any_step_has_nan_loss():
    result = sl.Trainer(quadratic()).run(max_steps=0)
    assert result.steps == 0 and math.isnan(result.loss)


def test_records_read_variables_only_while_current():
    trainer = sl.Trainer(quadratic(0.25))
    records = []
    for record in trainer.iterate(max_steps=3):
        if record.step == 1:
            assert record.variables["x"] == 2.0
        records.append(record)
    assert records[2].variables["x"] == 3.5  # still the current step
    with pytest.raises(RuntimeError, match=r"StepRecord\.variables of step 2 is gone"):
        records[1].variables  # noqa: B018
    assert records[0].variables["x"] == 2.0  # read while current, kept


def test_run_end_is_logged_under_steploop(caplog):
    with caplog.at_level("INFO", logger="steploop"):
        sl.Trainer(quadratic(), callbacks=[sl.MaxSteps(3)]).run()
    assert [r.name for r in caplog.records] == ["steploop"]
    assert caplog.records[0].getMessage() == "run ended after 3 steps: MaxSteps(3): reached 3 steps"


def test_each_result_keeps_the_history_of_its_own_run():
    trainer = sl.Trainer(quadratic())
    first = trainer.run(max_steps=3)
    second = trainer.run(max_steps=2)
    assert (first.history.rows, second.history.rows, trainer.history.rows) == (3, 5, 5)
    assert second.history == trainer.history


def test_two_iterators_cannot_run_inside_each_other():
    trainer = sl.Trainer(quadratic())
    outer, inner = trainer.iterate(max_steps=3), trainer.iterate(max_steps=3)
    next(outer)
    with pytest.raises(RuntimeError, match="already running"):
        next(inner)
    assert [r.step for r in outer] == [2, 3]
