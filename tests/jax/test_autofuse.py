"""steps_per_call="auto" (the default) with OptaxStep: fused, and equal to steps_per_call=1."""

import numpy as np
from hypothesis import given, settings

import steploop as sl
from tests.helpers import last_gradients
from tests.jax.test_fused import quadratic, run
from tests.strategies import array_criteria, tf_learning_rates


@settings(max_examples=8)
@given(array_criteria(), tf_learning_rates)
def test_a_default_trainer_equals_step_by_step(jnp, optax, criteria, lr):
    """Same status, stop step, reason, history, x and last gradients (bit for bit)."""
    outcomes = []
    for setting in ("auto", 1):
        step = quadratic(jnp, optax, lr)
        trainer = sl.Trainer(step, criteria(), steps_per_call=setting)
        result = trainer.run()
        gradient = float(trainer.last_record.gradients["x"])
        outcomes.append(
            (
                result.status,
                result.steps,
                result.stop_reason,
                trainer.history,
                np.asarray(step.params["x"]).tobytes(),
                gradient,
            )
        )
    assert outcomes[0] == outcomes[1]


def test_the_article_run_fuses_by_default(jnp, optax):
    step = quadratic(jnp, optax, 0.1)
    assert run(step, [sl.LossBelow(1e-12) | sl.MaxSteps(1000)], "auto")[:2] == ("converged", 70)
    assert "steps_per_call=auto (run() fuses" in sl.Trainer(step, [sl.MaxSteps(1)]).describe()


def test_the_last_record_of_a_fused_run_has_its_gradients_and_target_gradients(jnp, optax):
    seen = []
    for setting in ("auto", 1):
        step = quadratic(jnp, optax, 0.1, targets=True)
        trainer = sl.Trainer(step, [sl.MaxSteps(40)], steps_per_call=setting)
        assert trainer.run().steps == 40
        seen.append(last_gradients(trainer))
    assert seen[0] == seen[1]
    assert seen[0][1] == {"z": {"x": 1.0}}


def test_auto_takes_one_step_a_call_without_jit(jnp, optax):
    from steploop.jax import OptaxStep

    step = OptaxStep(
        lambda p: (p["x"] - 4.0) ** 2, {"x": jnp.array(0.0)}, optax.sgd(0.1), jit=False
    )
    trainer = sl.Trainer(step, [sl.MaxSteps(3)])
    assert "OptaxStep runs eagerly (its calls would be a Python loop)" in trainer.describe()
    assert trainer.run().steps == 3 and trainer.steps_per_call == 1
