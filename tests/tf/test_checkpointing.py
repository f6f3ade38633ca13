"""TensorFlow checkpoints are restored by variable name: any var_list order resumes exactly (slots
included), a variable that differs from the checkpoint's is refused naming it, and a strategy
without var_list resumes too (its variables found by tracing the loss)."""

import os
import re

import numpy as np
import pytest

import steploop as sl
from steploop import variable_record
from steploop.tf import PersistentTapeStep, TapeStep, checkpointing

OPTIMIZERS = {
    "adam": lambda keras: keras.optimizers.Adam(0.05),
    "momentum": lambda keras: keras.optimizers.SGD(0.05, momentum=0.9),
}


def model(tf, names=("a", "b"), shapes=((2,), (2,)), dtypes=("float32", "float32")):
    """Fresh variables (as a new process would make them) and a loss coupling them."""
    starts = ([1.0, -2.0], [0.5, 3.0])
    variables = [
        tf.Variable(np.resize(np.asarray(start), shape).astype(dtype), name=name)
        for name, shape, dtype, start in zip(names, shapes, dtypes, starts, strict=True)
    ]
    a, b = variables

    def loss():
        first = tf.reduce_sum((tf.cast(a, tf.float32) - 3.0) ** 2)
        return first * tf.reduce_mean(tf.cast(b, tf.float32)) ** 2 + tf.reduce_sum(
            (tf.cast(b, tf.float32) - 2.0) ** 2
        )

    return variables, loss


def bits(variables):
    return [v.numpy().tobytes() for v in variables]


def resumed_run(tf, keras, directory, *, optimizer, reorder, compile):
    """10 steps with var_list [a, b] and checkpoints; a fresh program restores with [b, a] (or
    [a, b]) and runs 10 more. Returns the resumed variables and the history's losses."""
    (a, b), loss = model(tf)
    first = TapeStep(loss, OPTIMIZERS[optimizer](keras), var_list=[a, b], compile=compile)
    sl.Trainer(first, [sl.Checkpoint(directory, every=5)]).run(10)
    (a, b), loss = model(tf)
    var_list = [b, a] if reorder else [a, b]
    again = TapeStep(loss, OPTIMIZERS[optimizer](keras), var_list=var_list, compile=compile)
    trainer = sl.Trainer(again)
    assert trainer.restore(directory) == 10
    trainer.run(10)
    return bits([a, b]), trainer.history["loss"].tobytes()


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_reordered_var_list_resumes_bit_for_bit(tf, keras, tmp_path, optimizer, compile):
    """Saved with var_list [a, b], restored with [b, a]: values and optimizer slots follow their
    names, so the run equals an uninterrupted one bit for bit."""
    (a, b), loss = model(tf)
    step = TapeStep(loss, OPTIMIZERS[optimizer](keras), var_list=[a, b], compile=compile)
    reference = sl.Trainer(step)
    reference.run(20)
    variables, losses = resumed_run(
        tf, keras, str(tmp_path), optimizer=optimizer, reorder=True, compile=compile
    )
    assert variables == bits([a, b])
    assert losses == reference.history["loss"].tobytes()


def test_the_optimizer_is_built_in_name_order_whatever_the_var_list(tf, keras):
    """steploop gives an optimizer its variables sorted by name, so its slots do not depend on
    the order of var_list; built_order reads that order (a Keras 3 private attribute: this test
    fails loudly if Keras changes it)."""
    (a, b), loss = model(tf)
    optimizer = keras.optimizers.Adam(0.05)
    TapeStep(loss, optimizer, var_list=[b, a]).step()
    assert [v is a for v in optimizer._trainable_variables] == [True, False]
    assert checkpointing.built_order(optimizer, ["b", "a"], [b, a]) == ["a", "b"]
    assert checkpointing.built_order(keras.optimizers.Adam(), ["a"], [a]) is None


def test_the_record_lists_names_shapes_dtypes_and_the_optimizer_order(tf, keras, tmp_path):
    (a, b), loss = model(tf, shapes=((2,), (3, 1)))
    step = TapeStep(loss, keras.optimizers.Adam(0.05), var_list=[b, a])
    step.step()
    step.save(str(tmp_path / "ckpt-1"))
    record = variable_record.read("TapeStep.restore", str(tmp_path / "ckpt-1"))
    assert record["variables"] == [
        {"name": "a", "shape": [2], "dtype": "float32"},
        {"name": "b", "shape": [3, 1], "dtype": "float32"},
    ]
    assert record["optimizer"] == {"class": "Adam", "order": ["a", "b"]}


HOLDS = "The checkpoint holds: 'a' (2,) float32, 'b' (2,) float32"


