"""Bad input to the TensorFlow strategies fails early with a TypeError/ValueError naming it."""

import pytest

import steploop as sl
from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep

COMPILE = [True, False]


@pytest.fixture
def x(tf):
    return tf.Variable(1.0, name="x")


@pytest.fixture
def sgd(keras):
    return keras.optimizers.SGD(0.1)


def test_a_tensor_instead_of_a_loss_function(tf, x, sgd):
    with pytest.raises(
        TypeError,
        match=r"TapeStep: loss must be a function returning a scalar "
        r"loss tensor, got .*\(EagerTensor\) \(a tensor is a value, not a function",
    ):
        TapeStep((x - 4.0) ** 2, sgd)
    with pytest.raises(TypeError, match="MinimizeStep: loss must be a function"):
        MinimizeStep((x - 4.0) ** 2, [x], sgd)
    with pytest.raises(
        TypeError,
        match="PersistentTapeStep: forward must be a function returning a dict of named tensors",
    ):
        PersistentTapeStep({"loss": x}, sgd)


@pytest.mark.parametrize("compile", COMPILE)
def test_a_non_scalar_loss(tf, x, sgd, compile):
    step = TapeStep(lambda: tf.stack([x, x]), sgd, compile=compile)
    with pytest.raises(ValueError) as info:
        sl.Trainer(step).run(max_steps=1)
    assert str(info.value) == (
        "TapeStep: loss must return a scalar for 'loss', got a tensor of shape (2,); reduce it, "
        "e.g. with tf.reduce_mean"
    )
    assert x.numpy() == 1.0  # nothing was applied


@pytest.mark.parametrize("compile", COMPILE)
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("a string", "must return a numeric tensor for 'loss', got 'a string'"),
        (None, "must return a numeric tensor for 'loss', got None"),
        (3, "must return a floating-point tensor for 'loss', got int32"),
        (object(), "must return a numeric tensor for 'loss', got object"),
    ],
)
def test_a_loss_that_is_not_a_float_tensor(tf, x, sgd, compile, bad, message):
    step = MinimizeStep(lambda: bad, [x], sgd, compile=compile)
    with pytest.raises(TypeError) as info:
        step.step()
    assert str(info.value) == f"MinimizeStep: loss {message}"


@pytest.mark.parametrize("compile", COMPILE)
def test_a_target_that_is_not_a_float_tensor(tf, x, sgd, compile):
    step = PersistentTapeStep(lambda: {"loss": x**2, "count": 3}, sgd, compile=compile)
    with pytest.raises(TypeError) as info:
        step.step()
    assert str(info.value) == (
        "PersistentTapeStep: forward must return a floating-point tensor for 'count', got int32"
    )


def test_an_empty_or_wrong_var_list(tf, x, sgd):
    with pytest.raises(ValueError, match="TapeStep: var_list is empty"):
        TapeStep(lambda: x**2, sgd, var_list=[])
    with pytest.raises(
        TypeError,
        match=r"MinimizeStep: var_list\[1\] must be a tf.Variable or "
        "keras.Variable, got float",
    ):
        MinimizeStep(lambda: x**2, [x, 2.0], sgd)
    with pytest.raises(TypeError, match="var_list must be a list of variables, got one variable"):
        MinimizeStep(lambda: x**2, x, sgd)
    with pytest.raises(TypeError, match="MinimizeStep: var_list is required"):
        MinimizeStep(lambda: x**2, None, sgd)
    frozen = tf.Variable(1.0, trainable=False, name="frozen")
    with pytest.raises(ValueError, match=r"var_list\[0\] \(frozen:0\) is not trainable"):
        TapeStep(lambda: frozen**2, sgd, var_list=[frozen])


@pytest.mark.parametrize("compile", COMPILE)
@pytest.mark.parametrize("kind", ["minimize", "minimize_tf_keras", "tape", "persistent"])
def test_a_variable_the_loss_does_not_depend_on(tf, keras, x, compile, kind):
    unused = tf.Variable(2.0, name="unused")
    if kind == "minimize_tf_keras":
        import tf_keras

        opt = tf_keras.optimizers.SGD(0.1)
    else:
        opt = keras.optimizers.SGD(0.1)
    step = {
        "minimize": lambda: MinimizeStep(lambda: x**2, [x, unused], opt, compile=compile),
        "minimize_tf_keras": lambda: MinimizeStep(lambda: x**2, [x, unused], opt, compile=compile),
        "tape": lambda: TapeStep(lambda: x**2, opt, var_list=[x, unused], compile=compile),
        "persistent": lambda: PersistentTapeStep(
            lambda: {"loss": x**2}, opt, var_list=[x, unused], compile=compile
        ),
    }[kind]()
    with pytest.raises(ValueError, match=r"the loss does not depend on variable\(s\) \['unused'\]"):
        sl.Trainer(step).run(max_steps=1)
    assert x.numpy() == 1.0


