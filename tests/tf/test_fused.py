"""TensorFlow fused calls (steps_per_call=K, optionally XLA) equal step-by-step runs exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steploop as sl
from steploop.tf import MinimizeStep, TapeStep
from tests.helpers import tf_quadratic
from tests.strategies import array_criteria, steps_per_call, tf_learning_rates


@settings(max_examples=12)
@given(array_criteria(), steps_per_call, tf_learning_rates, st.booleans())
def test_fused_tape_run_equals_step_by_step(tf, keras, criteria, k, lr, jit):
    """Same status, stop step, reason, history and x (bit for bit), with or without XLA."""
    outcomes = []
    for per_call in (1, k):
        x, step = tf_quadratic(tf, keras, "tape", lr, jit_compile=jit)
        trainer = sl.Trainer(step, criteria(), steps_per_call=per_call)
        result = trainer.run()
        outcomes.append(
            (result.status, result.steps, result.stop_reason, x.numpy().tobytes(), trainer.history)
        )
    assert outcomes[0] == outcomes[1]


@settings(max_examples=6)
@given(st.sampled_from(["minimize", "persistent"]), steps_per_call, tf_learning_rates)
def test_fused_records_equal_step_by_step(tf, keras, kind, k, lr):
    """iterate() records (loss, values, gradients, target gradients) are the same either way."""
    seen = []
    for per_call in (1, k):
        _, step = tf_quadratic(tf, keras, kind, lr)
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
    assert seen[0] == seen[1]
    assert len(seen[0]) > 1


def test_first_step_is_plain_then_chunks_follow(tf, keras):
    """A compiled strategy takes one plain step (building its slots), then fused calls."""
    _x, step = tf_quadratic(tf, keras, "tape", 0.1, jit_compile=False)
    trainer = sl.Trainer(step, [sl.MaxSteps(21)], steps_per_call=10)
    assert not step.ready_to_fuse
    result = trainer.run()
    assert step.ready_to_fuse and result.steps == 21
    assert len(step._loops) == 1  # one compiled loop served chunks 2-11 and 12-21


def make_model(tf, keras, seed=0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(120, 4)).astype("float32")
    targets = features @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    traces = []

    def loss(batch):
        traces.append(1)
        x, y = batch
        return tf.reduce_mean((model(x) - y) ** 2)

    return model, loss, features, targets, traces


@pytest.mark.parametrize("source", ["tf.data", "list"])
@pytest.mark.parametrize("jit", [False, True])
def test_fused_data_runs_equal_step_by_step(tf, keras, source, jit):
    """Batches pulled inside the compiled loop (tf.data) or stacked on the host (a list) give the
    same history and weights as one batch a call; the ragged last batch is handled."""
    results = []
    for k in (1, 8):
        model, loss, features, targets, traces = make_model(tf, keras)
        if source == "tf.data":
            data = tf.data.Dataset.from_tensor_slices((features, targets)).batch(16).repeat(6)
        else:
            data = [(features[i : i + 16], targets[i : i + 16]) for i in range(0, 120, 16)] * 6
        step = TapeStep(loss, keras.optimizers.Adam(0.01), jit_compile=jit)
        trainer = sl.Trainer(step, [sl.StopOnNaN()], data=data, steps_per_call=k)
        result = trainer.run()
        weights = [w.numpy().tobytes() for w in model.weights]
        results.append((result.status, result.steps, trainer.history, weights))
        assert len(traces) <= 5, len(traces)  # a handful of traces for 48 steps, not one a batch
    assert results[0][:2] == ("exhausted", 48)
    assert results[0] == results[1]


def test_fused_stop_keeps_the_data_position(tf, keras):
    """A criterion firing mid-chunk leaves the next batch for the next run (tf.data iterator)."""
    dataset = tf.data.Dataset.range(1, 31).map(lambda i: tf.cast(i, tf.float32))
    w = tf.Variable(0.0, name="w")
    step = TapeStep(lambda b: (w - 0.0) ** 2 + b, keras.optimizers.SGD(0.1))
    trainer = sl.Trainer(step, [sl.LossBelow(7.5)], data=dataset, steps_per_call=5)
    assert trainer.run().steps == 1
    losses = trainer.history["loss"].tolist()
    assert losses == [1.0]  # step 1's loss 1 < 7.5 stops at once
    trainer.callbacks[0].tol = 0.5
    trainer.run(max_steps=6)
    assert trainer.history["loss"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_jit_compile_needs_compile(tf, keras):
    x = tf.Variable(0.0)
    with pytest.raises(
        ValueError,
        match="TapeStep: jit_compile=True compiles the step with XLA, which needs compile=True",
    ):
        TapeStep(lambda: x**2, keras.optimizers.SGD(0.1), compile=False, jit_compile=True)
    message = "MinimizeStep: jit_compile must be a bool or \"auto\", got 'yes'"
    with pytest.raises(TypeError, match=message):
        MinimizeStep(lambda: x**2, [x], keras.optimizers.SGD(0.1), jit_compile="yes")


def test_a_million_fused_steps_fit_in_memory(tf, keras):
    """1,000,000 XLA-fused steps with LossBelow | MaxSteps: the history holds numbers only."""
    import resource

    _x, step = tf_quadratic(tf, keras, "tape", 1e-7, jit_compile=True)
    trainer = sl.Trainer(step, [sl.LossBelow(0.0) | sl.MaxSteps(1_000_000)], steps_per_call=50_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = trainer.run()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert (result.steps, result.status) == (1_000_000, "budget")
    assert trainer.history["loss"].shape == (1_000_000,)
    assert grown_mb < 200, f"peak resident memory grew by {grown_mb:.0f} MB"


def test_a_dataset_is_prefetched_and_other_data_left_alone(tf, keras):
    x = tf.Variable(0.0)
    step = TapeStep(lambda b: (x - b) ** 2, keras.optimizers.SGD(0.1))
    dataset = tf.data.Dataset.range(3).map(lambda i: tf.cast(i, tf.float32))
    assert "Prefetch" in type(step.prepare_data(dataset)).__name__
    batches = [1.0, 2.0]
    assert step.prepare_data(batches) is batches


def test_structured_calls_give_the_same_steps_as_flat_calls(tf, keras, monkeypatch):
    """The flat call of a concrete function (the fast path) equals its structured call."""
    import steploop.tf._flatcall as base

    results = []
    for flat in (True, False):
        monkeypatch.setattr(base, "FLAT_CALLS", flat)
        for k in (1, 16):
            x, step = tf_quadratic(tf, keras, "tape", 0.3, jit_compile=False)
            trainer = sl.Trainer(step, [sl.LossBelow(1e-10) | sl.MaxSteps(90)], steps_per_call=k)
            result = trainer.run()
            results.append((result.steps, x.numpy().tobytes(), trainer.history))
    assert all(r == results[0] for r in results)


def test_data_that_ends_inside_a_call_traces_no_new_loop(tf, keras):
    """As for JAX: the last, short call stacks its batches padded to the loop's rows, so the
    compiled loop is not traced again for a new input shape."""
    w = tf.Variable(0.0, name="w")
    traces = []

    def loss(batch):
        traces.append(1)  # runs when TensorFlow traces, not when a compiled step runs
        return tf.reduce_mean((w - batch) ** 2)

    step = TapeStep(loss, keras.optimizers.SGD(0.1))
    batches = [tf.fill([3], float(i)) for i in range(11)]
    sl.Trainer(step, [sl.MaxSteps(100)], data=batches[:9], steps_per_call=4).run()
    traced = len(traces)
    trainer = sl.Trainer(step, [sl.MaxSteps(100)], data=batches, steps_per_call=4)
    assert trainer.run().steps == 11  # a plain step (none pending), then calls of 4, 4 and 2
    assert len(traces) == traced


def _fused_runs(tf, keras):
    """Runs that go through compiled calls: no data and stacked data, every step's gradients
    and values read (iterate), and the default run()."""
    out = []
    x, step = tf_quadratic(tf, keras, "tape", 0.3, jit_compile=False)
    trainer = sl.Trainer(step, [sl.LossBelow(1e-10) | sl.MaxSteps(90)], steps_per_call=16)
    out.append((trainer.run().steps, x.numpy().tobytes(), trainer.history))
    w = tf.Variable(0.0, name="w")
    batched = TapeStep(lambda b: tf.reduce_mean((w - b) ** 2), keras.optimizers.SGD(0.1))
    data = [tf.fill([2], float(i)) for i in range(10)]
    trainer = sl.Trainer(batched, [sl.MaxSteps(10)], data=data, steps_per_call=4)
    grads = [float(r.gradients["w"]) for r in trainer.iterate()]
    out.append((trainer.step, w.numpy().tobytes(), trainer.history, grads))
    return out


def test_calls_that_no_tape_records_equal_the_checked_calls(tf, keras, monkeypatch):
    """The short cut taken when no gradient tape is active (flat outputs packed by steploop)
    gives what TensorFlow's checked call gives, and is taken."""
    import steploop.tf._flatcall as base

    taken = []
    made = base._fast_call

    def counted(concrete):
        fast = made(concrete)
        if fast is None:
            return None
        call, pack = fast
        return (lambda *tensors: taken.append(1) or call(*tensors)), pack

    monkeypatch.setattr(base, "_fast_call", counted)
    fast = _fused_runs(tf, keras)
    assert len(taken) >= 4
    monkeypatch.setattr(base, "could_possibly_record", lambda: True)  # as under a tape
    calls = len(taken)
    assert _fused_runs(tf, keras) == fast
    assert len(taken) == calls  # the checked call each time


