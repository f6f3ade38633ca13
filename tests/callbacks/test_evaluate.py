"""Evaluate: held-out loss and values at its steps, no update, exact in fused calls, and what
EarlyStopping(monitor="val_loss") does with it."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop.numpy import GradientDescent
from tests.scripted import Scripted

XS = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
YS = 3.0 * XS + 1.0
#: held-out batches of 3 and 1 rows: a weighted mean differs from the mean of the batch means
VAL = [(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])), (np.array([4.0]), np.array([0.0]))]


def fit(w, batch):
    """Least squares of y = w x on a batch, with the mean absolute error as a value."""
    xs, ys = batch
    error = w * xs - ys
    outputs = {"loss": float(np.mean(error**2)), "values": {"mae": float(np.mean(abs(error)))}}
    return outputs, float(np.mean(2 * error * xs))


def regression(learning_rate=0.02):
    return GradientDescent(fit, 0.0, learning_rate=learning_rate)


def train_batches():
    return sl.batches((XS, YS), batch_size=2)


def by_hand(w):
    """The validation loss and mae at w: each batch's means weighted by its 3 and 1 rows."""
    rows = [(w * xs - ys) for xs, ys in VAL]
    loss = (3 * np.mean(rows[0] ** 2) + 1 * np.mean(rows[1] ** 2)) / 4
    mae = (3 * np.mean(abs(rows[0])) + 1 * np.mean(abs(rows[1]))) / 4
    return loss, mae


def weights_after(steps):
    """w after each of ``steps`` training steps (no Evaluate)."""
    gd, seen = regression(), []
    trainer = sl.Trainer(gd, data=train_batches())
    for _ in trainer.iterate(max_steps=steps):
        seen.append(float(gd.params["x"]))
    return seen


@pytest.mark.parametrize("k", [1, 2, 8])
def test_val_columns_equal_a_hand_computation_at_the_scheduled_steps(k):
    """val_loss/val_mae at steps 2 and 3 equal the batch-size-weighted means by hand; nan else."""
    gd = regression()
    trainer = sl.Trainer(gd, [sl.Evaluate(VAL, every=2)], data=train_batches(), steps_per_call=k)
    assert trainer.run().steps == 3
    ws = weights_after(3)
    loss, mae = by_hand(ws[1])
    assert trainer.history["val_loss"].tolist()[0] != trainer.history["val_loss"].tolist()[0]
    assert trainer.history["val_loss"][1] == pytest.approx(loss, rel=1e-15)
    assert trainer.history["val_mae"][1] == pytest.approx(mae, rel=1e-15)
    assert np.isnan(trainer.history["val_loss"][2])
    assert float(gd.params["x"]) == ws[2]  # evaluating updated nothing


def test_weighting_is_by_batch_size_and_a_plain_mean_without_one():
    """Arrays: weighted by their rows; scalar batches (no leading dimension): the plain mean."""
    evaluate = sl.Evaluate(VAL)
    trainer = sl.Trainer(regression(), [evaluate], data=train_batches())
    assert evaluate.evaluate(trainer)["val_loss"] == pytest.approx(by_hand(0.0)[0], rel=1e-15)
    assert by_hand(0.0)[0] != pytest.approx((np.mean([1, 4, 9]) + 0.0) / 2)
    targets = GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 1.0, learning_rate=0.1)
    plain = sl.Evaluate([3.0, 5.0, 9.0])
    trainer = sl.Trainer(targets, [plain], data=[1.0])
    assert plain.evaluate(trainer) == {"val_loss": (4.0 + 16.0 + 64.0) / 3}


def test_without_data_it_evaluates_the_loss_at_the_current_variables():
    """data=None: val_loss after step s is the loss step s + 1 starts from (no update made)."""
    gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
    trainer = sl.Trainer(gd, [sl.Evaluate(every=sl.at(2, 5))])
    trainer.run(max_steps=6)
    loss, val = trainer.history["loss"], trainer.history["val_loss"]
    assert (val[1], val[4]) == (loss[2], loss[5])
    assert np.isnan(val[[0, 2, 3, 5]]).all()


def test_results_are_published_to_the_later_callbacks_of_the_same_step():
    """A callback after Evaluate reads its results (published_at, results) at that step."""
    seen = []

    class Reader(sl.Callback):
        def on_step_end(self, trainer, record):
            seen.append((record.step, evaluate.published_at(record.step)))

    evaluate = sl.Evaluate([3.0], every=2)
    gd = GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=0.5)
    sl.Trainer(gd, [evaluate, Reader()], data=[4.0] * 3).run()
    assert seen == [(1, None), (2, {"val_loss": 1.0}), (3, None)]
    assert evaluate.results == {"val_loss": 1.0}


def test_batches_data_is_read_as_its_first_epoch_each_time():
    """sl.batches(...) evaluation data is not advanced: every evaluation reads epoch 0."""
    data = sl.batches((XS, YS), batch_size=4, shuffle=7)
    evaluate = sl.Evaluate(data)
    trainer = sl.Trainer(regression(), [evaluate], data=train_batches())
    first = evaluate.evaluate(trainer)
    assert evaluate.evaluate(trainer) == first
    assert len(list(iter(data))) == 2  # and a user's iteration is unaffected