def saved(tf, keras, directory):
    (a, b), loss = model(tf)
    step = TapeStep(loss, keras.optimizers.Adam(0.05), var_list=[a, b])
    sl.Trainer(step, [sl.Checkpoint(directory, every=2)]).run(2)
    return os.path.join(directory, "ckpt-2")


def refusal(tf, keras, directory, names, shapes=((2,), (2,)), dtypes=("float32", "float32")):
    prefix = saved(tf, keras, directory)
    variables, loss = model(tf, names, shapes, dtypes)
    trainer = sl.Trainer(TapeStep(loss, keras.optimizers.Adam(0.05), var_list=variables))
    with pytest.raises(ValueError) as info:
        trainer.restore(directory)
    message = str(info.value)
    start = f"TapeStep.restore: checkpoint {prefix!r} does not match the variables, which are "
    assert message.startswith(start + "restored by name: "), message
    assert message.endswith(HOLDS), message
    return message[len(start + "restored by name: ") : -len(HOLDS)]


def test_a_missing_variable_is_refused_naming_it(tf, keras, tmp_path):
    """The program lacks a variable the checkpoint holds."""
    (a, _), _ = model(tf)
    prefix = saved(tf, keras, str(tmp_path))
    step = TapeStep(lambda: tf.reduce_sum(a**2), keras.optimizers.Adam(0.05), var_list=[a])
    with pytest.raises(ValueError) as info:
        sl.Trainer(step).restore(str(tmp_path))
    assert str(info.value) == (
        f"TapeStep.restore: checkpoint {prefix!r} does not match the variables, which are "
        "restored by name: its variable 'b' (2,) float32 is not among the strategy's. " + HOLDS
    )


def test_an_extra_variable_is_refused_naming_it(tf, keras, tmp_path):
    """The program has a variable the checkpoint lacks."""
    prefix = saved(tf, keras, str(tmp_path))
    (a, b), loss = model(tf)
    c = tf.Variable([0.0], name="c")
    step = TapeStep(lambda: loss() + tf.reduce_sum(c**2), keras.optimizers.Adam(), [a, c, b])
    with pytest.raises(ValueError) as info:
        sl.Trainer(step).restore(str(tmp_path))
    assert str(info.value) == (
        f"TapeStep.restore: checkpoint {prefix!r} does not match the variables, which are "
        "restored by name: variable 'c' (1,) float32 is not in it. " + HOLDS
    )


def test_a_renamed_variable_is_refused_naming_both_names(tf, keras, tmp_path):
    assert refusal(tf, keras, str(tmp_path), ("a", "bee")) == (
        "variable 'bee' (2,) float32 is not in it; its variable 'b' (2,) float32 is not among "
        "the strategy's; a renamed variable must keep the name it was saved under. "
    )


def test_a_reshaped_variable_is_refused_naming_it(tf, keras, tmp_path):
    assert refusal(tf, keras, str(tmp_path), ("a", "b"), shapes=((2,), (2, 1))) == (
        "variable 'b' is (2, 1) float32 but the checkpoint has (2,) float32. "
    )


def test_a_retyped_variable_is_refused_naming_it(tf, keras, tmp_path):
    assert refusal(tf, keras, str(tmp_path), ("a", "b"), dtypes=("float64", "float32")) == (
        "variable 'a' is (2,) float64 but the checkpoint has (2,) float32. "
    )


def test_an_optimizer_built_in_another_order_is_refused(tf, keras, tmp_path):
    prefix = saved(tf, keras, str(tmp_path))
    (a, b), loss = model(tf)
    optimizer = keras.optimizers.Adam(0.05)
    optimizer.build([b, a])
    with pytest.raises(ValueError) as info:
        sl.Trainer(TapeStep(loss, optimizer, var_list=[a, b])).restore(str(tmp_path))
    assert str(info.value) == (
        "TapeStep.restore: the optimizer Adam was built with the variables in the order "
        f"['b', 'a'], but checkpoint {prefix!r} saved its slots for the order ['a', 'b']; pass "
        "an optimizer that is not built yet (steploop builds it by name)"
    )


def test_a_checkpoint_without_its_record_is_refused(tf, keras, tmp_path):
    prefix = saved(tf, keras, str(tmp_path))
    os.remove(prefix + ".variables.json")
    (a, b), loss = model(tf)
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {prefix!r} has no")):
        sl.Trainer(TapeStep(loss, keras.optimizers.Adam(), var_list=[a, b])).restore(str(tmp_path))


# -- without var_list --------------------------------------------------------------------------