def test_a_run_inside_a_gradient_tape_takes_the_checked_call(tf, keras):
    x, step = tf_quadratic(tf, keras, "tape", 0.3, jit_compile=False)
    trainer = sl.Trainer(step, [sl.LossBelow(1e-10) | sl.MaxSteps(90)], steps_per_call=16)
    with tf.GradientTape():
        result = trainer.run()
    plain_x, plain = tf_quadratic(tf, keras, "tape", 0.3, jit_compile=False)
    expected = sl.Trainer(plain, [sl.LossBelow(1e-10) | sl.MaxSteps(90)], steps_per_call=1)
    assert result.steps == expected.run().steps
    assert x.numpy().tobytes() == plain_x.numpy().tobytes()


def test_the_packer_rebuilds_tensors_by_tensorflows_order_and_refuses_the_rest(tf):
    from steploop.tf._flatcall import packer

    a, b, c = tf.constant(1.0), tf.constant(2.0), tf.constant(3.0)
    pack = packer([a, {"z": b, "m": (c, None)}], 3)
    assert pack(["A", "C", "B"]) == ["A", {"z": "B", "m": ("C", None)}]
    assert list(pack(["A", "C", "B"])[1]) == ["z", "m"]  # the keys in the order returned
    assert packer((a, b), 3) is None  # the outputs do not match the count
    assert packer({1: a}, 1) is None  # keys TensorFlow might order otherwise
    assert packer((a, "text"), 1) is None
    handle = tf.Variable(1.0).handle
    assert packer((handle,), 1) is None


