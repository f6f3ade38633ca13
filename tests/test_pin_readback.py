"""The records of plain and fused steps: target gradients per step, no gradients where a strategy
reports none, no host conversion of what is not there, and the messages of a fused call's bad
results and of its values that are not kept; a compiled call's output opened by the strategy's
to_host."""

import numpy as np
import pytest

import steploop as sl
from steploop.numpy import GradientDescent
from steploop.strategy import FusedResult, StepOutput
from tests.test_python_loop import Box


def with_target():
    """Gradient descent (lr 0.25, from 0) on (x-4)**2 with target z = x**2: x is 0, 2, 3 before
    steps 1, 2, 3, so the target's gradient 2x is 0, 4, 6 at those steps."""

    def loss_and_grad(x):
        return {"loss": (x - 4.0) ** 2, "z": x**2}, {"loss": 2.0 * (x - 4.0), "z": 2.0 * x}

    return GradientDescent(loss_and_grad, 0.0, learning_rate=0.25)


def as_floats(targets):
    return {t: {k: float(v) for k, v in g.items()} for t, g in targets.items()}


EXPECTED_TARGETS = [{"z": {"x": 0.0}}, {"z": {"x": 4.0}}, {"z": {"x": 6.0}}]


@pytest.mark.parametrize("per_call", [1, 3])
def test_every_record_of_iterate_has_its_steps_target_gradients(per_call):
    """Plain steps and a fused call of 3 (iterate keeps every step's) give each step's own."""
    trainer = sl.Trainer(with_target(), [sl.MaxSteps(3)], steps_per_call=per_call)
    records = list(trainer.iterate())
    assert [r.loss for r in records] == [16.0, 4.0, 1.0]
    assert [as_floats(r.target_gradients) for r in records] == EXPECTED_TARGETS


class Keep(sl.Callback):
    """Keeps every record; it says it reads no gradients, so fused calls keep the last step's."""

    may_stop = False
    reads_gradients = False

    def __init__(self):
        self.records = []

    def on_step_end(self, trainer, record):
        self.records.append(record)


def test_a_call_that_keeps_the_last_gradients_has_its_last_steps_target_gradients():
    """Without a gradient reader the last step's target gradients come back, the others' not."""
    keep = Keep()
    sl.Trainer(with_target(), [keep, sl.MaxSteps(3)], steps_per_call=3).run()
    assert [r.step for r in keep.records] == [1, 2, 3]
    assert as_floats(keep.records[2].target_gradients) == {"z": {"x": 6.0}}
    with pytest.raises(RuntimeError) as caught:
        _ = keep.records[0].target_gradients
    assert str(caught.value) == (
        "StepRecord.target_gradients of step 1 was not kept: step 1 ran inside a fused call of "
        "3 steps (steps_per_call=3), and fused calls return the last step's gradients, and every "
        "step's only for callbacks with reads_gradients = True (or for iterate())"
    )


def test_variables_of_a_fused_step_before_the_last_are_refused_with_the_whole_reason():
    trainer = sl.Trainer(with_target(), [sl.MaxSteps(3)], steps_per_call=3)
    records = list(trainer.iterate())
    assert {k: float(v) for k, v in records[2].variables.items()} == {"x": 3.5}
    with pytest.raises(RuntimeError) as caught:
        _ = records[1].variables
    assert str(caught.value) == (
        "StepRecord.variables of step 2 is not available: step 2 ran inside a fused call of 3 "
        "steps (steps_per_call=3); a callback that reads variables sets needs_live_state = True, "
        "and the Trainer ends a fused call at its steps"
    )


class Silent(sl.StepStrategy):
    """Reports no gradients and no values: loss 1/k at step k. Logs what it converts."""

    def __init__(self):
        self.k = 0
        self.converted = []

    def step(self):
        self.k += 1
        return StepOutput(loss=1.0 / self.k)

    def to_host(self, tree):
        self.converted.append(tree)
        return super().to_host(tree)


