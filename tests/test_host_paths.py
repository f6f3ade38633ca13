"""The criteria's host paths (plain floats, without the array namespace's calls: EarlyStopping
with no baseline and no warm-up, LossChangeBelow, StopOnNaN) give what their namespace forms
give, state and verdict, for any state and step."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop.criteria_program import Quantities
from steploop.ops import HOST, HostOps

GENERIC = HostOps()  # not HOST: the test takes its namespace form with it

losses = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1.0, 1.5, -1.0, math.nan, math.inf]),
)


@given(
    mode=st.sampled_from(["min", "max"]),
    min_delta=st.sampled_from([0.0, 1e-9, 0.5, 2.0]),
    patience=st.integers(1, 5),
    best=losses,
    best_step=st.integers(0, 100).map(float),
    wait=st.integers(0, 6).map(float),
    beaten=st.sampled_from([0.0, 1.0]),
    loss=losses,
    step=st.integers(1, 200),
)
def test_the_host_test_equals_the_namespace_form(
    mode, min_delta, patience, best, best_step, wait, beaten, loss, step
):
    criterion = sl.EarlyStopping(patience, min_delta=min_delta, mode=mode)
    state, q = (best, best_step, wait, beaten), Quantities(step, loss)
    fast_met, fast_state = criterion.test(HOST, state, q)
    met, new_state = criterion.test(GENERIC, state, q)
    assert type(fast_met) is bool and fast_met == bool(met)
    assert np.array_equal(np.array(fast_state), np.array(new_state), equal_nan=True)


def test_a_run_stops_where_patience_runs_out_with_the_best_step_kept():
    """Losses 3, 2, 2.5, 1, 1.2, 1.1, 1.05: best at step 4, patience 3 runs out at step 7."""
    losses_seen = iter([3.0, 2.0, 2.5, 1.0, 1.2, 1.1, 1.05, 0.5])

    class Given(sl.StepStrategy):
        def step(self, batch=None):
            return sl.StepOutput(loss=next(losses_seen))

    criterion = sl.EarlyStopping(3)
    result = sl.Trainer(Given(), [criterion, sl.MaxSteps(8)], steps_per_call=1).run()
    assert (result.steps, result.status) == (7, "converged")
    assert criterion.state() == (1.0, 4.0, 3.0, 1.0)


@given(
    tol=st.sampled_from([1e-300, 1e-9, 0.5, 2.0]),
    patience=st.integers(1, 5),
    previous=losses,
    calm=st.integers(0, 6).map(float),
    loss=losses,
)
def test_loss_change_below_on_the_host_equals_its_namespace_form(
    tol, patience, previous, calm, loss
):
    criterion = sl.LossChangeBelow(tol, patience=patience)
    state, q = (previous, calm, 0.0), Quantities(3, loss)
    fast_met, fast_state = criterion.test(HOST, state, q)
    met, new_state = criterion.test(GENERIC, state, q)
    assert type(fast_met) is bool and fast_met == bool(met)
    assert np.array_equal(np.array(fast_state), np.array(new_state), equal_nan=True)


@given(loss=losses)
def test_stop_on_nan_on_the_host_equals_its_namespace_form(loss):
    fast = sl.StopOnNaN().test(HOST, (), Quantities(1, loss))
    assert fast == sl.StopOnNaN().test(GENERIC, (), Quantities(1, loss))
    assert fast == (not math.isfinite(loss), ())
