"""EarlyStopping's messages, reasons, representation and state, in full."""

import logging

import numpy as np
import pytest

import steploop as sl
from steploop.numpy import GradientDescent
from steploop.records import StepRecord
from tests.helpers import raised_message
from tests.scripted import Scripted

REPR = "EarlyStopping(patience=2, min_delta=0, monitor='loss', mode='min')"


message = raised_message


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"patience": 0}, ValueError, "EarlyStopping patience must be an int >= 1, got 0"),
        (
            {"patience": 2, "min_delta": -1},
            ValueError,
            "EarlyStopping min_delta must be >= 0, got -1.0",
        ),
        ({"patience": 2, "monitor": 3}, TypeError, "EarlyStopping monitor must be a str, got int"),
        (
            {"patience": 2, "mode": "auto "},
            ValueError,
            "EarlyStopping mode must be 'min' or 'max' (or 'auto': from the monitored name), "
            "got 'auto '",
        ),
        (
            {"patience": 2, "restore_best_weights": None},
            TypeError,
            "EarlyStopping restore_best_weights must be a bool, got None (NoneType)",
        ),
        (
            {"patience": 2, "start_from": 1.5},
            TypeError,
            "EarlyStopping start_from must be an int, got 1.5 (float)",
        ),
    ],
)
def test_bad_arguments_are_named_in_full(kwargs, error, text):
    assert message(error, sl.EarlyStopping, **kwargs) == text


def test_the_repr_shows_what_differs_from_the_defaults():
    assert repr(sl.EarlyStopping(2)) == REPR
    assert repr(
        sl.EarlyStopping(
            2, min_delta=0.5, monitor="acc", baseline=0.25, start_from=3, restore_best_weights=True
        )
    ) == (
        "EarlyStopping(patience=2, min_delta=0.5, monitor='acc', mode='max', baseline=0.25, "
        "start_from=3, restore_best_weights=True)"
    )
    assert repr(sl.EarlyStopping(2, start_from=0, monitor="m", mode="max")) == (
        "EarlyStopping(patience=2, min_delta=0, monitor='m', mode='max')"
    )


def test_the_state_starts_empty_and_an_older_state_gains_the_baseline_flag():
    plain, based = sl.EarlyStopping(2), sl.EarlyStopping(2, baseline=1.0)
    assert np.isnan(plain.init()[0]) and plain.init()[1:] == (0.0, 0.0, 1.0)
    assert based.init()[1:] == (0.0, 0.0, 0.0)
    plain.set_state({"state": [1.0, 2.0, 0.0]})
    assert plain.state() == (1.0, 2.0, 0.0, 1.0)
    based.set_state({"state": ["1.5", 2, 1]})
    assert based.state() == (1.5, 2.0, 1.0, 0.0)
    based.set_state({"state": [1.0, 2.0, 1.0, 1.0]})
    assert based.get_state() == {"state": [1.0, 2.0, 1.0, 1.0]}


def test_the_stop_reason_in_steps():
    result = sl.Trainer(Scripted([3.0, 2.0, 2.0, 2.0]), [sl.EarlyStopping(2)]).run(max_steps=9)
    assert (result.steps, result.status) == (4, "converged")
    assert result.stop_reason == (
        f"{REPR}: loss did not improve by more than 0 for 2 step(s) (best 2 at step 2, "
        "stopped at step 4)"
    )


def test_a_value_monitor_missing_from_the_step_is_named():
    trainer = sl.Trainer(Scripted([1.0], values={"b": [1.0]}), [sl.EarlyStopping(2, monitor="a")])
    assert message(ValueError, trainer.run, max_steps=1) == (
        "EarlyStopping monitor='a' is not among the step's values ['b'] (or 'loss')"
    )


