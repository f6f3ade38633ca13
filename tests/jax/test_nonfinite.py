"""OptaxStep's on_nonfinite: skip, stop and rollback at the exact step, in the jitted and the
eager step alike (``steploop.nonfinite`` carried out by ``steploop.jax._guard``)."""

import math

import numpy as np
import pytest

import steploop as sl
from steploop.jax import OptaxStep


def sqrt_run(jnp, optax, policy, jit=True, steps_per_call=1):
    """sqrt(x) from x = 1 with learning rate 0.5: the loss of step 5 is nan (x < 0)."""
    step = OptaxStep(
        lambda p: jnp.sqrt(p["x"]),
        {"x": jnp.array(1.0)},
        optax.sgd(0.5),
        jit=jit,
        on_nonfinite=policy,
    )
    trainer = sl.Trainer(step, [sl.MaxSteps(8)], steps_per_call=steps_per_call)
    return trainer, trainer.run(), step


def x_before_step_5(jnp, optax):
    """x after 4 plain steps (policy "apply"), in float32."""
    x = jnp.array(1.0)
    for _ in range(4):
        x = x - 0.5 * (0.5 / jnp.sqrt(x))
    return np.float32(x)


@pytest.mark.parametrize("jit", [True, False])
def test_skip_and_rollback_keep_the_params_of_step_4_and_report_code_1(jnp, optax, jit):
    """Steps 5-8 have a nan loss: not applied, coded 1, x stays as after step 4."""
    for policy in ("skip", "rollback"):
        trainer, result, step = sqrt_run(jnp, optax, policy, jit)
        assert (result.steps, result.status) == (8, "budget")
        assert trainer.history["nonfinite"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
        assert np.float32(step.params["x"]) == x_before_step_5(jnp, optax)


@pytest.mark.parametrize("jit", [True, False])
def test_stop_ends_the_run_at_step_5_naming_the_loss(jnp, optax, jit):
    _, result, step = sqrt_run(jnp, optax, "stop", jit)
    assert (result.steps, result.status) == (5, "nonfinite")
    assert result.stop_reason == (
        "non-finite loss at step 5; its update was not applied, the variables are those of the "
        "step before"
    )
    assert np.float32(step.params["x"]) == x_before_step_5(jnp, optax)


def test_apply_keeps_the_hand_loop_behaviour(jnp, optax):
    trainer, _, step = sqrt_run(jnp, optax, "apply")
    assert math.isnan(float(step.params["x"])) and "nonfinite" not in trainer.history


def test_a_non_finite_gradient_is_named_by_its_path(jnp, optax):
    params = {"a": jnp.array(1.0), "b": {"c": jnp.array(0.0)}}
    step = OptaxStep(
        lambda p: p["a"] ** 2 + jnp.sqrt(p["b"]["c"]),
        params,
        optax.sgd(0.1),
        on_nonfinite="stop",
    )
    result = sl.Trainer(step, [sl.MaxSteps(5)]).run()
    assert result.stop_reason.startswith("non-finite gradient of 'b/c' at step 1;")
    assert float(step.params["a"]) == 1.0 and float(step.params["b"]["c"]) == 0.0


@pytest.mark.parametrize("jit", [True, False])
def test_rollback_undoes_an_update_that_overflows_the_state(jax, jnp, optax, jit):
    """Finite loss and gradient, non-finite update (float32 overflow): rolled back, code -1;
    the optimizer's state (momentum) is put back too."""
    step = OptaxStep(
        lambda p: 1e30 * p["x"],
        {"x": jnp.array(1.0)},
        optax.sgd(1e30, momentum=0.9),
        jit=jit,
        on_nonfinite="rollback",
    )
    before = step.opt_state
    trainer = sl.Trainer(step, [sl.MaxSteps(3)])
    trainer.run()
    assert float(step.params["x"]) == 1.0
    assert trainer.history["nonfinite"].tolist() == [-1, -1, -1]
    leaves = jax.tree_util.tree_leaves
    for old, new in zip(leaves(before), leaves(step.opt_state), strict=True):
        assert np.array_equal(np.asarray(old), np.asarray(new))


@pytest.mark.parametrize("x64", [False, True])
def test_the_guard_codes_from_jax_primitives_equal_the_hosts_eagerly_and_jitted(jax, jnp, x64):
    """first_bad and rolled_back built from JAX_GUARD's primitives give HOST_GUARD's values, as
    int32 codes (with x64 enabled too), for every pattern of three flags, eagerly and jitted."""
    from steploop.jax._guard import JAX_GUARD
    from tests.helpers import guard_cases, guard_codes

    jitted = jax.jit(lambda flags, after: guard_codes(JAX_GUARD, flags, after))
    with jax.enable_x64(x64):
        for flags, after, expected in guard_cases():
            for run in (lambda f, a: guard_codes(JAX_GUARD, f, a), jitted):
                bad, code, back = run([jnp.array(f) for f in flags], jnp.array(after))
                assert (code.dtype, back.dtype) == (jnp.int32, jnp.int32)
                assert (bool(bad), int(code), int(back)) == expected