@pytest.mark.parametrize("per_call", [1, 3])
def test_a_strategy_without_gradients_gives_records_with_none(per_call):
    """Plain or fused (every step, not only the last), the records' gradients are empty."""
    trainer = sl.Trainer(Silent(), [sl.MaxSteps(3)], steps_per_call=per_call)
    records = list(trainer.iterate())
    assert [r.loss for r in records] == [1.0, 0.5, 1.0 / 3.0]
    for record in records:
        assert type(record.gradients) is dict and record.gradients == {}
        assert type(record.target_gradients) is dict and record.target_gradients == {}


def test_a_plain_step_with_a_float_loss_and_no_values_converts_nothing():
    """Nothing to bring to the host: to_host is never called."""
    strategy = Silent()
    trainer = sl.Trainer(strategy, [sl.MaxSteps(2)], steps_per_call=1)
    records = list(trainer.iterate())
    assert [(r.loss, r.values) for r in records] == [(1.0, {}), (0.5, {})]
    assert strategy.converted == []


class Fused(sl.StepStrategy):
    """A fusable strategy whose ``run_steps`` returns ``result(count)``."""

    ready_to_fuse = True

    def __init__(self, result):
        self.result = result

    def step(self):
        return StepOutput(loss=1.0)

    def run_steps(self, count, first_step, stopper, feed, keep):
        return self.result(count)


def run_message(error, result):
    """The message of the ``error`` a fused run of ``Fused(result)`` raises."""
    trainer = sl.Trainer(Fused(result), [sl.MaxSteps(10)], steps_per_call=4)
    with pytest.raises(error) as caught:
        trainer.run()
    assert type(caught.value) is error
    return str(caught.value)


def test_a_run_steps_that_returns_no_fused_result_is_named():
    message = run_message(TypeError, lambda count: StepOutput(loss=[1.0] * count))
    assert message == "Fused.run_steps must return a FusedResult, got StepOutput"


@pytest.mark.parametrize(
    ("loss", "shape"),
    [
        (np.ones((4, 1)), "(4, 1)"),  # a row per step, but not scalars
        (np.ones(3), "(3,)"),  # too few rows
        (np.array([True, False, True, True]), "(4,)"),  # not numbers
    ],
)
def test_losses_that_are_not_one_number_per_step_are_refused(loss, shape):
    message = run_message(ValueError, lambda count: FusedResult(4, StepOutput(loss=loss)))
    assert message == (
        f"Fused.run_steps returned losses of shape {shape}; expected one scalar loss per step "
        "(4 steps)"
    )


def test_a_call_of_more_steps_than_asked_is_refused():
    message = run_message(
        ValueError, lambda count: FusedResult(count + 2, StepOutput(loss=np.ones(count + 2)))
    )
    assert message == "Fused.run_steps did 6 steps; it was asked for 4"


def test_a_call_that_did_no_step_is_refused_with_the_whole_reason():
    message = run_message(ValueError, lambda count: FusedResult(0, StepOutput(loss=np.zeros(0))))
    assert message == (
        "Fused.run_steps did no step, yet neither the data ended nor a criterion stopped the "
        "call; it must do at least one step when asked"
    )


class FusedLossValue(sl.StepStrategy):
    """A fused strategy whose calls report a value named 'loss' (two steps a call)."""

    ready_to_fuse = True

    def step(self, batch=None):
        raise AssertionError("fused only")

    def run_steps(self, count, first_step, stopper, feed, keep_gradients):
        losses = np.array([1.0, 1.0])
        return FusedResult(steps=2, output=StepOutput(loss=losses, values={"loss": losses}))


def test_a_fused_call_reporting_a_value_named_loss_is_refused_naming_run_steps():
    trainer = sl.Trainer(FusedLossValue(), [sl.MaxSteps(4)], steps_per_call=2)
    with pytest.raises(ValueError) as raised:
        trainer.run()
    assert str(raised.value).startswith(
        "FusedLossValue.run_steps: a value is named 'loss', a column the history keeps itself"
    )
    assert len(trainer.history) == 0