def test_a_value_monitor_is_read_from_the_values():
    values = {"acc": [0.5, 0.7, 0.6, 0.6]}
    early = sl.EarlyStopping(2, monitor="acc")
    result = sl.Trainer(Scripted([1.0] * 4, values=values), [early]).run(max_steps=9)
    assert result.steps == 4
    assert result.stop_reason.endswith(
        "acc did not improve by more than 0 for 2 step(s) (best 0.7 at step 2, stopped at step 4)"
    )


def test_a_published_monitor_counts_evaluations_and_says_so():
    evaluate = sl.Evaluate(every=1, fn=lambda: {"loss": 0.5})
    early = sl.EarlyStopping(1, monitor="val_loss")
    descent = GradientDescent(lambda x: (x**2, 2 * x), 1.0, learning_rate=0.1)
    result = sl.Trainer(descent, [evaluate, early]).run(max_steps=9)
    assert early.array_form is False and early.stops_at_sync is True
    assert result.steps == 2
    assert result.stop_reason == (
        "EarlyStopping(patience=1, min_delta=0, monitor='val_loss', mode='min'): val_loss did "
        "not improve by more than 0 for 1 evaluation(s) (best 0.5 at step 1, stopped at step 2)"
    )


def test_an_unwatched_criterion_has_an_array_form():
    early = sl.EarlyStopping(2)
    assert early.array_form is True and early.stops_at_sync is False
    early.watch(None)
    assert early.array_form is True


def test_the_copy_of_the_best_weights_goes_to_and_from_arrays():
    early = sl.EarlyStopping(2, restore_best_weights=True)
    assert early.get_arrays() == {} and early.needs_live_state is True
    assert sl.EarlyStopping(2).needs_live_state is False
    early.set_arrays({"step": np.array(3), "weights/w": np.ones(2), "other": np.zeros(1)})
    arrays = early.get_arrays()
    assert sorted(arrays) == ["step", "weights/w"]
    assert arrays["step"].dtype == np.int64 and int(arrays["step"]) == 3
    assert arrays["weights/w"].tolist() == [1.0, 1.0]
    early.set_arrays({"weights/w": np.ones(2)})
    assert early.get_arrays() == {}


def test_inside_a_composite_with_fused_calls_the_refusal_names_both():
    early = sl.EarlyStopping(2, restore_best_weights=True)
    descent = GradientDescent(lambda x: (x**2, 2 * x), 1.0, learning_rate=0.1)
    trainer = sl.Trainer(descent, [early | sl.MaxSteps(5)], steps_per_call=3)
    assert message(ValueError, trainer.run) == (
        "EarlyStopping(patience=2, min_delta=0, monitor='loss', mode='min', "
        "restore_best_weights=True) is part of a composite criterion: with restore_best_weights "
        "and steps_per_call=3 it must be a callback of its own (Trainer(callbacks=[early, "
        "MaxSteps(n)]), not early | MaxSteps(n))"
    )


def test_the_validation_names_the_strategy():
    early = sl.EarlyStopping(2, restore_best_weights=True)

    class FakeTrainer:
        strategy = Scripted([1.0])

    assert early.validate(FakeTrainer()) == (
        "needs a strategy with get_weights() and set_weights() "
        "(steploop.capabilities.WeightsCopyable) to restore the best weights; Scripted has none"
    )
    assert sl.EarlyStopping(2).validate(FakeTrainer()) is None


def steps_run(losses, early, values=None):
    strategy = Scripted(losses, values=values)
    result = sl.Trainer(strategy, [early]).run(max_steps=len(losses))
    return result


def test_min_delta_in_min_mode_asks_for_a_lower_value():
    assert steps_run([3.0, 2.5, 2.5, 2.5], sl.EarlyStopping(1, min_delta=1.0)).steps == 2
    assert steps_run([3.0, 1.5, 1.5, 1.5], sl.EarlyStopping(1, min_delta=1.0)).steps == 3


