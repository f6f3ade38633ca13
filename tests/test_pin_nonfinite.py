"""Pins NonFinite: the skip and stop guards, rollback's need of a saved state, stop_after on
values that carry no code; first_bad and rolled_back on the host's primitives."""

import pytest

from steploop.nonfinite import HOST_GUARD, NonFinite, first_bad, rolled_back


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_skip_and_stop_hold_back_a_bad_update_without_saving_state(policy):
    """Under skip and stop a non-finite first gradient (code 2) blocks the update; no saved
    state is needed."""
    applied = []
    code = NonFinite.of("Demo", policy).guard(HOST_GUARD, [False, True], lambda: applied.append(1))
    assert (code, applied) == (2, [])


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_skip_and_stop_apply_a_finite_update(policy):
    """Under skip and stop an all-finite step is applied and reports code 0."""
    applied = []
    code = NonFinite.of("Demo", policy).guard(HOST_GUARD, [False], lambda: applied.append(1))
    assert (code, applied) == (0, [1])


def test_rollback_without_a_save_says_what_it_needs():
    """rollback needs the state saved before the update; without ``save`` it says so."""
    with pytest.raises(AssertionError, match=r"^rollback needs the state to save$"):
        NonFinite.of("Demo", "rollback").guard(HOST_GUARD, [False], lambda: None)


def test_stop_after_values_without_a_code_do_not_stop():
    """Under stop, a step whose values carry no ``nonfinite`` code counts as finite."""
    assert NonFinite.of("Demo", "stop").stop_after(3, {}, ("w",)) is None


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([False], (False, 0)),
        ([True], (True, 1)),
        ([False, False, True], (True, 3)),
        ([False, True, True], (True, 2)),
        ([True, True, False], (True, 1)),
        ([False, False, False], (False, 0)),
    ],
)
def test_first_bad_codes_the_first_set_flag(flags, expected):
    """The code is 1 + the index of the first set flag, 0 when none is set."""
    bad, code = first_bad(HOST_GUARD, flags)
    assert (bad, code) == expected and type(code) is int


@pytest.mark.parametrize(
    ("bad", "after", "code", "expected"),
    [(False, False, 0, 0), (False, True, 0, -1), (True, True, 2, 2), (True, False, 1, 1)],
)
def test_rolled_back_codes_only_an_update_that_made_a_finite_step_bad(bad, after, code, expected):
    """-1 where the state after the update is bad and no quantity of the step was; else the
    step's code."""
    assert rolled_back(HOST_GUARD, bad, after, code) == expected
