"""What GradientDescent gained from the core: on_nonfinite, "values", targets, fused calls."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop.numpy import GradientDescent


def sqrt_loss(x):
    """sqrt(x) from x = 1 with learning rate 0.5: the loss of step 5 is nan (x < 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(x), 0.5 / np.sqrt(x)


def sqrt_run(policy, steps_per_call=1):
    gd = GradientDescent(sqrt_loss, 1.0, learning_rate=0.5, on_nonfinite=policy)
    trainer = sl.Trainer(gd, [sl.MaxSteps(8)], steps_per_call=steps_per_call)
    return trainer, trainer.run(), gd


def x_before_step_5():
    x = 1.0
    for _ in range(4):
        x -= 0.5 * 0.5 / math.sqrt(x)
    return x


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_skip_and_rollback_keep_the_params_of_step_4_and_report_code_1(steps_per_call):
    """Steps 5-8 have a nan loss: skipped (or rolled back), coded 1, x stays as after step 4."""
    for policy in ("skip", "rollback"):
        trainer, result, gd = sqrt_run(policy, steps_per_call)
        assert (result.steps, result.status) == (8, "budget")
        assert trainer.history["nonfinite"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
        assert gd.params["x"] == x_before_step_5()


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_stop_ends_the_run_at_step_5_naming_the_loss(steps_per_call):
    _, result, gd = sqrt_run("stop", steps_per_call)
    assert (result.steps, result.status) == (5, "nonfinite")
    assert result.stop_reason == (
        "non-finite loss at step 5; its update was not applied, the variables are those of the "
        "step before"
    )
    assert gd.params["x"] == x_before_step_5()


def test_apply_keeps_the_hand_loop_behaviour():
    trainer, _, gd = sqrt_run("apply")
    assert math.isnan(gd.params["x"]) and "nonfinite" not in trainer.history


def test_a_non_finite_gradient_is_named_by_its_parameter():
    def loss_and_grad(p):
        return float(p["a"] ** 2), {"a": 2 * p["a"], "b": np.inf}

    gd = GradientDescent(
        loss_and_grad, {"a": 1.0, "b": 0.0}, learning_rate=0.1, on_nonfinite="stop"
    )
    result = sl.Trainer(gd, [sl.MaxSteps(5)]).run()
    assert result.stop_reason.startswith("non-finite gradient of 'b' at step 1;")
    assert gd.params == {"a": 1.0, "b": 0.0}


def test_rollback_undoes_an_update_that_overflows():
    gd = GradientDescent(
        lambda x: (1e300 * x, 1e300), 1.0, learning_rate=1e300, on_nonfinite="rollback"
    )
    trainer = sl.Trainer(gd, [sl.MaxSteps(3)])
    with np.errstate(over="ignore"):
        trainer.run()
    assert gd.params["x"] == 1.0
    assert trainer.history["nonfinite"].tolist() == [-1, -1, -1]


def test_the_policy_is_checked_at_construction():
    with pytest.raises(
        ValueError, match=r"GradientDescent: on_nonfinite must be one of .*'ignore'"
    ):
        GradientDescent(sqrt_loss, 1.0, learning_rate=0.1, on_nonfinite="ignore")


def quadratic_with_values(x):
    return {"loss": (x - 4) ** 2, "values": {"x": x, "n": 1}}, 2 * (x - 4)


def test_values_become_history_columns():
    gd = GradientDescent(quadratic_with_values, 0.0, learning_rate=0.25)
    trainer = sl.Trainer(gd, [sl.MaxSteps(3)])
    trainer.run()
    assert trainer.history["x"].tolist() == [0.0, 2.0, 3.0]
    assert trainer.history["n"].tolist() == [1, 1, 1]


def test_targets_are_reported_as_target_gradients():
    def f(p):
        outputs = {"loss": (p["a"] - 4) ** 2, "z": p["a"] * p["b"]}
        return outputs, {"loss": {"a": 2 * (p["a"] - 4), "b": 0.0}, "z": {"a": p["b"], "b": p["a"]}}

    out = GradientDescent(f, {"a": 1.0, "b": 3.0}, learning_rate=0.25).step()
    assert {k: float(v) for k, v in out.target_gradients["z"].items()} == {"a": 3.0, "b": 1.0}
    assert {k: float(v) for k, v in out.gradients.items()} == {"a": -6.0, "b": 0.0}


def test_a_dict_loss_needs_a_gradient_per_target():
    gd = GradientDescent(lambda x: ({"loss": x**2, "z": x}, 2 * x), 1.0, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"gradient for each of \['loss', 'z'\], got np.float64"):
        gd.step()


def test_bad_values_are_refused_naming_the_key():
    gd = GradientDescent(
        lambda x: ({"loss": x**2, "values": {"v": "a"}}, 2 * x), 1.0, learning_rate=0.1
    )
    with pytest.raises(
        TypeError, match="loss_and_grad's value 'v' must be a number or numeric array"
    ):
        gd.step()


@given(
    st.sampled_from(["apply", "skip", "stop", "rollback"]),
    st.integers(min_value=1, max_value=7),
    st.floats(min_value=0.05, max_value=0.6),
)
def test_fused_calls_equal_step_by_step(policy, k, lr):
    """Any policy, any steps_per_call: the same steps, history and parameters as K = 1."""

    def run(steps_per_call):
        gd = GradientDescent(
            lambda x: ({"loss": np.sqrt(x), "values": {"x": x}}, 0.5 / np.sqrt(x)),
            1.0,
            learning_rate=lr,
            on_nonfinite=policy,
        )
        trainer = sl.Trainer(gd, [sl.MaxSteps(12)], steps_per_call=steps_per_call)
        with np.errstate(invalid="ignore", divide="ignore"):
            result = trainer.run()
        return result.steps, result.status, gd.params["x"].tobytes(), trainer.history

    one, fused = run(1), run(k)
    assert one[:3] == fused[:3]
    assert one[3] == fused[3]
