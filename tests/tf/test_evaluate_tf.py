"""TensorFlow: TFStep.evaluate (no tape, no update), Evaluate on a tf.data.Dataset, fused calls
equal to plain ones, and ReduceLROnPlateau on a Keras optimizer's rate."""

import numpy as np
import pytest

import steploop as sl
from steploop.tf import MinimizeStep, TapeStep

XS = np.array([1.0, 2.0, 3.0, 4.0], "float32")
YS = np.array([1.0, 2.0, 3.0, 0.0], "float32")


def regression(tf, keras, **options):
    w = tf.Variable(0.5, name="w")

    def loss(batch):
        xs, ys = batch
        error = w * xs - ys
        return {"loss": tf.reduce_mean(error**2), "values": {"mae": tf.reduce_mean(abs(error))}}

    return w, TapeStep(loss, keras.optimizers.SGD(0.01), **options)


@pytest.mark.parametrize("compile", [True, False])
def test_evaluate_is_the_loss_without_an_update(tf, keras, compile):
    """evaluate(batch): host floats of the loss and values at w; w and the optimiser unchanged."""
    w, step = regression(tf, keras, compile=compile)
    step.step((XS, YS))
    before, iterations = w.numpy(), int(step.optimizer.iterations)
    got = step.evaluate((XS, YS))
    error = before * XS - YS
    assert got == pytest.approx({"loss": np.mean(error**2), "mae": np.mean(abs(error))}, 1e-6)
    assert all(type(value) is float for value in got.values())
    assert (w.numpy(), int(step.optimizer.iterations)) == (before, iterations)


def test_evaluate_on_a_dataset_is_weighted_by_batch_size(tf, keras):
    """A tf.data.Dataset of batches of 3 and 1 rows: the mean over the 4 rows."""
    w, step = regression(tf, keras)
    validation = tf.data.Dataset.from_tensor_slices((XS, YS)).batch(3)
    evaluate = sl.Evaluate(validation)
    trainer = sl.Trainer(step, [evaluate], data=[(XS, YS)] * 2)
    trainer.run()
    error = w.numpy() * XS - YS
    assert trainer.history["val_loss"][-1] == pytest.approx(np.mean(error**2), rel=1e-6)
    assert evaluate.results["val_mae"] == pytest.approx(np.mean(abs(error)), rel=1e-6)


def test_fused_equals_plain_with_early_stopping_on_val_loss(tf, keras):
    """steps_per_call=4 against 1: the same history (val columns too), stop step and w."""

    def go(k):
        w, step = regression(tf, keras)
        data = [(XS * s, YS) for s in (1.0, 1.5, 0.5, 2.0)] * 5
        callbacks = [sl.Evaluate([(XS, YS)], every=3), sl.EarlyStopping(1, monitor="val_loss")]
        trainer = sl.Trainer(step, callbacks, data=data, steps_per_call=k)
        result = trainer.run()
        return trainer.history, result.steps, w.numpy().tobytes()

    plain, fused = go(1), go(4)
    assert plain[0] == fused[0] and plain[1:] == fused[1:]
    assert np.isfinite(plain[0]["val_loss"][2])


def test_reduce_lr_on_plateau_sets_the_keras_rate(tf, keras):
    """A flat loss, patience 1: the optimiser's rate halves after steps 2 and 3, fused or not."""

    def go(k):
        x = tf.Variable(1.0, name="x")
        step = MinimizeStep(lambda: 0.0 * x + 1.0, [x], keras.optimizers.SGD(0.5))
        trainer = sl.Trainer(step, [sl.ReduceLROnPlateau(factor=0.5, patience=1)], steps_per_call=k)
        trainer.run(max_steps=4)
        return trainer.history["lr"].tolist(), step.learning_rate

    assert go(1) == go(3) == ([0.5, 0.5, 0.25, 0.125], 0.0625)
