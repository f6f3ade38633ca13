"""OptaxStep fused calls (one jitted lax.while_loop of K steps) equal step-by-step runs exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steploop as sl
from steploop.criteria_program import CriteriaProgram
from steploop.jax import OptaxStep
from tests.strategies import array_criteria, steps_per_call, tf_learning_rates


def quadratic(jnp, optax, lr, targets=False):
    def loss(p):
        z = p["x"] - 4.0
        return {"loss": z**2, "z": z, "values": {"z": z}} if targets else z**2

    return OptaxStep(loss, {"x": jnp.array(0.0)}, optax.sgd(lr))


def run(step, criteria, per_call, **options):
    trainer = sl.Trainer(step, criteria, steps_per_call=per_call, **options)
    result = trainer.run()
    return (result.status, result.steps, result.stop_reason, trainer.history)


@settings(max_examples=12)
@given(array_criteria(), steps_per_call, tf_learning_rates)
def test_fused_run_equals_step_by_step(jnp, optax, criteria, k, lr):
    """Same status, stop step, reason, history and x (bit for bit)."""
    outcomes = []
    for per_call in (1, k):
        step = quadratic(jnp, optax, lr)
        outcome = run(step, criteria(), per_call)
        outcomes.append((*outcome, np.asarray(step.params["x"]).tobytes()))
    assert outcomes[0] == outcomes[1]


@settings(max_examples=6)
@given(steps_per_call, tf_learning_rates)
def test_fused_records_equal_step_by_step(jnp, optax, k, lr):
    """iterate() records (loss, values, gradients, target gradients) are the same either way."""
    seen = []
    for per_call in (1, k):
        step = quadratic(jnp, optax, lr, targets=True)
        trainer = sl.Trainer(
            step, [sl.LossBelow(1e-10) | sl.MaxSteps(120)], steps_per_call=per_call
        )
        seen.append(
            [
                (
                    r.step,
                    r.loss,
                    {k: float(v) for k, v in r.values.items()},
                    {k: float(v) for k, v in r.gradients.items()},
                    {t: {k: float(v) for k, v in g.items()} for t, g in r.target_gradients.items()},
                )
                for r in trainer.iterate()
            ]
        )
    assert seen[0] == seen[1] and len(seen[0]) > 1


def test_the_loop_really_ends_at_the_stop_step(jnp, optax):
    """A call of 1000 steps ends after step 70, where LossBelow fires: 70 steps computed."""
    step = quadratic(jnp, optax, 0.1)
    stopper = CriteriaProgram([sl.LossBelow(1e-12) | sl.MaxSteps(1000)])
    chunk = step.run_steps(1000, 1, stopper, None, False)
    assert (chunk.steps, chunk.stopped) == (70, True)
    assert np.float32(step.params["x"]) == np.float32(3.9999993)
    assert chunk.output.loss.shape == (1000,)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_fused_data_runs_equal_step_by_step(jnp, optax, k):
    """Batches stacked K at a time: same steps, history and params; the stop keeps the data's
    position (the batches pulled but not used go back)."""
    rng = np.random.default_rng(0)
    data = [
        (rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=4).astype(np.float32))
        for _ in range(20)
    ]

    def loss(p, batch):
        x, y = batch
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    outcomes = []
    for per_call in (1, k):
        params = {"w": jnp.zeros(2), "b": jnp.array(0.0)}
        step = OptaxStep(loss, params, optax.adam(0.05))
        outcome = run(step, [sl.MaxSteps(13)], per_call, data=data)
        outcomes.append((*outcome, [np.asarray(v).tobytes() for v in step.variables().values()]))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("policy", ["skip", "stop", "rollback"])
def test_fused_nonfinite_policies_equal_step_by_step(jnp, optax, policy):
    outcomes = []
    for per_call in (1, 3):
        step = OptaxStep(
            lambda p: jnp.sqrt(p["x"]),
            {"x": jnp.array(1.0)},
            optax.sgd(0.5),
            on_nonfinite=policy,
        )
        outcome = run(step, [sl.MaxSteps(8)], per_call)
        outcomes.append((*outcome, float(step.params["x"])))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][1] == (5 if policy == "stop" else 8)


def test_eager_steps_fuse_in_python(jnp, optax):
    step = OptaxStep(
        lambda p: (p["x"] - 4.0) ** 2, {"x": jnp.array(0.0)}, optax.sgd(0.1), jit=False
    )
    outcome = run(step, [sl.LossBelow(1e-12) | sl.MaxSteps(1000)], 16)
    assert outcome[:2] == ("converged", 70)


@given(st.integers(min_value=1, max_value=5))
@settings(max_examples=3)
def test_no_global_x64(jax, jnp, optax, k):
    """A fused call leaves jax_enable_x64 as it found it."""
    before = jax.config.jax_enable_x64
    run(quadratic(jnp, optax, 0.1), [sl.MaxSteps(4)], k)
    assert jax.config.jax_enable_x64 == before and jnp.array(1.0).dtype == jnp.float32


def test_bfloat16_batches_are_stacked_into_fused_calls(jnp, optax):
    """bfloat16 (an ml_dtypes number, NumPy kind "V") batches fuse as float32 ones do, with the
    step by step result."""
    import jax

    batches = [jnp.full((4,), 1.0 + i % 3, jnp.bfloat16) for i in range(12)]

    def loss(p, batch):
        return jnp.mean((p["w"] - batch.astype(jnp.float32)) ** 2)

    outcomes = []
    for per_call in (1, 4):
        step = OptaxStep(loss, {"w": jnp.array(0.0)}, optax.sgd(0.1))
        calls = []
        original = step.run_steps

        def counted(*args, original=original, calls=calls):
            chunk = original(*args)
            calls.append(chunk.steps)
            return chunk

        step.run_steps = counted
        trainer = sl.Trainer(step, [sl.MaxSteps(12)], data=batches, steps_per_call=per_call)
        trainer.run()
        outcomes.append((trainer.history, jax.device_get(step.params["w"]).tobytes()))
        if per_call == 4:
            assert calls == [4, 4, 4]  # not one plain step a call: the batches were stacked
    assert outcomes[0] == outcomes[1]


def test_data_that_ends_inside_a_call_compiles_no_new_loop(jnp, optax):
    """The last call of a run whose data ends mid-call stacks its batches padded to the loop's
    rows: no new input shape, so nothing is traced again (a compile there once made the auto
    sizes fall to one step a call for good)."""
    traces = []

    def loss(p, batch):
        traces.append(1)  # runs when JAX traces, not when a compiled step runs
        return jnp.mean((p["w"] - batch) ** 2)

    step = OptaxStep(loss, {"w": jnp.array(0.0)}, optax.sgd(0.1))
    batches = [jnp.full((3,), float(i)) for i in range(10)]
    sl.Trainer(step, [sl.MaxSteps(100)], data=batches[:8], steps_per_call=4).run()
    traced = len(traces)
    trainer = sl.Trainer(step, [sl.MaxSteps(100)], data=batches, steps_per_call=4)
    assert trainer.run().steps == 10  # calls of 4, 4 and 2 steps
    assert len(traces) == traced


def test_a_call_past_step_2_to_the_53_counts_its_steps_exactly(jnp, optax):
    """The first step reaches the loop as an exact int64: MaxSteps(2**53 + 2) from step 2**53 + 1
    stops after two steps (a float64 first step would read 2**53 and run three)."""
    n = 2**53 + 2
    program = CriteriaProgram([sl.MaxSteps(n)])
    chunk = quadratic(jnp, optax, 0.1).run_steps(8, n - 1, program, None, False)
    assert (chunk.steps, chunk.stopped) == (2, True)


def test_a_weakly_typed_optimiser_state_compiles_each_fused_loop_once(jnp, optax):
    """OptaxStep makes the optimiser's initial state strong, as it does the parameters: the
    loop's first call and later ones share one compilation (the loss is traced once per loop)."""
    traces = []
    weak = optax.GradientTransformation(
        lambda params: jnp.asarray(0.0),  # a weakly typed scalar state
        lambda updates, state, params=None: (jax_tree_map(lambda u: -0.1 * u, updates), state),
    )

    def loss(p):
        traces.append(1)
        return (p["x"] - 4.0) ** 2

    step = OptaxStep(loss, {"x": jnp.array(0.0)}, weak)
    sl.Trainer(step, [sl.MaxSteps(4)], steps_per_call=4).run()
    after_first = len(traces)
    for _ in range(2):
        sl.Trainer(step, [sl.MaxSteps(4)], steps_per_call=4).run()
    assert len(traces) == after_first
    assert step.opt_state.weak_type is False


def jax_tree_map(function, tree):
    import jax

    return jax.tree_util.tree_map(function, tree)
