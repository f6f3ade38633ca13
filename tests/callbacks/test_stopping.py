"""Every stopping criterion stops at exactly the step its definition says, alone and composed."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from tests.scripted import Scripted


def run(losses, *criteria, **kwargs):
    trainer = sl.Trainer(Scripted(losses, **kwargs), callbacks=list(criteria))
    return trainer.run(max_steps=len(losses))


def test_max_steps():
    result = run([1.0] * 10, sl.MaxSteps(4))
    assert (result.steps, result.status, result.stop_reason) == (
        4,
        "budget",
        "MaxSteps(4): reached 4 steps",
    )


def test_loss_below_is_strict():
    result = run([5, 3, 1.0, 0.5, 0.1], sl.LossBelow(1.0))
    assert (result.steps, result.status) == (4, "converged")
    assert result.stop_reason == "LossBelow(1): loss 0.5 < 1 at step 4"


@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30),
    st.floats(-1e6, 1e6, allow_nan=False),
)
def test_loss_below_stops_at_the_first_loss_under_tol(losses, tol):
    """The run ends at the first step with loss < tol, or runs out of losses."""
    result = run(losses, sl.LossBelow(tol))
    below = [i + 1 for i, loss in enumerate(losses) if loss < tol]
    assert result.steps == (below[0] if below else len(losses))


def test_loss_change_below_with_patience():
    losses = [10, 5, 4.95, 4.9, 3, 2.99, 2.985, 2.98]
    assert run(losses, sl.LossChangeBelow(0.1)).steps == 3
    assert run(losses, sl.LossChangeBelow(0.1, patience=2)).steps == 4
    result = run(losses, sl.LossChangeBelow(0.1, patience=3))
    assert result.steps == 8 and result.status == "converged"
    assert "for 3 step(s)" in result.stop_reason


def test_gradient_norm_below():
    grads = [[3.0, 4.0], [0.3, 0.4], [0.03, 0.04]]
    result = run([1, 1, 1], sl.GradientNormBelow(0.6), gradients=grads)
    assert result.steps == 2
    assert result.stop_reason == "GradientNormBelow(0.6): gradient norm 0.5 < 0.6 at step 2"
    assert run([1, 1, 1], sl.GradientNormBelow(0.5), gradients=grads).steps == 3  # strict


def test_early_stopping_like_keras():
    # best 1.0 at step 2; steps 3, 4, 5 do not beat it by more than 0.1
    losses = [2.0, 1.0, 0.95, 1.2, 0.91, 0.5]
    result = run(losses, sl.EarlyStopping(patience=3, min_delta=0.1))
    assert (result.steps, result.status) == (5, "converged")
    assert result.stop_reason == (
        "EarlyStopping(patience=3, min_delta=0.1, monitor='loss', mode='min'): loss did not "
        "improve by more than 0.1 for 3 step(s) (best 1 at step 2, stopped at step 5)"
    )


def test_early_stopping_on_a_value_in_max_mode():
    values = {"accuracy": [0.5, 0.7, 0.7, 0.69, 0.71]}
    result = run([1.0] * 5, sl.EarlyStopping(2, monitor="accuracy", mode="max"), values=values)
    assert result.steps == 4


def test_early_stopping_names_a_missing_monitor():
    with pytest.raises(ValueError, match=r"monitor='acc' is not among the step's values \[\]"):
        run([1.0], sl.EarlyStopping(2, monitor="acc"))


def test_time_limit_counts_only_time_inside_runs():
    limit = sl.TimeLimit(0.05)
    trainer = sl.Trainer(Scripted([1.0] * 10**7), callbacks=[limit])
    result = trainer.run()
    assert result.status == "budget" and result.stop_reason.startswith("TimeLimit(0.05s): ")
    assert limit.spent >= 0.05
    again = trainer.run()
    assert again.steps == result.steps
    assert (
        again.stop_reason.startswith("TimeLimit(0.05s): ") and "already spent" in again.stop_reason
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_stop_on_nan(bad):
    result = run([1.0, 0.5, bad, 0.1], sl.StopOnNaN())
    assert (result.steps, result.status) == (3, "nonfinite")
    assert result.stop_reason == f"StopOnNaN(): loss became {bad} at step 3"


def test_or_takes_the_first_part_that_fires_and_sees_every_step():
    early = sl.EarlyStopping(patience=2)
    result = run([3, 2, 2, 2, 2], sl.MaxSteps(10) | early)
    assert result.steps == 4 and result.status == "converged"
    either = sl.LossBelow(0.0) | sl.MaxSteps(3)
    assert repr(either) == "LossBelow(0) | MaxSteps(3)"
    assert run([1.0] * 5, either).stop_reason == "MaxSteps(3): reached 3 steps"


def test_and_needs_every_part_at_the_same_step():
    both = sl.LossBelow(1.0) & sl.MaxSteps(3)
    result = run([0.5, 0.5, 2.0, 0.5, 0.5], both)
    assert result.steps == 4
    assert result.status == "converged"
    assert result.stop_reason == (
        "LossBelow(1): loss 0.5 < 1 at step 4 and MaxSteps(3): reached 3 steps"
    )


def test_composition_nests_and_flattens():
    a, b, c = sl.LossBelow(1.0), sl.MaxSteps(5), sl.StopOnNaN()
    assert (a | b | c).parts == (a, b, c)
    mixed = (a & b) | c
    assert repr(mixed) == "(LossBelow(1) & MaxSteps(5)) | StopOnNaN()"
    assert run([2.0, 2.0, math.nan], mixed).status == "nonfinite"
    with pytest.raises(TypeError, match=r"'\|' combines stopping criteria; got int"):
        a | 3


def test_a_composite_lists_its_leaves_in_order_also_after_its_parts_change():
    a, b, c, d = sl.LossBelow(1.0), sl.MaxSteps(5), sl.StopOnNaN(), sl.MaxSteps(9)
    mixed = (a & b) | c
    assert mixed.leaves() == (a, b, c)
    assert mixed.leaves() == (a, b, c)  # read again
    mixed.parts = (c, d)
    assert mixed.leaves() == (c, d)
    mixed.parts = (d,)
    assert mixed.leaves() == (d,)
    inner = a & b
    outer = inner | c
    assert outer.leaves() == (a, b, c)
    inner.parts = (d,)  # a nested composite changed: the outer one lists the new leaves
    assert outer.leaves() == (d, c)


def test_every_restricts_checks_to_multiples():
    result = run([5, 0.5, 0.5, 0.5, 0.5], sl.LossBelow(1.0).every(3))
    assert result.steps == 3


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: sl.MaxSteps(0), ValueError, "MaxSteps n must be an int >= 1, got 0"),
        (lambda: sl.MaxSteps(2.5), TypeError, "MaxSteps n must be an int, got 2.5"),
        (lambda: sl.LossBelow(math.nan), ValueError, "LossBelow tol must be finite, got nan"),
        (lambda: sl.LossBelow("1"), TypeError, "LossBelow tol must be a real number"),
        (lambda: sl.LossChangeBelow(0.0), ValueError, "LossChangeBelow tol must be > 0"),
        (lambda: sl.LossChangeBelow(1e-3, patience=0), ValueError, "patience must be an int >= 1"),
        (lambda: sl.GradientNormBelow(-1.0), ValueError, "GradientNormBelow tol must be > 0"),
        (lambda: sl.EarlyStopping(0), ValueError, "EarlyStopping patience must be an int >= 1"),
        (lambda: sl.EarlyStopping(2, min_delta=-1), ValueError, "min_delta must be >= 0"),
        (lambda: sl.EarlyStopping(2, mode="up"), ValueError, "mode must be 'min' or 'max'"),
        (lambda: sl.TimeLimit(math.inf), ValueError, "TimeLimit seconds must be finite"),
        (lambda: sl.TimeLimit(0), ValueError, "TimeLimit seconds must be > 0"),
        (lambda: sl.LossBelow(1.0).every(0), ValueError, "every must be an int >= 1, got 0"),
    ],
)
def test_bad_criterion_arguments(build, error, message):
    with pytest.raises(error, match=message):
        build()
