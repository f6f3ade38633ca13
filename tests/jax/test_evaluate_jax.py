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
    """An optax optimiser whose state holds no learning rate: refused when the Trainer is
    built, saying how to make one."""
    with pytest.raises(
        TypeError,
        match=re.escape(
            "OptaxStep.learning_rate: the optimiser's state holds no learning rate; make the "
            "optimiser with optax.inject_hyperparams"
        ),
    ):
        sl.Trainer(regression(jnp, optax), [sl.ReduceLROnPlateau()], data=[(XS, YS)])


@pytest.mark.parametrize("chained", [False, True])
def test_reduce_lr_on_plateau_sets_an_injected_rate(jnp, optax, chained):
    """With optax.inject_hyperparams (alone or in a chain) the rate halves after two checks
    without improvement of a flat value (as for GradientDescent), the optimiser uses it (the
    step is rate x gradient), and a fused run equals a plain one."""
    from steploop.jax import OptaxStep

    def go(k):
        sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
        optimizer = optax.chain(optax.identity(), sgd) if chained else sgd
        step = OptaxStep(
            lambda p: {"loss": 0.25 * p["x"], "values": {"flat": 1.0}},
            {"x": jnp.array(0.0)},
            optimizer,
        )
        plateau = sl.ReduceLROnPlateau("flat", factor=0.5, patience=2)
        trainer = sl.Trainer(step, [plateau], steps_per_call=k)
        trainer.run(max_steps=6)
        return trainer.history["lr"].tolist(), float(step.params["x"])

    rates, x = go(1)
    assert rates == [0.5, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert x == pytest.approx(-0.25 * sum(rates))  # d loss / dx = 0.25 at every step
    assert go(4) == (rates, x)
