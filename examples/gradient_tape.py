"""The article's second loop: tf.GradientTape + apply_gradients, now with the gradients shown."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep

x = tf.Variable(0.0, name="x")
opt = keras.optimizers.SGD(learning_rate=0.1)

trainer = sl.Trainer(
    TapeStep(lambda: (x - 4.0) ** 2, optimizer=opt, var_list=[x]),
    callbacks=[sl.LossBelow(1e-12) | sl.MaxSteps(1000), sl.PrintLogger(every=10)],
)
result = trainer.run()
print(
    f"gradient tape: {result.steps} steps, x = {x.numpy():.7f}, "
    f"last gradient = {trainer.last_record.gradients['x']:.3g}, status = {result.status}"
)
print(
    f"the history has one loss per step: {len(result.history['loss'])} entries, "
    f"first {result.history['loss'][0]:g}, last {result.history['loss'][-1]:.3g}"
)
