"""A strategy of your own: two models, two optimisers, one persistent tape, in a few lines.

An autoencoder whose encoder learns with Adam and whose decoder learns with SGD; both get their
gradients from the same persistent tape, which is dropped as soon as the step is done.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import unique_names


class TwoOptimizers(sl.StepStrategy):
    reports_gradients = True

    def __init__(self, encoder, decoder):
        self.parts = [(encoder, keras.optimizers.Adam(1e-2)), (decoder, keras.optimizers.SGD(0.1))]

    @tf.function
    def _update(self, batch):
        with tf.GradientTape(persistent=True) as tape:
            encoder, decoder = (model for model, _ in self.parts)
            loss = tf.reduce_mean((decoder(encoder(batch)) - batch) ** 2)
        grads = []
        for model, optimizer in self.parts:
            g = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(g, model.trainable_variables, strict=True))
            grads += g
        del tape  # one tape, two gradients, released before the step returns
        return loss, grads

    def step(self, batch):
        loss, grads = self._update(batch)
        variables = [v for model, _ in self.parts for v in model.trainable_variables]
        names = unique_names(variables)
        return sl.StepOutput(loss=loss, gradients=dict(zip(names, grads, strict=True)))


rng = np.random.default_rng(0)
mixing = rng.normal(size=(2, 8)).astype("float32")
batches = [rng.normal(size=(64, 2)).astype("float32") @ mixing for _ in range(300)]

keras.utils.set_random_seed(0)  # the same initial weights, so the same run, every time
encoder = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="encoder")
decoder = keras.Sequential([keras.Input((2,)), keras.layers.Dense(8)], name="decoder")
trainer = sl.Trainer(
    TwoOptimizers(encoder, decoder),
    data=batches,
    callbacks=[sl.GradientNormBelow(1e-3), sl.PrintLogger(every=100, variables=False)],
)
result = trainer.run()
print(
    f"custom strategy: {result.steps} steps, reconstruction loss "
    f"{result.history['loss'][0]:.4f} -> {result.loss:.6f}, status = {result.status}"
)
print(f"gradients reported for: {sorted(trainer.last_record.gradients)}")
