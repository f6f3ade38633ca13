"""on_nonfinite: apply, skip, stop or roll back a step whose loss, gradients or update are not
finite, checked before the update is applied; fused and eager runs agree."""

import math

import pytest

import steploop as sl
from steploop.tf import MinimizeStep, TapeStep

# sqrt(x) from x = 1 with SGD(0.5): x after steps 1-4 is 0.75, 0.173, -0.428?, ... the loss of
# step 5 is sqrt of a negative number: nan. (Computed below from the first finite steps.)


def sqrt_run(tf, keras, policy, steps_per_call=1, compile=True):
    x = tf.Variable(1.0, name="x")
    step = TapeStep(
        lambda: tf.sqrt(x),
        keras.optimizers.SGD(0.5),
        var_list=[x],
        on_nonfinite=policy,
        compile=compile,
    )
    trainer = sl.Trainer(step, [sl.MaxSteps(8)], steps_per_call=steps_per_call)
    return trainer, trainer.run(), x


def last_finite_x(tf, keras):
    """x after the last step whose loss was finite (the updates of a plain apply run)."""
    trainer, _, _ = sqrt_run(tf, keras, "apply")
    losses = trainer.history["loss"]
    first_bad = next(i for i, loss in enumerate(losses) if not math.isfinite(loss))
    x = 1.0
    for loss in losses[:first_bad]:
        x -= 0.5 * 0.5 / loss  # d sqrt(x)/dx = 1 / (2 sqrt(x)) = 0.5 / loss
    return first_bad + 1, x


@pytest.mark.parametrize("steps_per_call", [1, 4])
@pytest.mark.parametrize("compile", [True, False])
def test_policies(tf, keras, steps_per_call, compile):
    bad_step, x_ok = last_finite_x(tf, keras)
    assert bad_step == 5

    trainer, result, x = sqrt_run(tf, keras, "apply", steps_per_call, compile)
    assert math.isnan(x.numpy()) and "nonfinite" not in trainer.history

    for policy in ("skip", "rollback"):
        trainer, result, x = sqrt_run(tf, keras, policy, steps_per_call, compile)
        assert (result.steps, result.status) == (8, "budget")
        assert x.numpy() == pytest.approx(x_ok, rel=1e-6)
        assert trainer.history["nonfinite"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]

    trainer, result, x = sqrt_run(tf, keras, "stop", steps_per_call, compile)
    assert (result.steps, result.status) == (5, "nonfinite")
    assert result.stop_reason == (
        "non-finite loss at step 5; its update was not applied, the variables are those of the "
        "step before"
    )
    assert x.numpy() == pytest.approx(x_ok, rel=1e-6)


def test_a_non_finite_gradient_is_named(tf, keras):
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: tf.sqrt(tf.abs(x)), keras.optimizers.SGD(0.1), on_nonfinite="stop")
    result = sl.Trainer(step, [sl.MaxSteps(5)]).run()
    assert result.stop_reason.startswith("non-finite gradient of 'x' at step 1;")
    assert x.numpy() == 0.0


def test_rollback_undoes_an_update_that_overflows(tf, keras):
    x = tf.Variable(1.0, name="x")
    opt = keras.optimizers.SGD(1e38)
    step = TapeStep(lambda: 10.0 * x, opt, var_list=[x], on_nonfinite="rollback")
    trainer = sl.Trainer(step, [sl.MaxSteps(3)])
    trainer.run()
    assert x.numpy() == 1.0 and int(opt.iterations.numpy()) == 0
    assert trainer.history["nonfinite"].tolist() == [-1, -1, -1]
    assert step.nonfinite_quantity(-1).startswith("variables or optimizer state")


def test_policy_arguments_are_checked(tf, keras):
    import tf_keras

    x = tf.Variable(1.0)
    with pytest.raises(
        ValueError,
        match=r"on_nonfinite must be one of \['apply', 'skip', 'stop', "
        r"'rollback'\], got 'ignore'",
    ):
        TapeStep(lambda: x**2, keras.optimizers.SGD(0.1), on_nonfinite="ignore")
    with pytest.raises(ValueError, match="MinimizeStep: on_nonfinite='skip' checks the gradients"):
        MinimizeStep(lambda: x**2, [x], tf_keras.optimizers.SGD(0.1), on_nonfinite="skip")


def test_the_guard_codes_from_tf_primitives_equal_the_hosts_eagerly_and_in_a_graph(tf):
    """first_bad and rolled_back built from TF_GUARD's primitives give HOST_GUARD's values, as
    int32 codes, for every pattern of three flags, eagerly and in a tf.function."""
    from steploop.tf._apply import TF_GUARD
    from tests.helpers import guard_cases, guard_codes

    graph = tf.function(lambda flags, after: guard_codes(TF_GUARD, flags, after))
    for flags, after, expected in guard_cases():
        for run in (lambda f, a: guard_codes(TF_GUARD, f, a), graph):
            bad, code, back = run([tf.constant(f) for f in flags], tf.constant(after))
            assert (code.dtype, back.dtype) == (tf.int32, tf.int32)
            assert (bool(bad), int(code), int(back)) == expected
