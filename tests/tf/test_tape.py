"""TapeStep: gradients reported by variable name, converted only when read; watching rules."""

import numpy as np
import pytest

import steploop as sl
from steploop.tf import TapeStep


class CountingTapeStep(TapeStep):
    """Counts how often the Trainer converts gradient mappings to NumPy."""

    conversions = 0

    def to_host(self, tree):
        if isinstance(tree, dict) and tree:
            CountingTapeStep.conversions += 1
        return super().to_host(tree)


def test_gradients_are_copied_to_the_host_only_when_read(tf, keras):
    x = tf.Variable(0.0, name="x")
    CountingTapeStep.conversions = 0
    strategy = CountingTapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1))
    sl.Trainer(strategy, callbacks=[sl.LossBelow(1e-3)], steps_per_call=1).run()
    assert CountingTapeStep.conversions == 0
    trainer = sl.Trainer(strategy, callbacks=[sl.GradientNormBelow(1e-3)], steps_per_call=1)
    result = trainer.run()
    assert CountingTapeStep.conversions == result.steps - trainer.history.rows + trainer.step


def test_keras_variables_are_named_by_path_and_watched_without_var_list(tf, keras):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(2, name="hidden"),
            keras.layers.Dense(1, name="out"),
        ],
        name="net",
    )
    data = np.ones((4, 3), np.float32)
    step = TapeStep(lambda: tf.reduce_mean(model(data) ** 2), keras.optimizers.SGD(0.01))
    record = next(sl.Trainer(step).iterate())
    expected = ["net/hidden/kernel", "net/hidden/bias", "net/out/kernel", "net/out/bias"]
    assert list(record.gradients) == expected
    assert list(record.variables) == expected
    assert record.gradients["net/hidden/kernel"].shape == (3, 2)
    with_list = TapeStep(
        lambda: tf.reduce_mean(model(data) ** 2),
        keras.optimizers.SGD(0.01),
        var_list=model.trainable_variables,
    )
    assert list(with_list.step().gradients) == expected


def test_clashing_names_are_made_unique(tf, keras):
    a, b = tf.Variable(1.0, name="w"), tf.Variable(2.0, name="w")
    step = TapeStep(lambda: a * b, keras.optimizers.SGD(0.1), var_list=[a, b])
    gradients = step.step().gradients
    assert {k: float(v) for k, v in gradients.items()} == {"w": 2.0, "w_1": 1.0}


@pytest.mark.parametrize("compile", [True, False])
def test_watch_accessed_variables_false_updates_only_var_list(tf, keras, compile):
    a, b = tf.Variable(1.0, name="a"), tf.Variable(1.0, name="b")
    step = TapeStep(
        lambda: (a * b - 3.0) ** 2,
        keras.optimizers.SGD(0.1),
        var_list=[a],
        watch_accessed_variables=False,
        compile=compile,
    )
    record = next(sl.Trainer(step).iterate())
    assert list(record.gradients) == ["a"] and b.numpy() == 1.0 and a.numpy() == pytest.approx(1.4)


def test_compiled_step_traces_once_for_a_zero_argument_loss(tf, keras):
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1))
    sl.Trainer(step).run(max_steps=20)
    # one trace, plus the one TensorFlow adds when the optimizer creates its variables
    assert step._function.experimental_get_tracing_count() <= 2


@pytest.mark.parametrize("strategy", ["tape", "persistent", "minimize"])
def test_compiled_equals_eager_when_a_gradient_is_a_variable(tf, keras, strategy):
    """d(a*b)/db is the value of a: the compiled step must use (and report) it before a moves."""
    from steploop.tf import MinimizeStep, PersistentTapeStep

    def build(a, b, opt, compile):
        if strategy == "tape":
            return TapeStep(lambda: a * b, opt, var_list=[a, b], compile=compile)
        if strategy == "persistent":
            forward = lambda: {"loss": a * b, "p": a * b}  # noqa: E731
            return PersistentTapeStep(forward, opt, var_list=[a, b], compile=compile)
        return MinimizeStep(lambda: a * b, [a, b], opt, compile=compile)

    results = []
    for compile in (True, False):
        a, b = tf.Variable(1.0, name="a"), tf.Variable(2.0, name="b")
        step = build(a, b, keras.optimizers.SGD(0.1), compile)
        record = next(sl.Trainer(step).iterate())
        results.append((a.numpy(), b.numpy(), record.gradients, record.target_gradients))
    assert results[0][:2] == results[1][:2] == (np.float32(0.8), np.float32(1.9))
    assert results[0][2] == results[1][2]
    if strategy != "minimize":
        assert results[0][2] == {"a": 2.0, "b": 1.0}


@pytest.mark.parametrize("compile", [True, False])
def test_keras_variables_with_watch_accessed_variables_false(tf, keras, compile):
    layer = keras.layers.Dense(1, name="lin", use_bias=True)
    layer.build((None, 2))
    kernel, bias = layer.kernel, layer.bias
    data = np.ones((3, 2), np.float32)
    step = TapeStep(
        lambda: tf.reduce_mean((layer(data) - 1.0) ** 2),
        keras.optimizers.SGD(0.1),
        var_list=[kernel],
        watch_accessed_variables=False,
        compile=compile,
    )
    before = bias.numpy().copy()
    record = next(sl.Trainer(step).iterate())
    assert list(record.gradients) == ["lin/kernel"]
    np.testing.assert_array_equal(bias.numpy(), before)