def dense_model(tf, keras):
    """A Keras model built lazily, on its first call (its variables do not exist before)."""
    keras.utils.set_random_seed(0)
    layers = [
        keras.layers.Dense(3, activation="tanh", name="hidden"),
        keras.layers.Dense(1, name="out"),
    ]
    net = keras.Sequential(layers, name="net")  # a new process would give the same names
    rng = np.random.default_rng(1)
    features = rng.normal(size=(24, 4)).astype("float32")
    targets = features.sum(axis=1, keepdims=True).astype("float32")
    data = [(features[i : i + 4], targets[i : i + 4]) for i in range(0, 24, 4)] * 3

    def loss(batch):
        x, y = batch
        return tf.reduce_mean((net(x) - y) ** 2)

    return net, loss, data


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("strategy", [TapeStep, PersistentTapeStep])
def test_without_var_list_a_lazy_model_resumes_exactly(tf, keras, tmp_path, strategy, compile):
    """No var_list, a model whose variables exist only after its first call, a loss that takes a
    batch: the restore waits for the first step, finds the variables by name, and the run equals
    an uninterrupted one bit for bit."""

    def make():
        net, loss, data = dense_model(tf, keras)
        forward = loss if strategy is TapeStep else (lambda batch: {"loss": loss(batch)})
        step = strategy(forward, keras.optimizers.Adam(0.01), compile=compile)
        return net, step, data

    reference_net, step, data = make()
    reference = sl.Trainer(step, data=data)
    reference.run()
    net, step, data = make()
    sl.Trainer(step, [sl.Checkpoint(str(tmp_path), every=5)], data=data).run(10)
    net, step, data = make()
    trainer = sl.Trainer(step, data=data)
    assert trainer.restore(str(tmp_path)) == 10
    assert step.variables() == {}  # not found yet: the first step finds them
    trainer.run()
    assert bits(net.weights) == bits(reference_net.weights)
    assert trainer.history["loss"].tobytes() == reference.history["loss"].tobytes()


def test_without_var_list_and_batch_the_variables_are_found_at_restore(tf, keras, tmp_path):
    """A loss without a batch is traced at restore: a renamed variable fails there, named."""
    directory = str(tmp_path)
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1, momentum=0.5))
    sl.Trainer(step, [sl.Checkpoint(directory, every=3)]).run(6)
    reference = x.numpy()
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1, momentum=0.5))
    sl.Trainer(step).restore(directory)
    assert step.variables() == {"x": reference}
    y = tf.Variable(0.0, name="y")
    renamed = TapeStep(lambda: (y - 4.0) ** 2, keras.optimizers.SGD(0.1, momentum=0.5))
    with pytest.raises(ValueError, match="variable 'y' \\(\\) float32 is not in it"):
        sl.Trainer(renamed).restore(directory)


def test_without_var_list_a_renamed_variable_fails_at_the_first_step(tf, keras, tmp_path):
    """With a batch, the deferred restore names the variable at the first step, before any
    update, and keeps failing rather than training from scratch."""
    directory = str(tmp_path)
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda batch: (x - batch) ** 2, keras.optimizers.SGD(0.1))
    sl.Trainer(step, [sl.Checkpoint(directory, every=2)], data=[4.0] * 4).run()
    y = tf.Variable(0.0, name="y")
    step = TapeStep(lambda batch: (y - batch) ** 2, keras.optimizers.SGD(0.1))
    trainer = sl.Trainer(step, data=[4.0] * 8)
    assert trainer.restore(directory) == 4
    for _ in range(2):
        with pytest.raises(ValueError, match="variable 'y' \\(\\) float32 is not in it"):
            trainer.run()
    assert y.numpy() == 0.0


def test_a_restore_not_yet_carried_out_is_saved_as_read(tf, keras, tmp_path):
    """A resumed run that stops before its first step saves the checkpoint it read."""
    first, second = str(tmp_path / "one"), str(tmp_path / "two")
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda batch: (x - batch) ** 2, keras.optimizers.SGD(0.1))
    sl.Trainer(step, [sl.Checkpoint(first, every=2)], data=[4.0] * 4).run()
    saved_x = x.numpy()
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda batch: (x - batch) ** 2, keras.optimizers.SGD(0.1))
    trainer = sl.Trainer(step, [sl.MaxSteps(4), sl.Checkpoint(second, every=2)], data=[4.0] * 9)
    trainer.restore(first)
    assert trainer.run().stop_reason == "MaxSteps(4): 4 steps already done"
    assert trainer.step == 4 and not step.variables()  # no step: the restore still waits
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda batch: (x - batch) ** 2, keras.optimizers.SGD(0.1))
    trainer = sl.Trainer(step, data=[4.0] * 9)
    assert trainer.restore(second) == 4
    trainer.run(1)
    assert trainer.history["loss"][-1] == pytest.approx((saved_x - 4.0) ** 2)
