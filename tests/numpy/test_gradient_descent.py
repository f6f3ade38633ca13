"""The pure-NumPy strategy converges for every valid learning rate and checks its inputs."""

import math

import numpy as np
import pytest
from hypothesis import given

import steploop as sl
from steploop.numpy import GradientDescent
from tests.helpers import quadratic
from tests.strategies import learning_rates, starts


@given(learning_rates, starts)
def test_any_learning_rate_in_0_1_converges_to_4_and_stops_on_loss_below(lr, start):
    """From any start, x -> 4 and LossBelow ends the run (not the budget)."""
    gd = quadratic(lr, start)
    # exact steps needed: |start-4| * |1-2lr|^k < 1e-5 (loss < 1e-10), plus slack
    factor = abs(1 - 2 * lr)
    need = (
        1
        if abs(start - 4) < 1e-5
        else math.ceil(math.log(1e-5 / abs(start - 4)) / math.log(max(factor, 1e-300))) + 1
    )
    result = sl.Trainer(gd, callbacks=[sl.LossBelow(1e-10) | sl.MaxSteps(need + 5)]).run()
    assert result.status == "converged", result.stop_reason
    assert abs(gd.params["x"] - 4.0) < 1e-5
    assert result.steps <= need + 1


def test_dict_params_and_batches():
    def loss_and_grad(params, batch):
        residual = params["w"] * batch[0] + params["b"] - batch[1]
        return float(np.mean(residual**2)), {
            "w": np.mean(2 * residual * batch[0]),
            "b": np.mean(2 * residual),
        }

    x = np.linspace(-1, 1, 20)
    batches = [(x, 3 * x + 1)] * 500
    gd = GradientDescent(loss_and_grad, {"w": 0.0, "b": 0.0}, learning_rate=0.3)
    result = sl.Trainer(gd, data=batches, callbacks=[sl.LossBelow(1e-12)]).run()
    assert result.status == "converged"
    assert abs(gd.params["w"] - 3) < 1e-5 and abs(gd.params["b"] - 1) < 1e-5


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((3.0, 0.0), {"learning_rate": 0.1}, TypeError, "loss_and_grad must be a function"),
        ((lambda x: (x, x), 0.0), {"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ((lambda x: (x, x), 0.0), {"learning_rate": math.nan}, ValueError, "must be finite"),
        ((lambda x: (x, x), {}), {"learning_rate": 0.1}, ValueError, "params must hold at least"),
        (
            (lambda x: (x, x), "abc"),
            {"learning_rate": 0.1},
            TypeError,
            r"params\['x'\] must be numeric",
        ),
        ((lambda x: (x, x), math.inf), {"learning_rate": 0.1}, ValueError, "must be finite"),
    ],
)
def test_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        GradientDescent(*args, **kwargs)


def test_bad_returns_name_the_problem():
    with pytest.raises(TypeError, match="must return a \\(loss, gradient\\) pair, got float"):
        GradientDescent(lambda x: 1.0, 0.0, learning_rate=0.1).step()
    with pytest.raises(ValueError, match=r"gradient of 'x' has shape \(2,\)"):
        GradientDescent(lambda x: (1.0, np.ones(2)), 0.0, learning_rate=0.1).step()


def _pair_loss(params):
    a, b = params["a"], params["b"]
    loss = float(np.sum((a - 3.0) ** 2) + np.sum((b + 1.0) ** 2) * 0.5)
    return loss, {"a": 2 * (a - 3.0), "b": b + 1.0}


def test_restore_matches_parameters_by_name_in_any_order(tmp_path):
    """Saved with params {a, b}, restored into {b, a}: the run equals an uninterrupted one."""
    start = {"a": np.array([1.0, 2.0]), "b": np.array([5.0, -4.0])}
    reference = GradientDescent(_pair_loss, dict(start), learning_rate=0.1)
    sl.Trainer(reference).run(20)
    first = GradientDescent(_pair_loss, dict(start), learning_rate=0.1)
    sl.Trainer(first, [sl.Checkpoint(str(tmp_path), every=5)]).run(10)
    again = GradientDescent(_pair_loss, {"b": start["b"], "a": start["a"]}, learning_rate=0.1)
    trainer = sl.Trainer(again)
    assert trainer.restore(str(tmp_path)) == 10
    trainer.run(10)
    for name in "ab":
        assert again.params[name].tobytes() == reference.params[name].tobytes()


HOLDS = "The checkpoint holds: 'a' (2,) float64, 'b' (2,) float64"


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"a": [0.0, 0.0]}, "its variable 'b' (2,) float64 is not among the strategy's"),
        (
            {"a": [0.0, 0.0], "b": [0.0, 0.0], "c": 0.0},
            "variable 'c' () float64 is not in it",
        ),
        (
            {"a": [0.0, 0.0], "bee": [0.0, 0.0]},
            "variable 'bee' (2,) float64 is not in it; its variable 'b' (2,) float64 is not "
            "among the strategy's; a renamed variable must keep the name it was saved under",
        ),
        (
            {"a": [0.0, 0.0], "b": [0.0, 0.0, 0.0]},
            "variable 'b' is (3,) float64 but the checkpoint has (2,) float64",
        ),
    ],
    ids=["missing", "extra", "renamed", "reshaped"],
)
def test_restore_refuses_parameters_that_differ_naming_them(tmp_path, params, problem):
    first = GradientDescent(_pair_loss, {"a": [1.0, 2.0], "b": [5.0, -4.0]}, learning_rate=0.1)
    sl.Trainer(first, [sl.Checkpoint(str(tmp_path), every=2)]).run(2)
    other = GradientDescent(
        lambda p: (0.0, {k: 0 * v for k, v in p.items()}), params, learning_rate=0.1
    )
    with pytest.raises(ValueError) as info:
        sl.Trainer(other).restore(str(tmp_path))
    prefix = str(tmp_path / "ckpt-2")
    assert str(info.value) == (
        f"GradientDescent.restore: checkpoint {prefix!r} does not match the variables, which are "
        f"restored by name: {problem}. {HOLDS}"
    )
    assert other.params["a"].tolist() == [0.0, 0.0]  # nothing was read
