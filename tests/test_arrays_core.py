"""The loss contract checked on NumPy ``Arrays`` (as a framework checks its tensors)."""

import numpy as np
import pytest

from steploop.outputs import Arrays, LossContract, evaluation, step_output, unique


def _shape(array):
    return array.shape


NUMPY = Arrays(
    np.asarray,
    lambda a: a.dtype.kind == "f",
    lambda a: a.dtype.kind in "iu",
    lambda a: a.dtype.name,
    _shape,
    "np.mean",
)
CONTRACT = LossContract("Demo", "loss", targets=None, arrays=NUMPY)


class Refuses:
    """A value the framework cannot convert, with the given error."""

    def __init__(self, error):
        self.error = error


def strict_to_array(value):
    if isinstance(value, Refuses):
        raise value.error
    return np.asarray(value)


STRICT = Arrays(strict_to_array, NUMPY.floating, NUMPY.integer, NUMPY.dtype, _shape, "np.mean")


@pytest.mark.parametrize(
    "value", [None, "1.0", b"1.0", Refuses(TypeError()), Refuses(ValueError())]
)
def test_what_cannot_be_an_array_converts_to_none(value):
    assert STRICT.convert(value) is None
    assert STRICT.numeric(value) is None


def test_other_errors_of_the_conversion_propagate():
    with pytest.raises(RuntimeError, match=r"^boom$"):
        STRICT.convert(Refuses(RuntimeError("boom")))


@pytest.mark.parametrize(
    ("value", "dtype"), [(1.5, np.float64), (np.float32(2.0), np.float32), (3, np.int64)]
)
def test_numbers_convert_to_arrays(value, dtype):
    for array in (NUMPY.convert(value), NUMPY.numeric(value)):
        assert isinstance(array, np.ndarray)
        assert array.dtype == dtype and array.shape == ()
        assert array == value


@pytest.mark.parametrize("value", [True, 1 + 2j, object(), np.array(["a"])])
def test_only_floating_and_integer_arrays_are_numeric(value):
    assert NUMPY.convert(value) is not None
    assert NUMPY.numeric(value) is None


def test_checked_gives_the_loss_values_and_targets_as_arrays():
    loss, values, targets = CONTRACT.checked(
        {"loss": 2.0, "values": {"n": 3, "acc": np.float32(0.5)}, "z": np.array([1.0, 2.0])}
    )
    assert isinstance(loss, np.ndarray) and loss.dtype == np.float64 and loss == 2.0
    assert list(values) == ["n", "acc"]
    assert values["n"].dtype == np.int64 and values["n"] == 3
    assert values["acc"].dtype == np.float32 and values["acc"] == 0.5
    assert list(targets) == ["z"] and targets["z"].tolist() == [1.0, 2.0]
    only_loss = CONTRACT.checked(np.float32(1.5))
    assert only_loss[0].dtype == np.float32 and only_loss[1:] == ({}, {})


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (None, TypeError, "Demo: loss must return a numeric tensor for 'loss', got None"),
        ("x", TypeError, "Demo: loss must return a numeric tensor for 'loss', got 'x'"),
        (b"x", TypeError, "Demo: loss must return a numeric tensor for 'loss', got b'x'"),
        (
            Refuses(ValueError()),
            TypeError,
            "Demo: loss must return a numeric tensor for 'loss', got Refuses",
        ),
        (3, TypeError, "Demo: loss must return a floating-point tensor for 'loss', got int64"),
        (
            np.array([1.0, 2.0]),
            ValueError,
            "Demo: loss must return a scalar for 'loss', got a tensor of shape (2,); "
            "reduce it, e.g. with np.mean",
        ),
        (
            {"loss": 1.0, "z": np.array([1, 2])},
            TypeError,
            "Demo: loss must return a floating-point tensor for 'z', got int64",
        ),
        (
            {"loss": 1.0, "values": {"n": "text"}},
            TypeError,
            "Demo: loss's value 'n' must be a number or numeric tensor, got str",
        ),
        (
            {"loss": 1.0, "values": {"flag": True}},
            TypeError,
            "Demo: loss's value 'flag' must be a number or numeric tensor, got bool",
        ),
    ],
)
def test_checked_names_what_breaks_the_contract(value, error, message):
    contract = LossContract("Demo", "loss", targets=None, arrays=STRICT)
    with pytest.raises(error) as raised:
        contract.checked(value)
    assert str(raised.value) == message


