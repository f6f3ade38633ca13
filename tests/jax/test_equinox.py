"""OptaxStep with an equinox model through its split state (``eqx.partition``/``eqx.combine``):
examples/jax_equinox.py equals a hand-written optax loop, and checkpoints restore equinox's
pytree by path."""

import pathlib
import re
import runpy

import numpy as np
import pytest

import steploop as sl
from steploop.jax import OptaxStep

eqx = pytest.importorskip("equinox")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "jax_equinox.py"


def regression_data():
    """The example's data: 256 rows of x in [-1, 1]^2, y = sin(3 x0) + x1^2 (float32)."""
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1.0, 1.0, (256, 2)).astype(np.float32)
    return xs, (np.sin(3.0 * xs[:, 0]) + xs[:, 1] ** 2).astype(np.float32)


def split_mlp(jax, seed=0, width=32):
    model = eqx.nn.MLP(2, "scalar", width, 2, key=jax.random.PRNGKey(seed))
    return eqx.partition(model, eqx.is_inexact_array)


def hand_loop(jax, jnp, optax, xs, ys, epochs=40, jit=True):
    """The example's run written by hand: Adam(1e-2), batches of 32 rows of epoch e (from 0) in
    the order ``default_rng([0, e]).permutation(256)``, up to ``epochs`` epochs, stopping after
    the first step whose batch loss (taken before its update) is below 5e-3. Returns the step
    count, the epoch (from 1) and the trained model."""
    params, static = split_mlp(jax)
    opt = optax.adam(1e-2)
    state = opt.init(params)

    def mse(params, x, y):
        model = eqx.combine(params, static)
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)

    def update(params, state, x, y):
        loss, grads = jax.value_and_grad(mse)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    update = jax.jit(update) if jit else update
    step = 0
    for epoch in range(epochs):
        order = np.random.default_rng([0, epoch]).permutation(len(xs))
        for start in range(0, len(xs), 32):
            rows = order[start : start + 32]
            params, state, loss = update(params, state, xs[rows], ys[rows])
            step += 1
            if float(loss) < 5e-3:
                return step, epoch + 1, eqx.combine(params, static)
    return step, epochs, eqx.combine(params, static)


def printed(pattern, text):
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return found.groups()