def _data_asking_to_stop(tf, keras, setting, asks_at):
    """A run whose data asks the Trainer to stop as it yields batch ``asks_at``, then 3 more
    steps: (steps, reason, steps after the second run, history, w)."""
    w = tf.Variable(0.0, name="w")
    step = TapeStep(lambda b: tf.reduce_mean((w - b) ** 2), keras.optimizers.SGD(0.1))
    holder = {}

    def data():
        for i in range(10):
            if i + 1 == asks_at and "asked" not in holder:
                holder["asked"] = True
                holder["trainer"].stop(f"the data asked to stop at its batch {i + 1}")
            yield tf.fill([2], float(i))

    trainer = holder["trainer"] = sl.Trainer(
        step, [sl.MaxSteps(100)], data=data(), steps_per_call=setting
    )
    first = trainer.run()
    second = trainer.run(max_steps=3)
    return first.steps, first.stop_reason, second.steps, trainer.history, w.numpy().tobytes()


@pytest.mark.parametrize("asks_at", [1, 3, 6])
def test_a_stop_the_data_asks_for_as_it_yields_ends_a_compiled_call_before_that_batch(
    tf, keras, asks_at
):
    """The batches of a compiled call are pulled in Python first: the one the data yielded as
    it asked to stop is put back and runs no step, as step by step; the reason is the one
    asked, and the next run starts with that batch."""
    fused = _data_asking_to_stop(tf, keras, 4, asks_at)
    assert fused == _data_asking_to_stop(tf, keras, 1, asks_at)
    assert fused[:3] == (asks_at - 1, f"the data asked to stop at its batch {asks_at}", asks_at + 2)
