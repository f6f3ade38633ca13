"""OptaxStep checkpoints through the core Checkpoint: restored by pytree path, optimiser state
included, a resumed run equals an uninterrupted one."""

import numpy as np
import pytest

import steploop as sl
from steploop.jax import OptaxStep


def model(jnp, optax, order=("w", "b")):
    params = {name: jnp.zeros(2) if name == "w" else jnp.array(0.0) for name in order}

    def loss(p):
        return jnp.sum((p["w"] - jnp.array([1.0, -2.0])) ** 2) + (p["b"] - 3.0) ** 2

    return OptaxStep(loss, params, optax.adam(0.1))


@pytest.mark.parametrize("per_call", [1, 4])
def test_a_resumed_run_equals_one_run(tmp_path, jnp, optax, per_call):
    """10 steps, checkpoint, a fresh strategy (params in another order) restored, 10 more: the
    history and the params (Adam's moments restored too) equal 20 steps in one run."""
    whole = model(jnp, optax)
    one = sl.Trainer(whole, [sl.MaxSteps(20)], steps_per_call=per_call)
    one.run()
    sl.Trainer(model(jnp, optax), [sl.Checkpoint(str(tmp_path), every=5)]).run(10)
    resumed = model(jnp, optax, order=("b", "w"))
    trainer = sl.Trainer(resumed, [sl.MaxSteps(20)], steps_per_call=per_call)
    assert trainer.restore(str(tmp_path)) == 10
    trainer.run()
    assert trainer.history["loss"].tolist() == one.history["loss"].tolist()
    for name in ("w", "b"):
        assert np.array_equal(np.asarray(resumed.params[name]), np.asarray(whole.params[name]))


def test_restore_refuses_params_that_differ_naming_them(tmp_path, jnp, optax):
    sl.Trainer(model(jnp, optax), [sl.Checkpoint(str(tmp_path), every=2)]).run(2)
    other = OptaxStep(lambda p: jnp.sum(p["v"] ** 2), {"v": jnp.zeros(2)}, optax.adam(0.1))
    with pytest.raises(ValueError, match=r"^OptaxStep\.restore: checkpoint .* 'v'"):
        sl.Trainer(other).restore(str(tmp_path))
