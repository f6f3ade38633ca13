"""The article's persistent tape: grad_z and grad_y from one tape, released after every step.

With `compile=False` the tape stays open while the step's callbacks run, so a callback may ask
it for one more gradient; the built-in Release hook drops it right after the last callback.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

import steploop as sl
from steploop.tf import PersistentTapeStep

x = tf.Variable(0.0, name="x")


def forward():
    z = x - 4.0
    y = z**2
    return {"loss": y, "z": z, "y": y}


class AskTheTape(sl.Callback):
    """Asks the still-open tape of the current step for grad_z once more."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.open_at_step_end = 0

    def on_step_end(self, trainer, record):
        if self.strategy.tape is not None:
            self.open_at_step_end += 1
            again = self.strategy.gradient("z")
            assert again["x"] == record.target_gradients["z"]["x"]


strategy = PersistentTapeStep(forward, keras.optimizers.SGD(learning_rate=0.1), compile=False)
asker = AskTheTape(strategy)
trainer = sl.Trainer(
    strategy,
    callbacks=[sl.LossBelow(1e-12) | sl.MaxSteps(1000), sl.PrintLogger(every=10), asker],
)
trainer.describe()
result = trainer.run()
last = trainer.last_record
print(
    f"persistent tape: {result.steps} steps, x = {x.numpy():.7f}, "
    f"grad_z = {last.target_gradients['z']['x']:g}, grad_y = {last.target_gradients['y']['x']:.3g}"
)
print(
    f"the tape was open in {asker.open_at_step_end} of {result.steps} step callbacks and is "
    f"{'released' if strategy.tape is None else 'STILL OPEN'} now"
)