def test_an_equal_value_is_no_improvement_in_max_mode():
    values = {"acc": [0.5, 0.5, 0.5]}
    early = sl.EarlyStopping(1, monitor="acc")
    assert steps_run([1.0] * 3, early, values).steps == 2


def test_the_first_step_that_beats_the_baseline_improves_though_not_by_min_delta():
    """4.5 misses the baseline 5 by less than min_delta 1; 3.9 beats it but not the best 4.5 by
    more than 1: it still counts, as the first step that beats the baseline."""
    early = sl.EarlyStopping(2, min_delta=1.0, baseline=5.0)
    result = steps_run([4.5, 3.9, 3.9, 3.9, 3.9], early)
    assert result.steps == 4
    assert result.stop_reason.endswith("(best 3.9 at step 2, stopped at step 4)")
    assert early.get_state() == {"state": [3.9, 2.0, 2.0, 1.0]}


def test_a_beaten_baseline_stays_beaten():
    early = sl.EarlyStopping(2, baseline=5.0)
    result = steps_run([10.0, 4.0, 6.0, 6.0], early)
    assert result.steps == 4
    assert result.stop_reason.endswith("(best 4 at step 2, stopped at step 4)")
    assert early.get_state() == {"state": [4.0, 2.0, 2.0, 1.0]}


def test_set_arrays_without_a_copy_on_a_fresh_criterion():
    early = sl.EarlyStopping(2, restore_best_weights=True)
    early.set_arrays({})
    assert early.get_arrays() == {}


class Weights:
    """A strategy stand-in with get_weights/set_weights."""

    def __init__(self, weights):
        self.weights, self.set = weights, []

    def get_weights(self):
        return self.weights

    def set_weights(self, weights):
        self.set.append(weights)


class WithStrategy:
    def __init__(self, strategy):
        self.strategy = strategy


def test_a_stop_without_a_copy_of_the_best_step_says_so(caplog):
    early = sl.EarlyStopping(1, restore_best_weights=True)
    early.load((1.0, 2.0, 0.0, 1.0))  # as resumed: best 1 at step 2, no copy
    trainer = WithStrategy(Weights({"w": np.ones(1)}))
    with caplog.at_level(logging.WARNING, logger="steploop"):
        stop = early.check(trainer, StepRecord(step=3, loss=5.0))
    name = repr(early)
    assert stop.reason == (
        f"{name}: loss did not improve by more than 0 for 1 step(s) (best 1 at step 2, stopped "
        "at step 3, not restored: no copy of step 2's variables after the resume)"
    )
    assert stop.status == "converged"
    assert caplog.messages == [
        f"{name}: no copy of the variables of the best step 2 (the run resumed after it); the "
        "variables stay those of step 3"
    ]
    assert trainer.strategy.set == []


def test_the_copy_is_taken_at_the_best_step_and_set_back_at_the_stop():
    early = sl.EarlyStopping(1, restore_best_weights=True)
    strategy = Weights({"w": np.ones(1)})
    trainer = WithStrategy(strategy)
    assert early.check(trainer, StepRecord(step=1, loss=2.0)) is None
    strategy.weights = {"w": np.zeros(1)}
    stop = early.check(trainer, StepRecord(step=2, loss=3.0))
    assert stop.reason.endswith("(best 2 at step 1, stopped at step 2, best weights restored)")
    assert [w["w"].tolist() for w in strategy.set] == [[1.0]]


def test_a_copy_that_is_not_a_mapping_is_not_saved(caplog):
    early = sl.EarlyStopping(1, restore_best_weights=True)
    early.check(WithStrategy(Weights([np.ones(1)])), StepRecord(step=1, loss=2.0))
    with caplog.at_level(logging.WARNING, logger="steploop"):
        assert early.get_arrays() == {}
    assert caplog.messages == [
        f"{early!r}: the strategy's get_weights() returned list, not arrays by variable name: "
        "the copy of step 1's variables is not saved with the checkpoint"
    ]
