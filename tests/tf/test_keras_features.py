"""The Keras-like features on TensorFlow strategies: EarlyStopping's baseline and warm-up in
fused calls, restored best weights, and get_weights/set_weights by name."""

import numpy as np
import pytest

import steploop as sl
from steploop.tf import TapeStep

TARGETS = [0.0, 1.0, 2.0, 1.5, 9.0, 9.0, 3.0, 5.0, 7.0, 2.0, 4.0, 1.0]


def tracker(tf, keras):
    x = tf.Variable(0.0, name="x")
    return x, TapeStep(lambda t: (x - t) ** 2 - t, keras.optimizers.SGD(0.25))


def weights_after(tf, keras, steps):
    x, step = tracker(tf, keras)
    sl.Trainer(step, data=TARGETS[:steps]).run()
    return x.numpy().tobytes()


@pytest.mark.parametrize("k", [1, 4])
def test_restored_weights_equal_those_after_the_best_step(tf, keras, k):
    """TapeStep: at the stop, x is x after the best step, bit for bit (plain or fused)."""
    x, step = tracker(tf, keras)
    early = sl.EarlyStopping(4, restore_best_weights=True)
    trainer = sl.Trainer(step, [early], data=TARGETS, steps_per_call=k)
    result = trainer.run()
    best = int(np.argmin(trainer.history["loss"])) + 1
    assert (best, result.steps, result.status) == (8, 12, "converged")
    assert x.numpy().tobytes() == weights_after(tf, keras, 8)
    assert x.numpy().tobytes() != weights_after(tf, keras, 12)


@pytest.mark.parametrize(
    "early",
    [
        lambda: sl.EarlyStopping(3, baseline=-5.0),
        lambda: sl.EarlyStopping(2, baseline=0.5),
        lambda: sl.EarlyStopping(2, start_from=5),
        lambda: sl.EarlyStopping(3, start_from=3, baseline=-1.0, min_delta=0.1),
    ],
)
def test_fused_early_stopping_equals_step_by_step(tf, keras, early):
    """The in-graph test (baseline, start_from) stops where a step-by-step run stops."""
    outcomes = []
    for k in (1, 5):
        x, step = tracker(tf, keras)
        result = sl.Trainer(step, [early()], data=TARGETS, steps_per_call=k).run()
        outcomes.append((result.steps, result.stop_reason, x.numpy().tobytes()))
    assert outcomes[0] == outcomes[1]


def test_get_and_set_weights_by_name(tf, keras):
    """get_weights is a host copy by variable name; set_weights assigns it back."""
    x, step = tracker(tf, keras)
    step.step(1.0)
    kept = step.get_weights()
    assert list(kept) == ["x"]
    step.step(5.0)
    assert x.numpy() != kept["x"]
    step.set_weights(kept)
    assert x.numpy().tobytes() == kept["x"].tobytes()
    with pytest.raises(ValueError, match=r"TapeStep.set_weights: weights must map \['x'\]"):
        step.set_weights({"y": 1.0})


def rate(step):
    return 0.25 if step < 4 else 0.125


@pytest.mark.parametrize("changes_at", [None, sl.at(4)])
def test_learning_rate_scheduler_is_exact_in_fused_calls(tf, keras, changes_at):
    """The Keras optimizer's rate is fn(step) at each step: fused equals plain, bit for bit."""
    outcomes = []
    for k in (1, 8):
        x, step = tracker(tf, keras)
        scheduler = sl.LearningRateScheduler(rate, changes_at)
        trainer = sl.Trainer(step, [scheduler], data=TARGETS[:10], steps_per_call=k)
        trainer.run()
        outcomes.append((x.numpy().tobytes(), trainer.history["lr"].tolist()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == [rate(s) for s in range(1, 11)]
    x, step = tracker(tf, keras)  # by hand: SGD with the rate of each step
    for s, target in enumerate(TARGETS[:10], start=1):
        step.learning_rate = rate(s)
        step.step(target)
    assert x.numpy().tobytes() == outcomes[0][0]


def test_a_learning_rate_schedule_cannot_be_set(tf, keras):
    """An optimizer driven by a LearningRateSchedule is refused with the reason."""
    x = tf.Variable(0.0, name="x")
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    step = TapeStep(lambda: x**2, keras.optimizers.SGD(decay))
    with pytest.raises(TypeError, match="not a variable"):
        step.learning_rate = 0.1
