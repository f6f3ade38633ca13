"""A small Keras model trained on synthetic data fed through `data=` (a tf.data pipeline)."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep

rng = np.random.default_rng(0)
features = rng.normal(size=(2048, 10)).astype("float32")
teacher = rng.normal(size=(10, 3)).astype("float32")
labels = np.argmax(features @ teacher, axis=1)
dataset = (
    tf.data.Dataset.from_tensor_slices((features, labels))
    .shuffle(2048, seed=0)
    .batch(64)
    .repeat(8)
    .prefetch(tf.data.AUTOTUNE)
)

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((10,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)]
)
cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def loss(batch):
    x, y = batch
    logits = model(x, training=True)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=1), tf.cast(y, tf.int64)), tf.float32)
    # "values" are reported in each StepRecord and the history, not differentiated
    return {"loss": cross_entropy(y, logits), "values": {"accuracy": tf.reduce_mean(correct)}}


csv_path = os.path.join(tempfile.mkdtemp(), "mlp.csv")
trainer = sl.Trainer(
    TapeStep(loss, keras.optimizers.Adam(1e-2), var_list=model.trainable_variables),
    data=dataset,
    callbacks=[
        sl.EarlyStopping(patience=100, min_delta=1e-4),
        sl.StopOnNaN(),
        sl.PrintLogger(every=64, variables=False, gradients=False),
        sl.CSVLogger(csv_path),
    ],
)
result = trainer.run()
accuracy = float(np.mean(np.argmax(model(features), axis=1) == labels))
with open(csv_path) as handle:
    header = handle.readline().strip()
    rows = sum(1 for _ in handle)
batch_accuracy = result.history["accuracy"]
print(f"keras mlp: {result.steps} steps ({result.status}: {result.stop_reason})")
print(
    f"batch accuracy {batch_accuracy[:10].mean():.3f} over the first 10 steps, "
    f"{batch_accuracy[-10:].mean():.3f} over the last 10"
)
print(
    f"loss {result.history['loss'][0]:.3f} -> {result.loss:.3f}, training accuracy {accuracy:.3f}, "
    f"{rows} rows in {os.path.basename(csv_path)} ({header})"
)
