"""An equinox model trained with ``OptaxStep`` through equinox's split state.

``eqx.partition(model, eqx.is_inexact_array)`` splits an ``eqx.nn.MLP`` (seeded with
``jax.random.PRNGKey(0)``) into ``params`` (its float arrays, a pytree of the model's own shape)
and ``static`` (everything else); ``OptaxStep`` trains ``params`` and the loss puts the model back
together with ``eqx.combine(params, static)``. Nothing in steploop knows about equinox: the
parameters are an ordinary pytree, named by path (``layers/0/weight``).

The run: Adam(1e-2) on 256 rows of synthetic regression data, ``sl.batches(..., 32, shuffle=0)``
(8 batches per epoch, each epoch in its own order), up to 40 epochs, until a batch's loss is below
5e-3; a ``Checkpoint`` every epoch (and at the end) into a temporary directory. A fresh
``OptaxStep``, built from a model with other weights (``PRNGKey(1)``), is then restored from it by
pytree path: the parameters come back bit for bit. ``eqx.combine(step.params, static)`` is the
trained model. ``tests/jax/test_equinox.py`` checks the numbers printed here against a hand-written
optax loop.
"""

import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import steploop as sl
from steploop.jax import OptaxStep

rng = np.random.default_rng(0)
xs = rng.uniform(-1.0, 1.0, (256, 2)).astype(np.float32)
ys = (np.sin(3.0 * xs[:, 0]) + xs[:, 1] ** 2).astype(np.float32)


def mlp(seed):
    """A 2 -> 32 -> 32 -> scalar MLP (ReLU), its weights drawn from ``PRNGKey(seed)``."""
    return eqx.nn.MLP(2, "scalar", 32, 2, key=jax.random.PRNGKey(seed))


params, static = eqx.partition(mlp(0), eqx.is_inexact_array)


def loss(params, batch):
    """The mean squared error of the model ``params`` and ``static`` make, on ``batch``."""
    x, y = batch
    model = eqx.combine(params, static)
    return jnp.mean((jax.vmap(model)(x) - y) ** 2)


def mse(model):
    return float(jnp.mean((jax.vmap(model)(xs) - ys) ** 2))


print(f"initial loss on all {len(xs)} rows: {mse(mlp(0)):.7g}")
data = sl.batches((xs, ys), 32, shuffle=0)
step = OptaxStep(loss, params, optax.adam(1e-2))
print(f"variables (pytree paths of the MLP): {', '.join(step.variables())}")

with tempfile.TemporaryDirectory() as directory:
    saves = sl.Checkpoint(directory, every=sl.every(epochs=1))
    trainer = sl.Trainer(step, [sl.LossBelow(5e-3), saves], data=data, epochs=40)
    result = trainer.run()
    epoch = int(trainer.history["epoch"][-1])
    print(f"equinox MLP: {result.steps} steps in {epoch} epochs, {result.status}")
    print(f"    stop reason: {result.stop_reason}")

    # a fresh model (other weights), restored by pytree path from the checkpoint
    fresh_params, _ = eqx.partition(mlp(1), eqx.is_inexact_array)
    fresh = OptaxStep(loss, fresh_params, optax.adam(1e-2))
    restored = sl.Trainer(fresh, data=data, epochs=40).restore(directory)
    same = all(
        a.tobytes() == b.tobytes()
        for a, b in zip(fresh.variables().values(), step.variables().values(), strict=True)
    )
    print(f"restored step {restored} into a fresh OptaxStep: params bit for bit: {same}")

model = eqx.combine(fresh.params, static)
print(f"final loss on all {len(xs)} rows: {mse(model):.7g}")
