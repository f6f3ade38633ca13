"""``steploop.numpy.GradientDescent`` passes every conformance check, one test per check: on
one array, on a dict of parameters, with data, and under each ``on_nonfinite`` policy."""

import numpy as np

from steploop.numpy import GradientDescent
from steploop.testing import NonFiniteCase, check_strategy, parametrize_checks

BATCHES = [1.0, 2.0, 3.0, 2.5, 1.5, 4.0, 3.5, 0.5]


def quadratic():
    """(x-4)**2 on one array."""
    return GradientDescent(lambda x: ((x - 4.0) ** 2, 2.0 * (x - 4.0)), 0.0, learning_rate=0.1)


def two_params():
    """A least-squares line through three points, on a dict of parameters."""
    xs, ys = np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 5.0])

    def loss_and_grad(p):
        error = p["w"] * xs + p["b"] - ys
        return np.mean(error**2), {"w": np.mean(2 * error * xs), "b": np.mean(2 * error)}

    return GradientDescent(loss_and_grad, {"w": np.zeros(()), "b": np.zeros(())}, learning_rate=0.1)


def fitted(policy="apply"):
    """x follows the batches: loss (x - batch)**2, one batch a step."""
    return GradientDescent(
        lambda x, b: ((x - b) ** 2, 2.0 * (x - b)), 0.0, learning_rate=0.2, on_nonfinite=policy
    )


#: the batch of step 3 is nan: its loss is not finite
BAD = NonFiniteCase(fitted, step=3, data=[1.0, 2.0, np.nan, 3.0, 2.0, 1.0])


@parametrize_checks(quadratic, nonfinite=BAD)
def test_one_array(check):
    """GradientDescent on one array passes the check."""
    check()


@parametrize_checks(two_params)
def test_params_dict(check):
    """GradientDescent on a dict of parameters passes the check."""
    check()


@parametrize_checks(fitted, data=BATCHES, nonfinite=BAD)
def test_with_data(check):
    """GradientDescent fed batches (a list, and a factory of iterators) passes the check."""
    check()


def test_data_factory_and_report():
    """Data as a function returning fresh iterators works; the report names each check."""
    report = check_strategy(fitted, data=lambda: iter(BATCHES), nonfinite=BAD)
    assert report["nonfinite_stop"] == "passed"
    assert report["release"].startswith("skipped: GradientDescent is not Releasing")
