"""The article's three loops: steploop gives what the hand-written TF 2.21 code gives.

The hand loops check the tolerance on the loss the step's gradient was taken at, which is the
loss a step reports (``StepRecord.loss``), and stop at the iteration limit otherwise.
"""

import numpy as np
import pytest
from hypothesis import example, given, settings

import steploop as sl
from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep
from tests.strategies import starts, tf_learning_rates

TOL, LIMIT = 1e-12, 1000
#: float32 SGD stalls where lr * 2|x-4| is below half an ulp of 4, i.e. |x-4| < 1.2e-7 / lr:
#: for lr >= 0.05 that is |x-4| < 2.4e-6, loss < 6e-12, so 1e-10 is reachable for every lr.
TOL_ANY_LR = 1e-10


def hand_minimize(tf, tf_keras, lr, start):
    """The article's first program, on an optimizer that still has minimize (tf_keras)."""
    x = tf.Variable(start, name="x")

    def loss_function():
        return (x - 4.0) ** 2

    opt = tf_keras.optimizers.SGD(learning_rate=lr)
    for _ in range(LIMIT):
        loss = loss_function()
        opt.minimize(loss_function, var_list=[x])
        if loss < TOL:
            break
    return int(opt.iterations.numpy()), x.numpy()


def hand_tape(tf, keras, lr, start, tol=TOL):
    x = tf.Variable(start, name="x")
    opt = keras.optimizers.SGD(learning_rate=lr)
    for _ in range(LIMIT):
        with tf.GradientTape(persistent=False) as t:
            y = (x - 4.0) ** 2
        gradients = t.gradient(y, [x])
        opt.apply_gradients(zip(gradients, [x], strict=True))
        if y < tol:
            break
    return int(opt.iterations.numpy()), x.numpy(), gradients[0].numpy()


def hand_persistent(tf, keras, lr, start):
    x = tf.Variable(start, name="x")
    opt = keras.optimizers.SGD(learning_rate=lr)
    for _ in range(LIMIT):
        with tf.GradientTape(persistent=True) as t:
            z = x - 4.0
            y = z**2
        grad_z = t.gradient(z, x)
        grad_y = t.gradient(y, x)
        del t
        opt.apply_gradients([(grad_y, x)])
        if y < TOL:
            break
    return int(opt.iterations.numpy()), x.numpy(), grad_z.numpy(), grad_y.numpy()


def criteria(tol=TOL):
    return [sl.LossBelow(tol) | sl.MaxSteps(LIMIT)]


@pytest.fixture(scope="module")
def tf_keras(tf):
    import tf_keras

    return tf_keras


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("optimizer", ["keras3", "tf_keras"])
def test_minimize_matches_the_article(tf, keras, tf_keras, compile, optimizer):
    steps, x_hand = hand_minimize(tf, tf_keras, 0.1, 0.0)
    x = tf.Variable(0.0, name="x")
    module = keras if optimizer == "keras3" else tf_keras
    opt = module.optimizers.SGD(learning_rate=0.1)
    strategy = MinimizeStep(lambda: (x - 4.0) ** 2, var_list=[x], optimizer=opt, compile=compile)
    assert strategy.uses_own_minimize is (optimizer == "tf_keras")
    result = sl.Trainer(strategy, callbacks=criteria()).run()
    assert (result.steps, result.status) == (steps, "converged")
    assert steps == 70
    assert x.numpy() == x_hand


def test_a_minimize_loop_testing_the_loss_after_the_update_stops_one_step_earlier(tf, tf_keras):
    """The README's precision: a hand loop that tests the loss *after* its update stops at 69;
    it tests the next step's loss, which steploop reports as step 70's."""
    x = tf.Variable(0.0, name="x")
    opt = tf_keras.optimizers.SGD(learning_rate=0.1)
    for _ in range(LIMIT):
        opt.minimize(lambda: (x - 4.0) ** 2, var_list=[x])
        if (x - 4.0) ** 2 < TOL:
            break
    assert int(opt.iterations.numpy()) == 69 == hand_minimize(tf, tf_keras, 0.1, 0.0)[0] - 1


@pytest.mark.parametrize("compile", [True, False])
def test_tape_matches_the_article(tf, keras, compile):
    steps, x_hand, grad_hand = hand_tape(tf, keras, 0.1, 0.0)
    x = tf.Variable(0.0, name="x")
    trainer = sl.Trainer(
        TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1), compile=compile),
        callbacks=criteria(),
    )
    result = trainer.run()
    assert result.steps == steps == 70
    assert x.numpy() == x_hand
    assert trainer.last_record.gradients["x"] == grad_hand


@pytest.mark.parametrize("compile", [True, False])
def test_persistent_tape_matches_the_article(tf, keras, compile):
    steps, x_hand, grad_z, grad_y = hand_persistent(tf, keras, 0.1, 0.0)
    x = tf.Variable(0.0, name="x")

    def forward():
        z = x - 4.0
        y = z**2
        return {"loss": y, "z": z, "y": y}

    trainer = sl.Trainer(
        PersistentTapeStep(forward, keras.optimizers.SGD(0.1), compile=compile),
        callbacks=criteria(),
    )
    result = trainer.run()
    assert result.steps == steps == 70
    assert x.numpy() == x_hand
    last = trainer.last_record
    assert last.target_gradients["z"]["x"] == grad_z == 1.0
    assert last.target_gradients["y"]["x"] == grad_y == last.gradients["x"]


@settings(max_examples=12)
@given(tf_learning_rates, starts)
@example(lr=0.05, start=3.0)  # XLA ends 1 ulp away from the eager loop here
def test_any_learning_rate_converges_like_the_hand_loop(tf, keras, lr, start):
    """For lr in [0.05, 0.95] and any start, TapeStep reaches 4, stops on LossBelow, and equals
    the hand loop step for step as a plain graph; with the default (XLA when it compiles) it
    stops at the same step, x within the last bits (XLA may fuse a multiply-add: lr=0.05 from 3.0
    ends at 3.9999917 against the eager loop's 3.9999914)."""
    steps, x_hand, _ = hand_tape(tf, keras, lr, start, TOL_ANY_LR)
    for jit_compile in (False, "auto"):
        x = tf.Variable(start, name="x")
        loss = lambda x=x: (x - 4.0) ** 2  # noqa: E731
        step = TapeStep(loss, keras.optimizers.SGD(lr), jit_compile=jit_compile)
        result = sl.Trainer(step, callbacks=criteria(TOL_ANY_LR)).run()
        assert result.steps == steps
        if jit_compile is False:
            assert x.numpy() == x_hand
        else:
            assert abs(float(x.numpy()) - float(x_hand)) <= 4 * float(np.spacing(np.float32(4.0)))
        assert result.status == "converged", result.stop_reason
        assert abs(x.numpy() - 4.0) < 1e-5
