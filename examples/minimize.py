"""The article's first loop: minimise (x-4)**2 with `optimizer.minimize`, stop on a tolerance.

Keras 3 optimizers no longer have `minimize`; `MinimizeStep` gives the same step back.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

import steploop as sl
from steploop.tf import MinimizeStep

x = tf.Variable(0.0, name="x")  # the initial guess


def loss_function():
    return (x - 4.0) ** 2


opt = keras.optimizers.SGD(learning_rate=0.1)
print(f"keras.optimizers.SGD has minimize: {hasattr(opt, 'minimize')}")

trainer = sl.Trainer(
    MinimizeStep(loss_function, var_list=[x], optimizer=opt),
    callbacks=[sl.LossBelow(1e-12) | sl.MaxSteps(1000), sl.PrintLogger(every=10)],
)
result = trainer.run()
print(
    f"minimize: {result.steps} steps, x = {x.numpy():.7f}, optimizer iterations = "
    f"{int(opt.iterations.numpy())}, status = {result.status}"
)
