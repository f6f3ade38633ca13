"""A training run for the resume tests, run in a subprocess: it restores from ``--dir`` if it can,
saves checkpoints there, may SIGKILL itself at ``--kill-at``, and writes what it ended with.

python -m tests.tf.resume_worker --model MODEL --dir D --out F [--kill-at K]

MODEL is one of ``MODELS``; the ``*_nolist`` ones give no var_list: their Keras model is built
lazily, at its first call, so the resumed process finds its variables at its first step. The
``plateau*`` and ``early*`` ones are ``tests.numpy_resume_worker``'s problems on a TapeStep with
a Keras SGD whose learning rate is a number (so ``ReduceLROnPlateau`` can set it).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import PersistentTapeStep, TapeStep
from tests import numpy_resume_worker as design
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


def plateau(per_call=1):
    """A scripted loss (one number a batch) plus a small quadratic; see ``tests.plateau_resume``."""
    w = tf.Variable(np.array(design.PLATEAU_START, "float32"), name="w")
    target = tf.constant(design.PLATEAU_TARGET, tf.float32)
    data = tf.data.Dataset.from_tensor_slices(np.array(design.PLATEAU_SCRIPT, "float32"))

    def loss(scripted):
        return scripted + 0.01 * tf.reduce_sum((w - target) ** 2)

    step = TapeStep(loss, keras.optimizers.SGD(0.1), var_list=[w])
    criteria = [sl.ReduceLROnPlateau(**design.PLATEAU_ARGS)]
    return step, criteria, data, per_call, design.PLATEAU_EVERY, lambda: {"w": w.numpy()}


def early(per_call=1, restore=True):
    """Train towards TRAIN, evaluate against VAL: val_loss is best at step 18, the stop at 26."""
    w = tf.Variable(tf.zeros(2), name="w")
    train = np.array([design.TRAIN] * design.EARLY_BATCHES, "float32")
    data = tf.data.Dataset.from_tensor_slices(train)

    def loss(target):
        return tf.reduce_mean((w - target) ** 2)

    step = TapeStep(loss, keras.optimizers.SGD(design.EARLY_LR), var_list=[w])
    criteria = [
        sl.Evaluate([np.array(design.VAL, "float32")], every=design.EARLY_EVAL_EVERY),
        sl.EarlyStopping(design.EARLY_PATIENCE, monitor="val_loss", restore_best_weights=restore),
    ]
    return step, criteria, data, per_call, design.EARLY_EVERY, lambda: {"w": w.numpy()}


MODELS = {
    "quadratic": quadratic,
    "keras": keras_model,
    "keras_nolist": keras_nolist,
    "persistent_nolist": lambda: keras_nolist(persistent=True),
    "plateau": plateau,
    "plateau_fused": lambda: plateau(design.FUSED),
    "early": early,
    "early_fused": lambda: early(design.FUSED),
    "early_norestore": lambda: early(restore=False),
}


if __name__ == "__main__":
    worker_main(MODELS)