def test_the_example_equals_the_hand_written_loop(jax, jnp, optax, capsys):
    """Same stop step and epoch, the same final loss on all rows and trained weights (rel 1e-5),
    the restored params equal to the trained ones bit for bit, the variables named by equinox's
    pytree paths. Not bit for bit with the hand loop: XLA compiles OptaxStep's jitted step (which
    also returns the gradients and the non-finite guard) into another program than the hand
    loop's, rounding differently from step 2 on (~1e-7 in the weights after 138 steps); eager,
    both are bit for bit (the next test)."""
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    xs, ys = regression_data()
    steps, epoch, model = hand_loop(jax, jnp, optax, xs, ys)
    final = float(jnp.mean((jax.vmap(model)(xs) - ys) ** 2))

    names = printed(r"variables \(pytree paths of the MLP\): (.*)", out)[0].split(", ")
    assert names == [f"layers/{i}/{leaf}" for i in range(3) for leaf in ("weight", "bias")]
    assert printed(r"equinox MLP: (\d+) steps in (\d+) epochs, converged", out) == (
        str(steps),
        str(epoch),
    )
    assert printed(r"restored step (\d+) .*: params bit for bit: (\w+)", out) == (
        str(steps),
        "True",
    )
    assert float(printed(r"final loss on all 256 rows: (\S+)", out)[0]) == pytest.approx(
        final, rel=1e-5
    )
    ours = eqx.filter(namespace["fresh"].params, eqx.is_array)
    theirs = eqx.filter(model, eqx.is_array)
    leaves = jax.tree_util.tree_leaves
    assert len(leaves(ours)) == len(leaves(theirs)) == 6
    for a, b in zip(leaves(ours), leaves(theirs), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_eager_it_equals_the_hand_written_loop_bit_for_bit(jax, jnp, optax):
    """With ``jit=False`` on both sides, two epochs (16 steps) of the example's run leave the same
    weights, bit for bit: the step is the hand loop's, op for op."""
    xs, ys = regression_data()
    params, static = split_mlp(jax)

    def loss(params, batch):
        x, y = batch
        return jnp.mean((jax.vmap(eqx.combine(params, static))(x) - y) ** 2)

    step = OptaxStep(loss, params, optax.adam(1e-2), jit=False)
    data = sl.batches((xs, ys), 32, shuffle=0)
    result = sl.Trainer(step, [sl.LossBelow(5e-3)], data=data, epochs=2).run()
    steps, _, model = hand_loop(jax, jnp, optax, xs, ys, epochs=2, jit=False)
    assert result.steps == steps == 16
    ours = jax.tree_util.tree_leaves(step.params)
    theirs = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    assert len(ours) == len(theirs) == 6
    assert all(
        np.asarray(a).tobytes() == np.asarray(b).tobytes()
        for a, b in zip(ours, theirs, strict=True)
    )


def equinox_step(jax, jnp, optax, seed=0, width=32, wrap=False):
    """An OptaxStep on an equinox MLP's params (wrapped in ``{"mlp": ...}`` with ``wrap``)."""
    params, static = split_mlp(jax, seed, width)
    xs, ys = regression_data()

    def loss(p):
        model = eqx.combine(p["mlp"] if wrap else p, static)
        return jnp.mean((jax.vmap(model)(xs[:32]) - ys[:32]) ** 2)

    return OptaxStep(loss, {"mlp": params} if wrap else params, optax.adam(1e-2))


def test_a_checkpoint_restores_the_equinox_params_bit_for_bit(tmp_path, jax, jnp, optax):
    """Saved after 3 Adam steps, restored into a step built from other weights: the params and
    the optimiser state (Adam's moments, by path) equal the saved ones bit for bit."""
    saved = equinox_step(jax, jnp, optax)
    sl.Trainer(saved, [sl.MaxSteps(3), sl.Checkpoint(str(tmp_path), every=1)]).run()
    fresh = equinox_step(jax, jnp, optax, seed=1)
    assert not np.array_equal(
        fresh.variables()["layers/0/weight"], saved.variables()["layers/0/weight"]
    )
    assert sl.Trainer(fresh).restore(str(tmp_path)) == 3
    for tree in ("params", "opt_state"):
        ours = jax.tree_util.tree_leaves(getattr(fresh, tree))
        theirs = jax.tree_util.tree_leaves(getattr(saved, tree))
        assert len(ours) == len(theirs) > 0
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()


def reshaped_leaf(jax, jnp, optax):
    """One leaf of the tree reshaped with ``eqx.tree_at``: layers/0/weight (32, 2) -> (32, 3)."""
    step = equinox_step(jax, jnp, optax)
    step.params = eqx.tree_at(lambda p: p.layers[0].weight, step.params, jnp.zeros((32, 3)))
    return step


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            reshaped_leaf,
            r"variable 'layers/0/weight' is \(32, 3\) float32 but the checkpoint has "
            r"\(32, 2\) float32",
        ),
        (
            lambda jax, jnp, optax: equinox_step(jax, jnp, optax, wrap=True),
            r"variable 'mlp/layers/0/weight' \(32, 2\) float32 is not in it",
        ),
    ],
    ids=["reshaped", "renamed"],
)
def test_restore_refuses_a_changed_leaf_naming_it(tmp_path, jax, jnp, optax, change, message):
    """A leaf reshaped in equinox's tree, or every leaf renamed (the model put under "mlp"), is a
    ValueError naming the leaf; the params stay as they were."""
    sl.Trainer(equinox_step(jax, jnp, optax), [sl.Checkpoint(str(tmp_path), every=1)]).run(1)
    other = change(jax, jnp, optax)
    before = other.variables()
    with pytest.raises(ValueError, match=r"^OptaxStep\.restore: checkpoint .*" + message):
        sl.Trainer(other).restore(str(tmp_path))
    assert all(np.array_equal(before[k], v) for k, v in other.variables().items())
