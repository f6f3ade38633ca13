"""Every argument check's message, in full: owner, argument, what was expected and received."""

import numpy as np
import pytest

from steploop import checks


def refused(error, call, *args, **kwargs):
    """The message of the ``error`` that ``call`` raises."""
    with pytest.raises(error) as raised:
        call(*args, **kwargs)
    assert type(raised.value) is error
    return str(raised.value)


def test_flags_names_the_first_flag_that_is_not_a_bool():
    assert checks.flags("S", a=True, b=False) is None
    assert refused(TypeError, checks.flags, "S", a=True, b=1, c="x") == (
        "S: b must be a bool, got int"
    )
    assert refused(TypeError, checks.flags, "S", a=None) == "S: a must be a bool, got NoneType"


@pytest.mark.parametrize("jit_compile", [True, False, "auto"])
def test_compiling_accepts_bools_and_auto(jit_compile):
    assert checks.compiling("S", True, jit_compile, watch=True) is None


def test_compiling_checks_the_other_flags_and_compile_first():
    assert refused(TypeError, checks.compiling, "S", True, "bad", watch="no") == (
        "S: watch must be a bool, got str"
    )
    assert refused(TypeError, checks.compiling, "S", 1, "bad") == (
        "S: compile must be a bool, got int"
    )


@pytest.mark.parametrize(
    ("jit_compile", "got"),
    [("always", "'always'"), ("AUTO", "'AUTO'"), (1, "int"), (None, "NoneType")],
)
def test_compiling_names_a_bad_jit_compile(jit_compile, got):
    assert refused(TypeError, checks.compiling, "S", True, jit_compile) == (
        f'S: jit_compile must be a bool or "auto", got {got}'
    )


def test_xla_needs_a_compiled_step():
    assert refused(ValueError, checks.compiling, "S", False, True) == (
        "S: jit_compile=True compiles the step with XLA, which needs compile=True"
    )
    assert checks.compiling("S", False, "auto") is None
    assert checks.compiling("S", False, False) is None


class WithState:
    def __init__(self, variables):
        self.variables = variables


@pytest.mark.parametrize("optimizer", [WithState([]), WithState(()), WithState([1.0])])
def test_rollback_accepts_an_optimizer_with_listed_state(optimizer):
    assert checks.rollback("S", "rollback", optimizer, "a Keras optimizer") is None


@pytest.mark.parametrize(
    ("optimizer", "name"), [(object(), "object"), (WithState(None), "WithState")]
)
def test_rollback_refuses_an_optimizer_without_listed_state(optimizer, name):
    assert refused(ValueError, checks.rollback, "S", "rollback", optimizer, "a Keras one") == (
        "S: on_nonfinite='rollback' needs an optimizer whose state is a list `variables` "
        f"(a Keras one); {name} has none"
    )
    assert checks.rollback("S", "skip", optimizer, "a Keras one") is None


class Var:
    def __init__(self, name="v", trainable=True):
        self.name, self.trainable = name, trainable


def is_var(value):
    return isinstance(value, Var)


def var_list(value):
    return checks.var_list("S", value, is_var, "a Var", lambda v: f"<{v.name}>")


def test_var_list_as_a_tuple():
    a, b = Var("a"), Var("b")
    assert var_list([a, b]) == (a, b)
    assert var_list((a,)) == (a,)
    assert var_list(iter([b, a])) == (b, a)
    assert var_list({a}) == (a,)
    assert var_list(None) is None


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (
            Var("w"),
            TypeError,
            "S: var_list must be a list of variables, got one variable; pass [<w>]",
        ),
        (3.0, TypeError, "S: var_list must be a list of variables, got float"),
        ("ab", TypeError, "S: var_list[0] must be a Var, got str"),
        ({"a": Var()}, TypeError, "S: var_list[0] must be a Var, got str"),
        ([], ValueError, "S: var_list is empty; give the variables to optimise"),
        ((), ValueError, "S: var_list is empty; give the variables to optimise"),
        ([Var(), 2], TypeError, "S: var_list[1] must be a Var, got int"),
        ([Var("a"), Var("b", trainable=False)], ValueError, "S: var_list[1] (b) is not trainable"),
    ],
)
def test_var_list_refusals(value, error, message):
    assert refused(error, var_list, value) == message


def test_an_untrainable_variable_without_a_name():
    class Nameless:
        trainable = False

    message = refused(
        ValueError,
        checks.var_list,
        "S",
        [Nameless()],
        lambda v: isinstance(v, Nameless),
        "a variable",
        repr,
    )
    assert message == "S: var_list[0] (?) is not trainable"


