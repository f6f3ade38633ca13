"""The Keras workflow in steploop: epochs, validation every epoch, ReduceLROnPlateau and
EarlyStopping on val_loss with the best weights restored.

What Keras writes as ``model.fit(x, y, epochs=60, validation_data=(xv, yv), callbacks=[
ReduceLROnPlateau(...), EarlyStopping(..., restore_best_weights=True)])`` is here a ``TapeStep``
over a Keras model and a ``Trainer`` with ``epochs=60``: ``Evaluate`` computes ``val_loss`` on
the held-out rows at the end of every epoch, and the two callbacks after it read that value.
``tests/tf/test_keras_workflow.py`` redoes the run with a hand-written loop and checks the
numbers printed here.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep

EPOCHS, BATCH, SHUFFLE = 60, 32, 7
LEARNING_RATE = 0.05
PLATEAU = {"factor": 0.5, "patience": 2}
EARLY = {"patience": 5, "min_delta": 1e-4}


def problem():
    """The data (256 training rows, 64 held out; noisy linear targets) and a fresh model."""
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(320, 4)).astype("float32")
    ys = (xs @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=0.5, size=320)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    return (xs[:256], ys[:256]), (xs[256:], ys[256:]), model


def mean_squared_error(model, batch):
    x, y = batch
    return tf.reduce_mean(tf.square(model(x)[:, 0] - y))


def main():
    train, held_out, model = problem()
    step = TapeStep(
        lambda batch: mean_squared_error(model, batch),
        keras.optimizers.Adam(LEARNING_RATE),
        var_list=model.trainable_variables,
    )
    callbacks = [
        sl.Evaluate(sl.batches(held_out, batch_size=64), every=sl.every(epochs=1)),
        sl.ReduceLROnPlateau(monitor="val_loss", **PLATEAU),
        sl.EarlyStopping(monitor="val_loss", restore_best_weights=True, **EARLY),
    ]
    data = sl.batches(train, batch_size=BATCH, shuffle=SHUFFLE)
    trainer = sl.Trainer(step, callbacks, data=data, epochs=EPOCHS)
    result = trainer.run()

    history = trainer.history
    ends = ~np.isnan(history["val_loss"])  # the last step of every epoch
    for epoch, val_loss, lr in zip(
        history["epoch"][ends], history["val_loss"][ends], history["lr"][ends], strict=True
    ):
        print(f"epoch {epoch:2d}: val_loss {val_loss:.6f}, lr {lr:g}")
    epochs_run = int(history["epoch"][-1])
    best = int(np.argmin(history["val_loss"][ends])) + 1
    print(f"{result.status} after epoch {epochs_run} ({result.steps} steps): {result.stop_reason}")
    restored = float(mean_squared_error(model, held_out))
    print(f"best epoch {best}; val_loss with the restored weights {restored:.6f}")


if __name__ == "__main__":
    main()
