"""steps_per_call="auto" (the default) with TensorFlow: the article's run, fused, bit for bit."""

import numpy as np

import steploop as sl
from tests.helpers import last_gradients, tf_quadratic


def test_a_default_trainer_fuses_the_article_run_exactly(tf, keras):
    """TapeStep on (x-4)**2, LossBelow(1e-12) | MaxSteps(1000): step 70, x = 3.9999993 and the
    history of steps_per_call=1, with the run fused after its first plain step."""
    outcomes = []
    for setting in ("auto", 1):
        x, step = tf_quadratic(tf, keras, "tape", 0.1)
        trainer = sl.Trainer(
            step, [sl.LossBelow(1e-12) | sl.MaxSteps(1000)], steps_per_call=setting
        )
        result = trainer.run()
        outcomes.append(
            (
                result.steps,
                result.status,
                x.numpy().tobytes(),
                trainer.history,
                float(trainer.last_record.gradients["x"]),
            )
        )
        if setting == "auto":
            assert (result.steps, x.numpy()) == (70, np.float32(3.9999993))
            assert step._loops, "the default Trainer did not fuse"
            assert trainer.describe().splitlines()[1].startswith("steps_per_call=auto (run() fuses")
    assert outcomes[0] == outcomes[1]


def test_default_is_auto_and_one_step_a_call_with_a_host_stopper(tf, keras):
    class StopAt(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.step == 5:
                trainer.stop("asked at step 5")

    _x, step = tf_quadratic(tf, keras, "tape", 0.1)
    trainer = sl.Trainer(step, [StopAt(), sl.MaxSteps(100)])
    assert trainer.run().steps == 5
    assert not step._loops
    assert "StopAt may stop the run from the host" in trainer.describe()


def test_the_last_record_of_a_fused_run_has_its_gradients_and_target_gradients(tf, keras):
    """A fused call carries the last step's gradients alone: the last record has the gradients
    and target gradients a step-by-step run's has, an earlier record of the call says they were
    not kept."""
    seen = []
    for setting in ("auto", 1):
        _x, step = tf_quadratic(tf, keras, "persistent", 0.1)
        trainer = sl.Trainer(step, [sl.MaxSteps(40)], steps_per_call=setting)
        assert trainer.run().steps == 40
        seen.append(last_gradients(trainer))
    assert seen[0] == seen[1]
    assert seen[0][1] == {"z": {"x": 1.0}}


def test_auto_takes_one_step_a_call_with_an_eager_strategy_whose_values_change(tf, keras):
    """An eager strategy's calls would be a Python loop, which stacks one set of value names:
    "auto" takes plain steps, and a value that appears later is recorded as step by step."""
    from steploop.tf import PersistentTapeStep

    def late_value(z):
        def loss():
            values = {"z": z * 1.0}
            if z > 1.0:  # eager: a plain Python condition, true from some step on
                values["late"] = z * 2.0
            return {"loss": (z - 4.0) ** 2, "values": values}

        return loss

    outcomes = []
    for setting in ("auto", 1):
        z = tf.Variable(0.0, name="z")
        step = PersistentTapeStep(late_value(z), keras.optimizers.SGD(0.1), compile=False)
        trainer = sl.Trainer(step, [sl.MaxSteps(12)], steps_per_call=setting)
        result = trainer.run()
        late = trainer.history["late"]
        outcomes.append((result.steps, late.tobytes(), z.numpy().tobytes()))
        if setting == "auto":
            assert "PersistentTapeStep runs eagerly" in trainer.describe()
            assert np.isnan(late[:2]).all() and not np.isnan(late[2:]).any()
    assert outcomes[0] == outcomes[1]