def test_fn_replaces_the_strategy_evaluate():
    """fn is called with each batch; a strategy without evaluate works with it."""
    calls = []

    def fn(batch):
        calls.append(batch)
        return {"loss": batch * 2.0, "acc": 1.0}

    trainer = sl.Trainer(Scripted([1.0] * 2), [sl.Evaluate([1.0, 2.0], fn=fn), sl.MaxSteps(2)])
    trainer.run()
    assert trainer.history["val_loss"].tolist() == [3.0, 3.0]
    assert trainer.history["val_acc"].tolist() == [1.0, 1.0]
    assert calls == [1.0, 2.0, 1.0, 2.0]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: sl.Evaluate(iter([1.0])),
            TypeError,
            "Evaluate data must be re-iterable, as it is read at every evaluation; got a "
            "list_iterator",
        ),
        (
            lambda: sl.Evaluate("abc"),
            TypeError,
            "Evaluate data must be None or a re-iterable of batches",
        ),
        (lambda: sl.Evaluate([1.0], every=0), ValueError, "Evaluate every must be an int >= 1"),
        (
            lambda: sl.Evaluate([1.0], prefix=""),
            TypeError,
            "Evaluate prefix must be a non-empty str, got ''",
        ),
        (lambda: sl.Evaluate([1.0], fn=1), TypeError, "Evaluate fn must be None or a function"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    """Each bad argument raises an error naming it."""
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_a_strategy_that_cannot_evaluate_is_refused_at_build():
    """Without Evaluates and without fn: a TypeError naming the capability."""
    with pytest.raises(
        TypeError,
        match=re.escape(
            "callbacks[0] Evaluate(every=1, prefix='val_') needs a strategy that evaluates without "
            "updating (steploop.capabilities.Evaluates), or Evaluate(fn=...); Scripted has none"
        ),
    ):
        sl.Trainer(Scripted([1.0]), [sl.Evaluate([1.0])])


def test_empty_data_and_changing_values_are_named():
    """No batch, or batches reporting different values: a ValueError at the evaluation."""
    trainer = sl.Trainer(regression(), [sl.Evaluate([])], data=train_batches())
    with pytest.raises(ValueError, match="Evaluate data has no batch"):
        trainer.run()
    fn = iter([{"loss": 1.0}, {"loss": 1.0, "acc": 0.5}])
    trainer = sl.Trainer(Scripted([1.0]), [sl.Evaluate([1, 2], fn=lambda b: next(fn))])
    with pytest.raises(
        ValueError,
        match=re.escape("Evaluate: batch 1 gave the values ['acc', 'loss'], batch 0 gave ['loss']"),
    ):
        trainer.run(max_steps=1)


# -- EarlyStopping on a published monitor -----------------------------------------------------
def drifting(learning_rate=0.2):
    """x follows the training targets; the validation target 4 is nearest at steps 2, 4."""
    return GradientDescent(
        lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=learning_rate
    )


TARGETS = [4.0, 4.0, 4.0, 4.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]


@pytest.mark.parametrize("k", [1, 3, 16])
def test_early_stopping_on_val_loss_counts_evaluations(k):
    """patience=2 on val_loss every 2 steps: best at step 4, stops at step 8 (2 evaluations)."""
    evaluate = sl.Evaluate([4.0], every=2)
    early = sl.EarlyStopping(2, monitor="val_loss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact: no host-stopper warning
        trainer = sl.Trainer(drifting(), [evaluate, early], data=TARGETS, steps_per_call=k)
    result = trainer.run()
    val = trainer.history["val_loss"]
    assert int(np.nanargmin(val)) + 1 == 4
    assert (result.steps, result.status) == (8, "converged")
    assert result.stop_reason == (
        "EarlyStopping(patience=2, min_delta=0, monitor='val_loss', mode='min'): val_loss did "
        f"not improve by more than 0 for 2 evaluation(s) (best {val[3]:.6g} at step 4, stopped "
        "at step 8)"
    )


def test_a_publisher_listed_after_its_monitor_is_refused():
    """EarlyStopping before the Evaluate it monitors: a ValueError naming both at build."""
    early, evaluate = sl.EarlyStopping(2, monitor="val_loss"), sl.Evaluate([4.0])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "callbacks[0] EarlyStopping(patience=2, min_delta=0, monitor='val_loss', mode='min') "
            "monitors 'val_loss', which callbacks[1] Evaluate(every=1, prefix='val_') publishes "
            "after it in the same step; list Evaluate(every=1, prefix='val_') before"
        ),
    ):
        sl.Trainer(drifting(), [early, evaluate], data=TARGETS)
    with pytest.raises(ValueError, match="publishes after it"):  # also inside a composite
        sl.Trainer(drifting(), [early | sl.MaxSteps(3), evaluate], data=TARGETS)


