"""OptaxStep: the article's problem, reported values and targets, gradients named by path."""

import numpy as np
import pytest

import steploop as sl
from steploop.jax import OptaxStep


def article(jnp, optax, jit, lr=0.1):
    params = {"x": jnp.array(0.0)}
    step = OptaxStep(lambda p: (p["x"] - 4.0) ** 2, params, optax.sgd(lr), jit=jit)
    trainer = sl.Trainer(step, [sl.LossBelow(1e-12) | sl.MaxSteps(1000)])
    return trainer, trainer.run(), step, params


def hand_loop(jax, jnp, optax, lr=0.1, jit=True):
    """The article's loop written by hand in JAX (its update jitted or not): stop once the
    step's loss is below 1e-12."""
    opt = optax.sgd(lr)

    def update(x, state):
        loss, grad = jax.value_and_grad(lambda x: (x - 4.0) ** 2)(x)
        updates, state = opt.update(grad, state, x)
        return optax.apply_updates(x, updates), state, loss

    update = jax.jit(update) if jit else update
    x = jnp.array(0.0)
    state = opt.init(x)
    for step in range(1, 1001):
        x, state, loss = update(x, state)
        if float(loss) < 1e-12:
            return step, x
    return 1000, x


@pytest.mark.parametrize("jit", [True, False])
def test_the_article_takes_70_steps_to_3_9999993_in_float32(jax, jnp, optax, jit):
    """As the TensorFlow strategies: 70 steps, x = 3.9999993 (float32), the user's array kept."""
    _, result, step, params = article(jnp, optax, jit)
    assert (result.steps, result.status) == (70, "converged")
    assert step.params["x"].dtype == jnp.float32
    assert np.float32(step.params["x"]) == np.float32(3.9999993)
    assert float(params["x"]) == 0.0  # the user's arrays are neither changed nor donated
    assert (result.steps, np.float32(step.params["x"])) == hand_loop(jax, jnp, optax, jit=jit)


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("lr", [0.05, 0.3, 0.7])
def test_equals_the_hand_written_loop(jax, jnp, optax, lr, jit):
    """Same stop step and float32 x as the hand-written JAX loop, jitted or not, for other rates
    (XLA may round a jitted update differently from an eager one: at lr 0.05 the jitted loops
    stop at step 143, the eager ones at 144)."""
    _, result, step, _ = article(jnp, optax, jit, lr)
    steps, x = hand_loop(jax, jnp, optax, lr, jit)
    assert result.steps == steps and np.float32(step.params["x"]) == np.float32(x)


def test_values_and_targets_are_reported(jnp, optax):
    """ "values" go to the history; a target's gradient to target_gradients, by name."""

    def forward(p):
        z = p["x"] - 4.0
        return {"loss": z**2, "z": z, "values": {"z": z}}

    step = OptaxStep(forward, {"x": jnp.array(0.0)}, optax.sgd(0.1))
    out = step.step()
    assert float(out.loss) == 16.0 and float(out.values["z"]) == -4.0
    assert float(out.gradients["x"]) == -8.0
    assert float(out.target_gradients["z"]["x"]) == 1.0
    trainer = sl.Trainer(step, [sl.MaxSteps(3)])
    trainer.run()
    assert trainer.history["z"].tolist() == pytest.approx([-3.2, -2.56, -2.048], rel=1e-6)


def test_gradients_and_variables_are_named_by_pytree_path(jnp, optax):
    """layers/0/kernel, layers/0/bias, scale: the pytree paths joined with '/'."""
    params = {
        "layers": [{"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}],
        "scale": jnp.array(2.0),
    }

    def loss(p, batch):
        h = batch @ p["layers"][0]["kernel"] + p["layers"][0]["bias"]
        return jnp.mean((p["scale"] * h) ** 2)

    step = OptaxStep(loss, params, optax.adam(1e-3))
    data = [jnp.ones((4, 2))] * 3
    trainer = sl.Trainer(step, [sl.MaxSteps(3)], data=data)
    trainer.run()
    out = step.step(data[0])
    assert sorted(out.gradients) == ["layers/0/bias", "layers/0/kernel", "scale"]
    assert out.gradients["layers/0/kernel"].shape == (2, 3)
    assert sorted(step.variables()) == sorted(out.gradients)
    assert isinstance(step.variables()["scale"], np.ndarray)


def test_a_bare_array_is_named_params(jnp, optax):
    step = OptaxStep(lambda x: jnp.sum(x**2), jnp.ones(2), optax.sgd(0.5))
    assert list(step.step().gradients) == ["params"]
    assert step.params.tolist() == [0.0, 0.0]


def test_float32_stays_float32_and_float16_stays_float16(jnp, optax):
    step = OptaxStep(
        lambda p: jnp.sum(p["h"] ** 2), {"h": jnp.ones(2, jnp.float16)}, optax.sgd(0.1)
    )
    out = step.step()
    assert step.params["h"].dtype == jnp.float16 and out.gradients["h"].dtype == jnp.float16
