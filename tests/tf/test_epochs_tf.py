"""Epochs over a tf.data.Dataset: its length known (cardinality) or found out (a filter), fused
calls end at every epoch's end and equal step by step."""

import numpy as np
import pytest

import steploop as sl
from steploop.tf import TapeStep
from tests.tf.test_data import make_problem


class Live(sl.Callback):
    """Reads the variables at the last step of every epoch (fused calls must end there)."""

    needs_live_state = True

    def __init__(self):
        self.schedule = sl.every(epochs=1)
        self.seen = []

    def on_step_end(self, trainer, record):
        if self.schedule.fires(record.step):
            variables = list(trainer.strategy.variables().values())  # names differ per model
            self.seen.append((record.step, record.epoch, variables))


@pytest.mark.parametrize("known_length", [True, False])
def test_dataset_epochs_fused_equal_step_by_step(tf, keras, known_length):
    """96 rows in batches of 16 (6 per epoch) x 3 epochs = 18 steps, epoch column 1..3, and the
    fused run (steps_per_call=4) equals the plain one at every epoch's end."""
    runs = []
    for per_call in (1, 4):
        model, loss, features, targets = make_problem(tf, keras)
        dataset = tf.data.Dataset.from_tensor_slices((features, targets)).batch(16)
        if not known_length:
            dataset = dataset.filter(lambda x, y: tf.constant(True))
            with pytest.raises(TypeError):
                len(dataset)
        step = TapeStep(loss, keras.optimizers.SGD(0.05), var_list=model.trainable_variables)
        live = Live()
        trainer = sl.Trainer(step, [live], data=dataset, epochs=3, steps_per_call=per_call)
        result = trainer.run()
        assert (result.steps, result.status) == (18, "exhausted")
        assert result.stop_reason == "data exhausted after 3 epochs (18 steps)"
        assert trainer.history["epoch"].tolist() == [1] * 6 + [2] * 6 + [3] * 6
        assert [(s, e) for s, e, _ in live.seen] == [(6, 1), (12, 2), (18, 3)]
        runs.append((trainer.history["loss"], live.seen))
    (plain_loss, plain_seen), (fused_loss, fused_seen) = runs
    np.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-6)
    for (_, _, plain), (_, _, fused) in zip(plain_seen, fused_seen, strict=True):
        for fused_value, plain_value in zip(fused, plain, strict=True):
            np.testing.assert_allclose(fused_value, plain_value, rtol=1e-6)