def test_the_loss_scalar_check_reads_the_shape_and_names_the_mean():
    """An unknown shape (``None``) passes; a known one must be empty."""
    unknown = Arrays(np.asarray, NUMPY.floating, NUMPY.integer, NUMPY.dtype, lambda a: None, "m")
    contract = LossContract("S", "f", arrays=unknown)
    assert contract.number(np.ones((2, 2)), "loss").shape == (2, 2)
    listed = Arrays(np.asarray, NUMPY.floating, NUMPY.integer, NUMPY.dtype, lambda a: [3], "m")
    with pytest.raises(ValueError) as raised:
        LossContract("S", "f", arrays=listed).number(1.0, "loss")
    assert str(raised.value) == (
        "S: f must return a scalar for 'loss', got a tensor of shape (3,); reduce it, e.g. with m"
    )


def test_a_target_need_not_be_a_scalar():
    array = CONTRACT.number(np.ones(3), "z")
    assert array.tolist() == [1.0, 1.0, 1.0]


def test_number_needs_arrays():
    with pytest.raises(AssertionError) as raised:
        LossContract("S", "f").number(1.0, "loss")
    assert str(raised.value) == "LossContract.number needs arrays"


@pytest.mark.parametrize(
    ("function", "takes_batch", "leading", "message"),
    [
        (
            lambda x: x,
            True,
            ("params", "state"),
            "S: f(x) cannot be called as f(params, state, batch), since the Trainer has data",
        ),
        (
            lambda: 0,
            True,
            (),
            "S: f() cannot be called as f(batch), since the Trainer has data",
        ),
        (
            lambda a: a,
            False,
            ("params", "state"),
            "S: f(a) cannot be called as f(params, state) (no data was given to the Trainer)",
        ),
        (
            lambda a, b: a,
            False,
            (),
            "S: f(a, b) cannot be called as f() (no data was given to the Trainer)",
        ),
    ],
)
def test_the_arity_check_names_every_argument_the_function_gets(
    function, takes_batch, leading, message
):
    contract = LossContract("S", "f")
    with pytest.raises(TypeError) as raised:
        contract.check_arity(function, takes_batch, leading)
    assert str(raised.value) == message
    contract.check_arity(lambda *args: 0, takes_batch, leading)


def test_the_gradient_check_names_the_missing_ones_and_needs_one_per_variable():
    contract = LossContract("S", "f")
    contract.check_gradients(["a", "b"], [1.0, 0.0], "params")
    with pytest.raises(ValueError) as raised:
        contract.check_gradients(["a", "b", "c"], [None, 1.0, None], "var_list")
    assert str(raised.value) == (
        "S: the loss does not depend on variable(s) ['a', 'c'] (their gradient is None); "
        "remove them from var_list or use them in the loss"
    )
    with pytest.raises(ValueError, match="zip"):
        contract.check_gradients(["a", "b"], [1.0], "params")


def test_evaluation_gives_host_floats_loss_first():
    result = evaluation("S", np.float32(0.5), {"acc": np.array([[0.25]]), "loss2": 3})
    assert result == {"loss": 0.5, "acc": 0.25, "loss2": 3.0}
    assert list(result) == ["loss", "acc", "loss2"]
    assert all(type(value) is float for value in result.values())
    assert evaluation("S", 1.0, {"loss": 7.0}) == {"loss": 1.0}


@pytest.mark.parametrize(
    ("loss", "values", "message"),
    [
        (
            np.ones(2),
            {},
            "S.evaluate: 'loss' must be one number to be averaged over batches, got shape (2,)",
        ),
        (
            1.0,
            {"acc": np.ones((1, 3))},
            "S.evaluate: 'acc' must be one number to be averaged over batches, got shape (1, 3)",
        ),
        (
            1.0,
            {"acc": np.ones(0)},
            "S.evaluate: 'acc' must be one number to be averaged over batches, got shape (0,)",
        ),
    ],
)
def test_evaluation_refuses_what_is_not_one_number(loss, values, message):
    with pytest.raises(TypeError) as raised:
        evaluation("S", loss, values)
    assert str(raised.value) == message


def test_a_dict_only_contract_names_an_array_returned_alone():
    contract = LossContract("S", "f", dict_only=True)
    with pytest.raises(TypeError) as raised:
        contract.split(np.array(1.0))
    assert str(raised.value) == (
        "S: f must return a dict of named tensors with a 'loss' entry, got a tensor"
    )


def test_step_output_keeps_the_loss_and_needs_one_gradient_per_name():
    output = step_output(["a", "b"], np.float32(2.5), [1.0, 2.0])
    assert output.loss == np.float32(2.5) and output.values == {}
    with pytest.raises(ValueError, match="zip"):
        step_output(["a", "b"], 1.0, [1.0])
    with pytest.raises(ValueError, match="zip"):
        step_output(["a"], 1.0, None, {"z": [1.0, 2.0]})


def test_unique_numbers_the_first_repeat_one():
    assert unique(["v", "v"]) == ("v", "v_1")
    assert unique(["a", "b"]) == ("a", "b")
