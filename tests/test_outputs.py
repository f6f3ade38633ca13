"""The core loss contract and output assembly, without any framework."""

import numpy as np
import pytest

from steploop.outputs import CallsLoss, LossContract, Parts, step_output


def test_a_scalar_is_the_loss_and_a_dict_splits_into_loss_values_targets():
    contract = LossContract("S", "loss", targets=None)
    assert contract.split(2.0) == Parts(2.0)
    parts = contract.split({"loss": 1.0, "values": {"a": 3}, "z": 4.0})
    assert (parts.loss, dict(parts.values), parts.targets) == (1.0, {"a": 3}, {"z": 4.0})


@pytest.mark.parametrize(
    ("contract", "value", "error", "message"),
    [
        (
            LossContract("S", "loss"),
            {"z": 1.0},
            ValueError,
            "S: loss must return a dict with a 'loss' entry, got keys ['z']",
        ),
        (
            LossContract("S", "loss", targets="hint"),
            {"loss": 1, "z": 1, "y": 2},
            ValueError,
            "S: loss returned targets ['y', 'z'] besides 'loss'; hint",
        ),
        (
            LossContract("S", "f", targets=None),
            {"loss": 1, 3: 1},
            TypeError,
            "S: f's keys must be str, got 3",
        ),
        (
            LossContract("S", "f", dict_only=True),
            1.0,
            TypeError,
            "S: f must return a dict of named tensors with a 'loss' entry, got float",
        ),
        (
            LossContract("S", "f", array="array"),
            {"loss": 1, "values": [1]},
            TypeError,
            "S: f's 'values' entry must be a dict of named arrays, got list",
        ),
        (
            LossContract("S", "f"),
            {"loss": 1, "values": {1: 2}},
            TypeError,
            "S: f's 'values' keys must be str, got 1",
        ),
        (
            LossContract("S", "f"),
            {"loss": 1, "values": {"acc": 1, "epoch": 2}},
            ValueError,
            "S: f's 'values': a value is named 'epoch', a column the history keeps itself; "
            "rename it (values may not be named 'step', 'loss' or 'epoch')",
        ),
    ],
)
def test_a_result_that_breaks_the_contract_is_refused_with_a_clear_message(
    contract, value, error, message
):
    with pytest.raises(error) as raised:
        contract.split(value)
    assert str(raised.value) == message


def test_values_are_converted_and_a_non_numeric_one_is_named():
    contract = LossContract("S", "f", array="array")
    parts = contract.split({"loss": 1.0, "values": {"a": 1, "b": "x"}})
    with pytest.raises(
        TypeError, match="S: f's value 'b' must be a number or numeric array, got str"
    ):
        contract.values(parts, lambda v: None if isinstance(v, str) else np.asarray(v))


def test_variables_without_gradient_are_named():
    with pytest.raises(
        ValueError, match=r"S: the loss does not depend on variable\(s\) \['b'\].*from params"
    ):
        LossContract("S", "f").check_gradients(["a", "b"], [1.0, None], "params")


def test_the_arity_check_says_how_the_function_will_be_called():
    contract = LossContract("S", "loss")
    contract.check_arity(lambda b: b, True)
    with pytest.raises(TypeError, match=r"S: loss\(\) cannot be called as loss\(batch\), since"):
        contract.check_arity(lambda: 0, True)


class Calls(CallsLoss):
    """A strategy ``S`` whose loss takes the params before the batch."""

    _leading = ("params",)

    def __init__(self, fn, contract=None):
        self._fn, self._contract = fn, contract or LossContract("S", "loss")


class Contract:
    """A loss contract that logs the arity checks asked of it."""

    def __init__(self):
        self.asked = []

    def check_arity(self, function, takes_batch, leading=()):
        self.asked.append((takes_batch, leading))


def test_calls_loss_checks_the_arity_once_per_kind_of_trainer():
    """check asks the contract with the leading arguments; again only when a Trainer differs."""
    contract = Contract()
    calls = Calls(lambda params, batch: 0.0, contract)
    calls.check(True)
    calls.check(True)
    calls.check(False)
    assert contract.asked == [(True, ("params",)), (False, ("params",))]


def test_calls_loss_names_the_leading_arguments_and_remembers_no_failed_check():
    calls = Calls(lambda params: 0.0)
    with pytest.raises(TypeError) as caught:
        calls.check(True)
    assert str(caught.value) == (
        "S: loss(params) cannot be called as loss(params, batch), since the Trainer has data"
    )
    assert calls._takes_batch is None


def test_calls_loss_passes_the_batch_as_the_trainer_checked_or_else_as_given():
    """Before any check the batch is passed when one is given; after check(False) never, after
    check(True) always (``None`` converted too)."""
    calls = Calls(lambda params, batch=None: 0.0)
    assert (calls._arguments(2, float), calls._arguments(None, float)) == ((2.0,), ())
    calls.check(False)
    assert calls._arguments(2, float) == ()
    calls.check(True)
    assert calls._arguments(None, str) == ("None",)


def test_step_output_names_gradients_by_variable():
    out = step_output(["a", "b"], 1.0, [1, 2], {"z": [3, 4]}, {"v": 5})
    assert out.gradients == {"a": 1, "b": 2}
    assert out.target_gradients == {"z": {"a": 3, "b": 4}}
    assert out.values == {"v": 5}
    assert step_output(["a"], 1.0).gradients is None


def test_unique_names_keep_the_first_and_number_the_repeats():
    """Repeats get _1, _2, ... in order, never clashing with a name already taken."""
    from steploop.outputs import unique

    assert unique(["v", "v_1", "v", "v"]) == ("v", "v_1", "v_2", "v_3")
    assert unique([]) == ()
