"""Checkpoint and resume: a Keras model on tf.data, killed mid-run, resumed exactly.

The first process trains with a checkpoint every 5 steps and is killed (SIGKILL) at step 13; a
second process builds the same program, restores the checkpoint of step 10 and finishes. Its
weights, history and stop step equal those of a run never interrupted.
"""

import os
import signal
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep


def build(folder, extra=()):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(96, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    data = tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).repeat(5)
    keras.utils.set_random_seed(0)
    layers = [keras.Input((4,)), keras.layers.Dense(8, "tanh"), keras.layers.Dense(1)]
    model = keras.Sequential(layers)

    def loss(batch):
        x, y = batch
        return tf.reduce_mean((model(x) - y) ** 2)

    step = TapeStep(loss, keras.optimizers.Adam(0.05), var_list=model.trainable_variables)
    callbacks = [sl.EarlyStopping(patience=10), sl.Checkpoint(folder, every=5, keep=2), *extra]
    return model, sl.Trainer(step, callbacks, data=data)


class Kill(sl.Callback):
    may_stop = False

    def on_step_end(self, trainer, record):
        if record.step == 13:
            os.kill(os.getpid(), signal.SIGKILL)


if len(sys.argv) == 3 and sys.argv[1] == "--die-at-13":  # the first, doomed process
    build(sys.argv[2], extra=[Kill()])[1].run()
    sys.exit(0)

folder = tempfile.mkdtemp()
died = subprocess.run([sys.executable, __file__, "--die-at-13", folder], check=False)
print(f"first process killed by signal {-died.returncode} (SIGKILL is {int(signal.SIGKILL)})")

model, trainer = build(folder)
restored = trainer.restore(folder)
result = trainer.run()
print(f"restored step {restored}, then {result.steps} steps in all: {result.status}")

reference_model, reference = build(tempfile.mkdtemp())
expected = reference.run()
same_weights = all(
    np.array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.weights, reference_model.weights, strict=True)
)
print(f"same stop step as an uninterrupted run: {result.steps == expected.steps}")
print(f"same history: {trainer.history == reference.history}")
print(f"same weights (bit for bit): {same_weights}")