class Optimizer:
    def update(self):
        pass


def optimizer(value, **kwargs):
    return checks.optimizer("S", value, "update", "Optimizer(0.1)", **kwargs)


def test_an_optimizer_instance_is_returned():
    instance = Optimizer()
    assert optimizer(instance) is instance


@pytest.mark.parametrize(
    ("value", "kwargs", "got"),
    [
        ("sgd", {}, "the string 'sgd'"),
        ([Var()], {"is_variable": is_var}, "a list of variables (is it var_list?)"),
        ((Var(), 1), {"is_variable": is_var}, "a tuple of variables (is it var_list?)"),
        ([Var()], {}, "list"),
        ([1.0], {"is_variable": is_var}, "list"),
        (3, {}, "int"),
        (type("NoUpdate", (), {"update": 1})(), {}, "NoUpdate"),
    ],
)
def test_an_optimizer_without_its_method_is_named(value, kwargs, got):
    assert refused(TypeError, optimizer, value, **kwargs) == (
        "S: optimizer must have an update method (an optimizer instance such as Optimizer(0.1)), "
        f"got {got}"
    )


def test_an_optimizer_class_is_refused_with_an_instance_to_write():
    assert refused(TypeError, optimizer, Optimizer) == (
        "S: optimizer must be an optimizer instance, got the class Optimizer; pass an instance, "
        "e.g. Optimizer(learning_rate=0.01)"
    )
    shown = refused(TypeError, optimizer, Optimizer, shown=lambda kind: f"opt.{kind.__name__}")
    assert shown == (
        "S: optimizer must be an optimizer instance, got the class opt.Optimizer; pass an "
        "instance, e.g. opt.Optimizer(learning_rate=0.01)"
    )


@pytest.mark.parametrize(("part", "shown"), [(None, "None"), ("text", "'text'"), (b"x", "b'x'")])
def test_a_batch_part_that_is_not_a_number(part, shown):
    assert refused(TypeError, checks.batch_part, "S", part, np.asarray) == (
        f"S: a batch from data has a part {shown}; batches hold tensors, arrays or numbers "
        "(in tuples, lists or dicts)"
    )


def raises(error):
    def convert(value):
        raise error

    return convert


@pytest.mark.parametrize(
    ("error", "first"),
    [
        (ValueError("  bad shape\nmore detail  "), "bad shape"),
        (TypeError("no"), "no"),
        (ValueError("   "), ""),
        (ValueError(), ""),
    ],
)
def test_a_batch_part_the_framework_cannot_convert(error, first):
    assert refused(TypeError, checks.batch_part, "S", [1, 2], raises(error)) == (
        "S: a batch from data has a part that is not a tensor or a rectangular numeric array "
        f"(list: {first})"
    )


def test_other_conversion_errors_propagate_and_a_converted_part_is_returned():
    with pytest.raises(KeyError):
        checks.batch_part("S", 1.0, raises(KeyError("k")))
    assert checks.batch_part("S", 2, float) == 2.0


@pytest.mark.parametrize(
    ("value", "got"),
    [(None, "None"), ("x", "'x'"), (b"x", "b'x'"), (object(), "object"), ([1, "a"], "list")],
)
def test_a_returned_value_that_is_not_numeric(value, got):
    assert refused(TypeError, checks.returned_number, "S: f", value, "z", None, None) == (
        f"S: f must return a numeric tensor for 'z', got {got}"
    )


def test_a_returned_value_that_is_not_floating_point():
    assert refused(TypeError, checks.returned_number, "S: f", 1, "loss", 1, "int32") == (
        "S: f must return a floating-point tensor for 'loss', got int32"
    )
    assert checks.returned_number("S: f", 1.0, "loss", "array", None) == "array"


@pytest.mark.parametrize("shape", [None, (), []])
def test_a_scalar_loss_passes(shape):
    assert checks.scalar_loss("S: f", shape, "mean") is None


@pytest.mark.parametrize(
    ("shape", "shown"), [((2, 1), "(2, 1)"), ([3], "(3,)"), ((None,), "(None,)")]
)
def test_a_loss_that_is_not_a_scalar(shape, shown):
    assert refused(ValueError, checks.scalar_loss, "S: f", shape, "tf.reduce_mean") == (
        f"S: f must return a scalar for 'loss', got a tensor of shape {shown}; reduce it, e.g. "
        "with tf.reduce_mean"
    )
