"""OptaxStep's copy of its params (``WeightsCopyable``): host arrays by pytree path, set back bit
for bit in the params' structure and dtypes; and ``EarlyStopping(restore_best_weights=True)``'s
copy saved by a Checkpoint after the best step and restored into a fresh Trainer."""

import os

import numpy as np
import pytest

import steploop as sl
from steploop.jax import OptaxStep

TRAIN, VAL = [4.0, -3.0], [2.2, -1.5]


def nested(jnp, optax):
    """A nested pytree of mixed dtypes (dict, list, tuple; float32, float16, bfloat16)."""
    params = {
        "layers": [{"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros(2, jnp.float16)}],
        "scale": (jnp.ones((), jnp.bfloat16), jnp.ones(3)),
    }

    def loss(p):
        layer = p["layers"][0]
        return (
            jnp.sum((layer["kernel"] - 1.5) ** 2)
            + jnp.sum((layer["bias"].astype(jnp.float32) + 0.5) ** 2)
            + (p["scale"][0].astype(jnp.float32) - 2.0) ** 2
            + jnp.sum((p["scale"][1] - 0.25) ** 2)
        )

    return OptaxStep(loss, params, optax.adam(0.1))


def leaves_equal(jax, a, b):
    """The two pytrees have the same structure and each leaf the same dtype, shape and bytes."""
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b):
        return False
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(
        x.dtype == y.dtype and np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in pairs
    )


def test_get_weights_is_a_host_copy_by_path_name(jax, jnp, optax):
    """get_weights is what variables() returns: NumPy arrays by path name, copies that later
    steps do not change."""
    step = nested(jnp, optax)
    sl.Trainer(step).run(3)
    kept = step.get_weights()
    assert sorted(kept) == ["layers/0/bias", "layers/0/kernel", "scale/0", "scale/1"]
    assert all(type(value) is np.ndarray for value in kept.values())
    assert {k: (v.dtype, v.shape) for k, v in kept.items()} == {
        k: (v.dtype, v.shape) for k, v in step.variables().items()
    }
    before = {name: value.copy() for name, value in kept.items()}
    sl.Trainer(step).run(3)
    assert all(np.array_equal(kept[name], before[name]) for name in kept)
    assert not np.array_equal(step.get_weights()["layers/0/kernel"], kept["layers/0/kernel"])


def test_set_weights_round_trips_a_nested_pytree_bit_for_bit(jax, jnp, optax):
    """set_weights(get_weights()) after more steps gives back the params of the copy: same
    structure, dtypes (float16, bfloat16 kept) and bytes; and the step still runs."""
    step = nested(jnp, optax)
    sl.Trainer(step).run(4)
    kept, params = step.get_weights(), step.params
    sl.Trainer(step).run(5)
    assert not leaves_equal(jax, step.params, params)
    step.set_weights(kept)
    assert leaves_equal(jax, step.params, params)
    step.step()  # the same structure and dtypes: the compiled step takes it


def test_set_weights_takes_bfloat16_read_back_from_an_npz(jax, jnp, optax, tmp_path):
    """An .npz reads bfloat16 back as raw 2-byte values: set_weights takes their bytes."""
    step = nested(jnp, optax)
    kept, params = step.get_weights(), step.params
    np.savez(tmp_path / "w.npz", **{name.replace("/", "."): v for name, v in kept.items()})
    with np.load(tmp_path / "w.npz") as saved:
        read = {name.replace(".", "/"): saved[name] for name in saved.files}
    sl.Trainer(step).run(2)
    step.set_weights(read)
    assert leaves_equal(jax, step.params, params)


def test_set_weights_refuses_other_names_and_shapes(jax, jnp, optax):
    step = nested(jnp, optax)
    kept = step.get_weights()
    with pytest.raises(ValueError, match=r"^OptaxStep\.set_weights: weights must map"):
        step.set_weights({**kept, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"^OptaxStep\.set_weights: weights must map"):
        step.set_weights(step.params)  # the pytree itself is not a mapping by name
    wrong = {**kept, "scale/1": np.zeros(4, np.float32)}
    with pytest.raises(ValueError, match=r"weights\['scale/1'\] has shape \(4,\); the param"):
        step.set_weights(wrong)


def early_model(jnp, optax, per_call, directory, restore=True):
    """Gradient descent on mean((w - TRAIN)**2), val_loss on VAL every 2 steps, early stopping
    with the best weights restored, checkpoints every 8 steps."""

    def loss(p, target):
        return jnp.mean((p["dense"]["kernel"] - target) ** 2) + jnp.sum(p["bias"][0] ** 2)

    params = {"dense": {"kernel": jnp.zeros(2)}, "bias": [jnp.zeros(())]}
    step = OptaxStep(loss, params, optax.sgd(0.02))
    early = sl.EarlyStopping(4, monitor="val_loss", restore_best_weights=restore)
    callbacks = [sl.Evaluate([jnp.array(VAL)], every=2), early]
    if directory is not None:
        callbacks.append(sl.Checkpoint(directory, every=8))
    data = [jnp.array(TRAIN)] * 200
    return step, early, sl.Trainer(step, callbacks, data=data, steps_per_call=per_call)


@pytest.mark.parametrize("per_call", [1, 3])
def test_a_checkpoint_after_the_best_step_restores_the_best_params(
    jax, jnp, optax, tmp_path, per_call
):
    """A run stopped at the last checkpoint after its best step, restored into a fresh Trainer,
    stops where the uninterrupted run does, says so, and ends with the best step's params bit for
    bit (not those of its stop step)."""
    whole, _, trainer = early_model(jnp, optax, per_call, None)
    result = trainer.run()
    best = int(result.stop_reason.split(" at step ")[1].split(",")[0])
    assert result.stop_reason.endswith(f"stopped at step {result.steps}, best weights restored)")
    saved_at = (result.steps - 1) // 8 * 8  # the last checkpoint before the stop
    assert best < saved_at < result.steps

    _, _, first = early_model(jnp, optax, per_call, str(tmp_path))
    first.run(saved_at)
    assert os.path.exists(tmp_path / f"ckpt-{saved_at}.arrays.npz")
    resumed, _, trainer = early_model(jnp, optax, per_call, str(tmp_path))
    assert trainer.restore(str(tmp_path)) == saved_at
    again = trainer.run()
    assert (again.steps, again.status, again.stop_reason) == (
        result.steps,
        result.status,
        result.stop_reason,
    )
    assert leaves_equal(jax, resumed.params, whole.params)
    at_stop, _, norestore = early_model(jnp, optax, per_call, None, restore=False)
    assert norestore.run().steps == result.steps
    assert not leaves_equal(jax, at_stop.params, whole.params)


def test_an_older_checkpoint_without_arrays_restores_without_the_copy(
    jax, jnp, optax, tmp_path, caplog
):
    """A checkpoint without ``ckpt-N.arrays.npz`` (written before copies were saved) restores;
    the run stops at the same step and says it could not restore the best weights."""
    _, _, trainer = early_model(jnp, optax, 1, None)
    result = trainer.run()
    saved_at = (result.steps - 1) // 8 * 8
    _, _, first = early_model(jnp, optax, 1, str(tmp_path))
    first.run(saved_at)
    os.remove(tmp_path / f"ckpt-{saved_at}.arrays.npz")
    _, _, trainer = early_model(jnp, optax, 1, str(tmp_path))
    assert trainer.restore(str(tmp_path)) == saved_at
    again = trainer.run()
    assert again.steps == result.steps
    assert "not restored: no copy of step" in again.stop_reason
    assert "no copy of the variables of the best step" in caplog.text