def test_numpy_strategy_whose_loss_reports_a_value_named_step_fails_before_its_first_update():
    def loss_and_grad(x):
        return {"loss": (x - 4.0) ** 2, "values": {"step": x}}, 2.0 * (x - 4.0)

    strategy = GradientDescent(loss_and_grad, 0.0, learning_rate=0.25)
    with pytest.raises(ValueError, match=r"a value is named 'step'"):
        sl.Trainer(strategy, [sl.MaxSteps(2)]).run()
    assert float(strategy.params["x"]) == 0.0


class BoxedCalls(sl.StepStrategy):
    """A compiled strategy's calls: x halves its distance to 4 each step; the losses and values
    come back in a ``Box`` (``tests/test_python_loop.py``), which only its ``to_host`` opens."""

    ready_to_fuse = True
    reports_gradients = False

    def __init__(self):
        self.x = 0.0

    def step(self, batch=None):
        raise AssertionError("fused only")

    def run_steps(self, count, first_step, stopper, feed, keep_gradients):
        losses, xs = [], []
        for _ in range(count):
            losses.append((self.x - 4.0) ** 2)
            self.x += 0.5 * (4.0 - self.x)
            xs.append(self.x)
        output = StepOutput(loss=Box(np.array(losses)), values={"x": Box(np.array(xs))})
        return FusedResult(steps=count, output=output)

    def to_host(self, tree):
        if isinstance(tree, dict):
            return {key: self.to_host(value) for key, value in tree.items()}
        if not isinstance(tree, Box):
            raise TypeError(f"BoxedCalls.to_host takes a Box, got {type(tree).__name__}")
        return np.asarray(tree.value)

    def variables(self):
        return {"x": np.asarray(self.x)}


def test_a_compiled_calls_output_is_read_through_the_strategys_to_host():
    """A call not on the host (``on_host`` False): its losses and values are opened by the
    strategy's ``to_host``, not taken as NumPy arrays."""
    trainer = sl.Trainer(BoxedCalls(), steps_per_call=3)
    result = trainer.run(max_steps=6)
    assert (result.steps, result.status) == (6, "budget")
    assert trainer.history["loss"].tolist() == [16.0, 4.0, 1.0, 0.25, 0.0625, 0.015625]
    assert trainer.history["x"].tolist() == [2.0, 3.0, 3.5, 3.75, 3.875, 3.9375]


def test_a_stop_asked_during_a_compiled_call_of_two_steps_names_both():
    """Two steps are the fewest a compiled call can have run past the step a stop was asked
    during: the reason names the call's steps (one step alone needs no naming)."""
    from steploop.readback import FusedCall
    from steploop.records import Stop
    from tests.test_python_loop import StopsAt

    two = FusedCall(StopsAt(last=None), FusedResult(2, StepOutput(loss=np.zeros(2))), 5, False, 2)
    assert two.asked_during(Stop("x", "budget")) == Stop(
        "x (asked during the fused call of steps 5-6; took effect after step 6, its last step)",
        "budget",
    )


class BoxedCallsThatStop(BoxedCalls):
    """``BoxedCalls`` whose ``stop_after`` stops once x passed 3.7 (after step 4: x is 2, 3,
    3.5, 3.75), from the step's number and host values."""

    def __init__(self):
        super().__init__()
        self.asked = []

    def stop_after(self, step, values):
        self.asked.append((step, float(values["x"])))
        return f"x reached {float(values['x'])} at step {step}" if values["x"] > 3.7 else None


def test_a_compiled_calls_strategy_is_asked_stop_after_with_each_steps_number_and_values():
    """After a compiled call (which cannot ask it), the Trainer hands each step's record to the
    callbacks and asks the strategy, once a step, with the step's number and its host values."""

    class Seen(sl.Callback):
        def on_step_end(self, trainer, record):
            pass

    strategy = BoxedCallsThatStop()
    result = sl.Trainer(strategy, [Seen()], steps_per_call=2).run(max_steps=10)
    assert strategy.asked == [(1, 2.0), (2, 3.0), (3, 3.5), (4, 3.75)]
    assert (result.steps, result.status, result.stop_reason) == (
        4,
        "nonfinite",
        "x reached 3.75 at step 4",
    )