@pytest.mark.parametrize("compile", COMPILE)
def test_a_loss_that_reads_no_variable(tf, sgd, compile):
    step = TapeStep(lambda: tf.constant(3.0), sgd, compile=compile)
    with pytest.raises(ValueError, match="the loss read no trainable variable"):
        step.step()


@pytest.mark.parametrize("compile", COMPILE)
def test_forward_without_loss(tf, x, sgd, compile):
    step = PersistentTapeStep(lambda: {"y": x**2, "z": x}, sgd, compile=compile)
    with pytest.raises(ValueError) as info:
        step.step()
    assert str(info.value) == (
        "PersistentTapeStep: forward must return a dict with a 'loss' entry, got keys ['y', 'z']"
    )
    with pytest.raises(
        TypeError,
        match="forward must return a dict of named tensors with a 'loss' entry, got a tensor",
    ):
        PersistentTapeStep(lambda: x**2, sgd, compile=compile).step()


@pytest.mark.parametrize("compile", COMPILE)
def test_several_targets_on_a_non_persistent_tape(tf, x, sgd, compile):
    step = TapeStep(lambda: {"loss": x**2, "z": x - 4, "w": x}, sgd, compile=compile)
    with pytest.raises(ValueError) as info:
        step.step()
    assert str(info.value) == (
        "TapeStep: loss returned targets ['w', 'z'] besides 'loss'; a non-persistent tape gives "
        "one gradient: use PersistentTapeStep for several targets"
    )
    single = TapeStep(lambda: {"loss": x**2}, sgd, compile=compile)
    assert float(single.step().loss) == 1.0


def test_optimizer_and_flags_are_checked(tf, x, sgd):
    with pytest.raises(TypeError, match="TapeStep: optimizer must have an apply_gradients method"):
        TapeStep(lambda: x**2, "sgd")
    with pytest.raises(TypeError, match="TapeStep: compile must be a bool, got str"):
        TapeStep(lambda: x**2, sgd, compile="yes")
    with pytest.raises(
        ValueError,
        match="watch_accessed_variables=False watches only var_list, and var_list is None",
    ):
        TapeStep(lambda: x**2, sgd, watch_accessed_variables=False)


def test_loss_arity_is_checked_against_data_at_construction(tf, x, sgd):
    with pytest.raises(
        TypeError,
        match=r"TapeStep: loss\(\) cannot be called as loss\(batch\), "
        "since the Trainer has data",
    ):
        sl.Trainer(TapeStep(lambda: x**2, sgd), data=[1.0, 2.0])
    with pytest.raises(TypeError, match=r"TapeStep: loss\(batch\) cannot be called as loss\(\)"):
        sl.Trainer(TapeStep(lambda batch: x * batch, sgd))


def test_gradient_norm_needs_gradients_minimize_reports_none(tf, x, sgd):
    with pytest.raises(ValueError, match="needs gradients, but MinimizeStep reports none"):
        sl.Trainer(MinimizeStep(lambda: x**2, [x], sgd), callbacks=[sl.GradientNormBelow(1e-3)])


@pytest.mark.parametrize(
    "make",
    [
        lambda loss, x, optimizer: TapeStep(loss, optimizer),
        lambda loss, x, optimizer: MinimizeStep(loss, [x], optimizer),
        lambda loss, x, optimizer: PersistentTapeStep(lambda: {"loss": loss()}, optimizer),
    ],
    ids=["TapeStep", "MinimizeStep", "PersistentTapeStep"],
)
def test_an_optimizer_class_instead_of_an_instance(tf, keras, x, make):
    """The class is refused at construction, naming the argument and how to make an instance."""
    with pytest.raises(TypeError) as info:
        make(lambda: x**2, x, keras.optimizers.SGD)
    owner = str(info.value).split(":")[0]
    assert str(info.value) == (
        f"{owner}: optimizer must be an optimizer instance, got the class "
        "keras.optimizers.SGD; pass an instance, e.g. keras.optimizers.SGD(learning_rate=0.01)"
    )


def test_other_wrong_optimizers_are_named(tf, keras, x, sgd):
    wanted = (
        "optimizer must have an apply_gradients method (an optimizer instance such as "
        "keras.optimizers.SGD(learning_rate=0.01)), got "
    )
    for value, got in [
        ("adam", "the string 'adam'"),
        (0.1, "float"),
        (None, "NoneType"),
        (keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9), "ExponentialDecay"),
    ]:
        with pytest.raises(TypeError) as info:
            TapeStep(lambda: x**2, value)
        assert str(info.value) == "TapeStep: " + wanted + got
    with pytest.raises(TypeError) as info:
        MinimizeStep(lambda: x**2, sgd, [x])  # var_list and optimizer swapped
    assert str(info.value) == "MinimizeStep: " + wanted + "a list of variables (is it var_list?)"

    class Custom:  # a class of one's own is named as it is
        def apply_gradients(self, pairs):
            pass

    with pytest.raises(TypeError, match=r"got the class Custom; pass an instance, e\.g\. Custom"):
        TapeStep(lambda: x**2, Custom)
