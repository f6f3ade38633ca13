"""JAX: OptaxStep.evaluate (jit-compiled, no update), Evaluate in fused calls equal to plain
ones, and ReduceLROnPlateau refused with the reason."""

import re

import numpy as np
import pytest

import steploop as sl

XS = np.array([1.0, 2.0, 3.0, 4.0], "float32")
YS = np.array([1.0, 2.0, 3.0, 0.0], "float32")


def regression(jnp, optax, **options):
    from steploop.jax import OptaxStep

    def loss(params, batch):
        xs, ys = batch
        error = params["w"] * xs - ys
        return {"loss": jnp.mean(error**2), "values": {"mae": jnp.mean(abs(error))}}

    return OptaxStep(loss, {"w": jnp.array(0.5)}, optax.adam(0.05), **options)


@pytest.mark.parametrize("jit", [True, False])
def test_evaluate_is_the_loss_without_an_update(jnp, optax, jit):
    """evaluate(batch): host floats; the params and the optimiser state are the same objects."""
    step = regression(jnp, optax, jit=jit)
    step.step((XS, YS))
    params, state = step.params, step.opt_state
    got = step.evaluate((XS, YS))
    error = float(params["w"]) * XS - YS
    assert got == pytest.approx({"loss": np.mean(error**2), "mae": np.mean(abs(error))}, 1e-6)
    assert step.params is params and step.opt_state is state


def test_fused_equals_plain_with_early_stopping_on_val_loss(jnp, optax):
    """steps_per_call=5 against 1: the same history, stop step and params."""

    def go(k):
        step = regression(jnp, optax)
        data = [(XS * s, YS) for s in (1.0, 1.5, 0.5, 2.0)] * 6
        callbacks = [
            sl.Evaluate([(XS[:3], YS[:3]), (XS[3:], YS[3:])], every=2),
            sl.EarlyStopping(2, monitor="val_loss"),
        ]
        trainer = sl.Trainer(step, callbacks, data=data, steps_per_call=k)
        result = trainer.run()
        return trainer.history, result.steps, np.asarray(step.params["w"]).tobytes()

    plain, fused = go(1), go(5)
    assert plain[0] == fused[0] and plain[1:] == fused[1:]


def test_reduce_lr_on_plateau_is_refused_naming_inject_hyperparams(jnp, optax):
    """OptaxStep has no settable learning rate: refused when the Trainer is built."""
    with pytest.raises(
        TypeError,
        match=re.escape(
            "OptaxStep has none (an optax learning rate lives in the optimiser's state: it needs "
            "optax.inject_hyperparams"
        ),
    ):
        sl.Trainer(regression(jnp, optax), [sl.ReduceLROnPlateau()], data=[(XS, YS)])
