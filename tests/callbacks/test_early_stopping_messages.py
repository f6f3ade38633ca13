"""EarlyStopping's messages, reasons, representation and state, in full."""

import numpy as np
import pytest

import steploop as sl
from steploop.numpy import GradientDescent
from tests.scripted import Scripted

REPR = "EarlyStopping(patience=2, min_delta=0, monitor='loss', mode='min')"


def message(error, call, *args, **kwargs):
    with pytest.raises(error) as raised:
        call(*args, **kwargs)
    assert type(raised.value) is error
    return str(raised.value)


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
