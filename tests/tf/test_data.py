"""Data-driven TensorFlow steps: tf.data and NumPy batches, pieces equal one run, no retracing."""

import numpy as np
import pytest
from hypothesis import given, settings

import steploop as sl
from steploop.tf import PersistentTapeStep, TapeStep
from tests.strategies import pieces


def make_problem(tf, keras, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(96, 4)).astype("float32")
    targets = (features @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")).astype("float32")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )

    def loss(batch):
        x, y = batch
        return tf.reduce_mean((model(x) - y) ** 2)

    return model, loss, features, targets


def test_tf_data_dataset_feeds_every_batch_once(tf, keras):
    model, loss, features, targets = make_problem(tf, keras)
    dataset = tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).repeat(3)
    step = TapeStep(loss, keras.optimizers.Adam(0.01), var_list=model.trainable_variables)
    result = sl.Trainer(step, data=dataset).run()
    assert (result.steps, result.status) == (18, "exhausted")
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert step._function.experimental_get_tracing_count() <= 2


def test_numpy_batches_of_a_new_shape_do_not_retrace_every_step(tf, keras):
    model, loss, features, targets = make_problem(tf, keras)
    batches = [(features[i : i + 10], targets[i : i + 10]) for i in range(0, 96, 10)]  # last has 6
    step = TapeStep(loss, keras.optimizers.SGD(0.01), var_list=model.trainable_variables)
    assert sl.Trainer(step, data=batches * 3).run().steps == 30
    assert step._function.experimental_get_tracing_count() <= 3


@settings(max_examples=8)
@given(pieces(total_max=12))
def test_pieces_with_data_equal_one_run(tf, keras, piece_sizes):
    """A data-fed Keras model run as run(k1), run(k2), ..., run() ends where one run() ends."""

    def trainer():
        model, loss, features, targets = make_problem(tf, keras)
        batches = [(features[i : i + 16], targets[i : i + 16]) for i in range(0, 96, 16)] * 4
        step = TapeStep(loss, keras.optimizers.SGD(0.05), var_list=model.trainable_variables)
        return model, sl.Trainer(step, data=batches, callbacks=[sl.LossChangeBelow(1e-9)])

    model_one, one = trainer()
    whole = one.run()
    model_split, split = trainer()
    for size in piece_sizes:
        if split.run(max_steps=size).status != "budget":
            break
    result = split.run()
    assert (result.steps, result.status) == (whole.steps, whole.status)
    assert split.history == one.history
    for a, b in zip(model_one.get_weights(), model_split.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("compile", [True, False])
def test_persistent_tape_with_batches(tf, keras, compile):
    w = tf.Variable(0.0, name="w")

    def forward(batch):
        residual = w * batch[0] - batch[1]
        return {"loss": tf.reduce_mean(residual**2), "mean_residual": tf.reduce_mean(residual)}

    x = np.linspace(-1, 1, 8).astype("float32")
    data = [(x, 2 * x)] * 200
    strategy = PersistentTapeStep(forward, keras.optimizers.SGD(0.5), compile=compile)
    result = sl.Trainer(strategy, data=data, callbacks=[sl.GradientNormBelow(1e-5)]).run()
    assert result.status == "converged"
    assert w.numpy() == pytest.approx(2.0, abs=1e-4)
