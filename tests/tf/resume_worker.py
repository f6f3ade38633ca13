"""A training run for the resume tests, run in a subprocess: it restores from ``--dir`` if it can,
saves checkpoints there, may SIGKILL itself at ``--kill-at``, and writes what it ended with.

python -m tests.tf.resume_worker --model MODEL --dir D --out F [--kill-at K]

MODEL is one of ``MODELS``; the ``*_nolist`` ones give no var_list: their Keras model is built
lazily, at its first call, so the resumed process finds its variables at its first step.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import PersistentTapeStep, TapeStep
from tests.resume import worker_main


def quadratic():
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1), var_list=[x])
    criteria = [sl.LossBelow(1e-12) | sl.MaxSteps(200), sl.LossChangeBelow(1e-15, patience=3)]
    return step, criteria, None, 1, 7, lambda: [x.numpy()]


def keras_model():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    data = tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).repeat(4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )

    def loss(batch):
        x, y = batch
        return tf.reduce_mean((model(x) - y) ** 2)

    step = TapeStep(loss, keras.optimizers.Adam(0.01), var_list=model.trainable_variables)
    criteria = [sl.EarlyStopping(patience=20), sl.StopOnNaN()]
    return step, criteria, data, 4, 5, lambda: [w.numpy() for w in model.weights]


def keras_nolist(persistent=False):
    """A model without an Input (its variables exist after its first call), no var_list."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(120, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    data = tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).repeat(4)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])

    def loss(batch):
        x, y = batch
        return tf.reduce_mean((model(x) - y) ** 2)

    optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    if persistent:  # eager: the resumed process calls the loss once to find the variables
        step = PersistentTapeStep(lambda batch: {"loss": loss(batch)}, optimizer, compile=False)
    else:
        step = TapeStep(loss, optimizer)
    criteria = [sl.EarlyStopping(patience=20), sl.StopOnNaN()]
    per_call = 1 if persistent else 4
    return step, criteria, data, per_call, 5, lambda: [w.numpy() for w in model.weights]


MODELS = {
    "quadratic": quadratic,
    "keras": keras_model,
    "keras_nolist": keras_nolist,
    "persistent_nolist": lambda: keras_nolist(persistent=True),
}


if __name__ == "__main__":
    worker_main(MODELS)
