"""Pins NonFinite: the skip and stop guards, rollback's need of a saved state, and stop_after on
values that carry no code."""

import pytest

from steploop.nonfinite import HOST_GUARD, NonFinite


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
