"""Fuzzed bad input: every public constructor and run() answer a malformed argument with a
TypeError or ValueError whose message names that argument."""

import io
import math
import numbers
import tempfile

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import steploop as sl
from steploop.numpy import GradientDescent
from tests.helpers import batch_replay, quadratic

#: Values of every kind, most of them wrong for any given argument.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(object()),
)


def real(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def count(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


def positive(v):
    return real(v) and v > 0


def folder():
    return tempfile.mkdtemp()


#: "[where: ]name in the message": (build(value), is the value valid)
ARGUMENTS = {
    "MaxSteps n": (lambda v: sl.MaxSteps(v), count),
    "LossBelow tol": (lambda v: sl.LossBelow(v), real),
    "LossChangeBelow tol": (lambda v: sl.LossChangeBelow(v), positive),
    "LossChangeBelow patience": (lambda v: sl.LossChangeBelow(1e-3, patience=v), count),
    "GradientNormBelow tol": (lambda v: sl.GradientNormBelow(v), positive),
    "EarlyStopping patience": (lambda v: sl.EarlyStopping(v), count),
    "EarlyStopping min_delta": (
        lambda v: sl.EarlyStopping(3, min_delta=v),
        lambda v: real(v) and v >= 0,
    ),
    "EarlyStopping monitor": (
        lambda v: sl.EarlyStopping(3, monitor=v),
        lambda v: isinstance(v, str),
    ),
    "EarlyStopping mode": (lambda v: sl.EarlyStopping(3, mode=v), lambda v: v in ("min", "max")),
    "TimeLimit seconds": (lambda v: sl.TimeLimit(v), positive),
    "every": (lambda v: sl.PrintLogger(every=v), count),
    "PrintLogger variables": (lambda v: sl.PrintLogger(variables=v), lambda v: isinstance(v, bool)),
    "PrintLogger gradients": (lambda v: sl.PrintLogger(gradients=v), lambda v: isinstance(v, bool)),
    "PrintLogger file": (lambda v: sl.PrintLogger(file=v), lambda v: v is None),
    "CSVLogger path": (lambda v: sl.CSVLogger(v), lambda v: isinstance(v, str) and v != ""),
    "ProgressBar total": (lambda v: sl.ProgressBar(total=v), lambda v: v is None or count(v)),
    "ProgressBar file": (lambda v: sl.ProgressBar(file=v), lambda v: v is None),
    "Checkpoint directory": (
        lambda v: sl.Checkpoint(v, every=5),
        lambda v: isinstance(v, str) and v != "",  # (a real folder would be made here)
    ),
    "Checkpoint every": (lambda v: sl.Checkpoint(folder(), every=v), count),
    "Checkpoint keep": (lambda v: sl.Checkpoint(folder(), every=5, keep=v), count),
    "Every: callback": (lambda v: sl.Every(v, 3), lambda v: False),
    "learning_rate": (lambda v: GradientDescent(lambda x: (x, x), 0.0, learning_rate=v), positive),
    "loss_and_grad": (lambda v: GradientDescent(v, 0.0, learning_rate=0.1), callable),
    "params": (
        lambda v: GradientDescent(lambda x: (x, x), v, learning_rate=0.1),
        lambda v: (
            real(v)
            or (isinstance(v, list) and all(real(i) for i in v))
            or (isinstance(v, dict) and v and all(k and real(i) for k, i in v.items()))
        ),
    ),
    "strategy": (lambda v: sl.Trainer(v), lambda v: False),
    "name": (
        lambda v: GradientDescent(lambda x: (x, x), 0.0, learning_rate=0.1, name=v),
        lambda v: isinstance(v, str) and v != "",
    ),
    "CallbackList: callbacks": (
        lambda v: sl.CallbackList(v),
        lambda v: isinstance(v, (list, dict)) and not v,
    ),
    "callbacks": (
        lambda v: sl.Trainer(quadratic(), v),
        lambda v: isinstance(v, (list, dict)) and not v,
    ),
    "data": (
        lambda v: sl.Trainer(quadratic(), data=v),
        lambda v: v is None or (isinstance(v, (list, dict)) and not v),
    ),
    "steps_per_call": (lambda v: sl.Trainer(quadratic(), steps_per_call=v), count),
    "max_steps": (
        lambda v: sl.Trainer(quadratic(), [sl.MaxSteps(3)]).run(max_steps=v),
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    ),
}


@pytest.mark.parametrize("name", sorted(ARGUMENTS))
def test_bad_arguments_are_named(name):
    build, valid = ARGUMENTS[name]

    @given(junk)
    def check(value):
        assume(not valid(value))
        with pytest.raises((TypeError, ValueError)) as info:
            build(value)
        assert name.split(": ")[-1] in str(info.value), (value, str(info.value))

    check()


def test_the_valid_corner_of_each_argument_builds():
    """The validity predicates above are not vacuous: a valid value of each builds fine."""
    assert sl.PrintLogger(file=io.StringIO()).file is not None
    assert sl.MaxSteps(1).n == 1 and sl.LossBelow(-1).tol == -1.0
    assert sl.Trainer(batch_replay([]), [], data=[]).run().status == "exhausted"
