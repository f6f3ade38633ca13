"""The framework strategies' argument checks, without any framework: the messages name the
strategy, the argument, what was expected and what was received."""

import numpy as np
import pytest

from steploop import checks


def test_flags_must_be_bools():
    checks.flags("S", compile=True)
    with pytest.raises(TypeError, match=r"^S: compile must be a bool, got int$"):
        checks.flags("S", compile=1)


def is_array(value):
    return isinstance(value, np.ndarray)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (np.zeros(2), TypeError, "S: var_list must be a list of variables, got one variable"),
        (3.0, TypeError, "S: var_list must be a list of variables, got float"),
        ([], ValueError, "S: var_list is empty; give the variables to optimise"),
        ([np.zeros(1), 2.0], TypeError, r"S: var_list\[1\] must be an array, got float"),
    ],
)
def test_var_list_refusals_name_what_was_wrong(value, error, message):
    with pytest.raises(error, match=message):
        checks.var_list("S", value, is_array, "an array", lambda v: "v")


def test_var_list_accepts_iterables_and_none():
    arrays = [np.zeros(1), np.ones(1)]
    assert checks.var_list("S", iter(arrays), is_array, "an array", repr) == tuple(arrays)
    assert checks.var_list("S", None, is_array, "an array", repr) is None


class Optimizer:
    def update(self):
        pass


def test_an_optimizer_is_an_instance_with_its_method():
    optimizer = Optimizer()
    assert checks.optimizer("S", optimizer, "update", "Optimizer()") is optimizer
    with pytest.raises(TypeError, match=r"got the class Optimizer; pass an instance, e\.g\. "):
        checks.optimizer("S", Optimizer, "update", "Optimizer()")
    with pytest.raises(TypeError, match=r"got a list of variables \(is it var_list\?\)$"):
        checks.optimizer("S", [np.zeros(1)], "update", "Optimizer()", is_variable=is_array)


def test_batch_parts_are_converted_or_named():
    assert checks.batch_part("S", [1.0, 2.0], np.asarray).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="S: a batch from data has a part None"):
        checks.batch_part("S", None, np.asarray)
    with pytest.raises(TypeError, match=r"not a tensor or a rectangular numeric array \(list: "):
        checks.batch_part("S", [[1.0], [2.0, 3.0]], lambda v: np.array(v, dtype=float))


def test_returned_numbers_and_scalar_losses():
    assert checks.returned_number("S: loss", 1.0, "loss", 1.0, None) == 1.0
    with pytest.raises(TypeError, match="must return a floating-point tensor for 'z', got int32"):
        checks.returned_number("S: loss", 1, "z", 1, "int32")
    with pytest.raises(TypeError, match="must return a numeric tensor for 'loss', got object"):
        checks.returned_number("S: loss", object(), "loss", None, None)
    checks.scalar_loss("S: loss", (), "mean")
    checks.scalar_loss("S: loss", None, "mean")
    with pytest.raises(ValueError, match=r"got a tensor of shape \(2, 1\); reduce it"):
        checks.scalar_loss("S: loss", (2, 1), "mean")


def test_compiling_flags_and_rollback_state():
    checks.compiling("S", True, True, watch=False)
    with pytest.raises(TypeError, match="S: watch must be a bool, got str"):
        checks.compiling("S", True, False, watch="no")
    with pytest.raises(ValueError, match="jit_compile=True compiles the step with XLA"):
        checks.compiling("S", False, True)
    checks.rollback("S", "rollback", type("Opt", (), {"variables": []})(), "a list")
    checks.rollback("S", "skip", object(), "a list")
    with pytest.raises(ValueError, match=r"needs an optimizer .* \(a list\); object has none"):
        checks.rollback("S", "rollback", object(), "a list")