@pytest.mark.parametrize("make", [lambda path: sl.CSVLogger(path), lambda path: sl.PrintLogger()])
def test_a_logger_listed_before_the_evaluate_is_refused(tmp_path, make):
    """A logger reports what the callbacks before it logged: listed before the Evaluate, it
    would report val_loss as missing at every step; a ValueError naming both at build, also
    when either is wrapped (Every, nested, or a CallbackList)."""
    logger, evaluate = make(str(tmp_path / "log.csv")), sl.Evaluate([4.0], every=2)
    with pytest.raises(ValueError) as refused:
        sl.Trainer(drifting(), [logger, evaluate], data=TARGETS)
    assert str(refused.value) == (
        f"callbacks[0] {logger!r} reports the columns the callbacks before it log, and "
        "callbacks[1] Evaluate(every=2, prefix='val_') logs columns after it in the same step "
        "(it would report them as missing, nan, at every step); list "
        f"Evaluate(every=2, prefix='val_') before {logger!r}"
    )
    wrapped = [
        [sl.MaxSteps(3), logger.every(2), evaluate],
        [sl.Every(logger.every(1), 2), evaluate],
        [sl.CallbackList([logger]), evaluate],
        [logger, sl.Every(evaluate, 2)],
    ]
    for callbacks in wrapped:
        with pytest.raises(ValueError, match=r"logs columns after it in the same step"):
            sl.Trainer(drifting(), callbacks, data=TARGETS)
    sl.Trainer(drifting(), [evaluate, logger], data=TARGETS)  # after it: accepted
    second = sl.Evaluate([5.0], prefix="test_")
    with pytest.raises(ValueError, match=r"^callbacks\[1\] .* and callbacks\[2\] Evaluate\("):
        sl.Trainer(drifting(), [evaluate, logger, second], data=TARGETS)


def test_a_csv_logger_after_the_evaluate_writes_its_losses(tmp_path):
    path = tmp_path / "log.csv"
    trainer = sl.Trainer(
        drifting(), [sl.Evaluate([4.0], every=2), sl.CSVLogger(str(path)), sl.MaxSteps(4)],
        data=TARGETS,
    )
    trainer.run()
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert rows[0] == ["step", "loss", "val_loss"]
    val = trainer.history["val_loss"]
    assert [row[2] for row in rows[1:]] == ["nan", repr(float(val[1])), "nan", repr(float(val[3]))]


@pytest.mark.parametrize("k", [1, 4])
def test_an_unknown_monitor_is_named_at_the_first_step_it_should_exist(k):
    """val_acc, which Evaluate does not report: a ValueError at its first evaluation (step 3);
    val_loss with no Evaluate at all: at step 1."""
    evaluate = sl.Evaluate([4.0], every=3)
    trainer = sl.Trainer(
        drifting(),
        [evaluate, sl.EarlyStopping(2, monitor="val_acc")],
        data=TARGETS,
        steps_per_call=k,
    )
    with pytest.raises(ValueError, match=re.escape("monitor='val_acc' is not among the step's")):
        trainer.run()
    assert trainer.step == 3
    trainer = sl.Trainer(drifting(), [sl.EarlyStopping(2, monitor="val_loss")], data=TARGETS)
    with pytest.raises(ValueError, match=re.escape("monitor='val_loss' is not among the step")):
        trainer.run()
    assert trainer.step == 1


def test_early_stopping_on_val_loss_resumes_from_a_checkpoint(tmp_path):
    """Stopped mid-plateau and restored in a new Trainer: the same stop step and history."""

    def build():
        callbacks = [
            sl.Evaluate([4.0], every=2),
            sl.EarlyStopping(2, monitor="val_loss"),
            sl.Checkpoint(tmp_path, every=2),
        ]
        return sl.Trainer(drifting(), callbacks, data=TARGETS, steps_per_call=3)

    whole = sl.Trainer(
        drifting(),
        [sl.Evaluate([4.0], every=2), sl.EarlyStopping(2, monitor="val_loss")],
        data=TARGETS,
    )
    expected = whole.run()
    build().run(max_steps=6)  # the best was at step 4; one evaluation without improvement
    resumed = build()
    assert resumed.restore(tmp_path) == 6
    result = resumed.run()
    assert (result.steps, result.stop_reason) == (expected.steps, expected.stop_reason)
    assert resumed.history == whole.history


@st.composite
def evaluated_runs(draw):
    targets = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30))
    every = draw(st.integers(1, 6))
    return targets, every, draw(st.integers(0, 3)), draw(st.integers(2, 12))


@given(evaluated_runs())
def test_fused_equals_step_by_step(run):
    """Any schedule, patience and steps_per_call: history, stop and variables equal k=1's."""
    targets, every, patience, k = run

    def go(steps_per_call):
        gd = drifting(0.3)
        callbacks = [
            sl.Evaluate([1.0, -2.0], every=every),
            sl.EarlyStopping(patience + 1, monitor="val_loss"),
        ]
        trainer = sl.Trainer(gd, callbacks, data=targets, steps_per_call=steps_per_call)
        result = trainer.run()
        return trainer.history, result.steps, result.stop_reason, gd.params["x"].tobytes()

    plain, fused = go(1), go(k)
    assert plain[0] == fused[0]
    assert plain[1:] == fused[1:]
