"""A JAX training run for the resume tests, run in a subprocess: it restores from ``--dir`` if it
can, saves checkpoints there, may SIGKILL itself at ``--kill-at``, and writes what it ended with.

python -m tests.jax.resume_worker --model MODEL --dir D --out F [--kill-at K]

MODEL is one of ``MODELS``: ``quadratic`` (Adam on ``(x - 4)**2``, one step a call, converges
at 61) or ``data`` (Adam on a linear regression over a list of batches, fused
``steps_per_call=4``; the data runs out at 40). Adam's moments are in the checkpoints, so a
resume that lost them would drift.
"""


import jax.numpy as jnp
import numpy as np
import optax

import steploop as sl
from steploop.jax import OptaxStep
from tests.resume import worker_main


def quadratic():
    """Adam(0.1) from x = 0 until the loss is below 1e-6 (step 61), one step a call."""
    step = OptaxStep(lambda p: (p["x"] - 4.0) ** 2, {"x": jnp.array(0.0)}, optax.adam(0.1))
    criteria = [sl.LossBelow(1e-6) | sl.MaxSteps(200), sl.LossChangeBelow(1e-15, patience=3)]
    return step, criteria, None, 1, 7


def data():
    """Adam(0.05) on 40 batches of a linear regression, 4 steps a fused call; the data runs out."""
    rng = np.random.default_rng(0)
    truth = np.array([1.0, -2.0, 0.5], np.float32)
    batches = []
    for _ in range(40):
        x = rng.normal(size=(8, 3)).astype(np.float32)
        batches.append((x, x @ truth + np.float32(0.25)))

    def loss(p, batch):
        x, y = batch
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    step = OptaxStep(loss, {"w": jnp.zeros(3), "b": jnp.array(0.0)}, optax.adam(0.05))
    return step, [sl.EarlyStopping(patience=20), sl.StopOnNaN()], batches, 4, 5


MODELS = {"quadratic": quadratic, "data": data}


if __name__ == "__main__":
    worker_main(MODELS)
