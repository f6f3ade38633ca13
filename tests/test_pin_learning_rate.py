"""LearningRateScheduler: its message for a non-function, where fused calls end, and its repr."""

import functools

import pytest

import steploop as sl


def rate_of(base, step):
    return base


def halve_at_3(step):
    return 0.4 if step < 3 else 0.2


def test_fn_must_be_a_function_of_the_step():
    with pytest.raises(TypeError) as caught:
        sl.LearningRateScheduler(0.1)
    assert str(caught.value) == (
        "LearningRateScheduler fn must be a function of the step, got 0.1 (float)"
    )


def test_a_call_ends_before_each_step_where_the_rate_may_change():
    """The rate for step c is set after step c - 1: a call from after+1 ends there."""
    scheduler = sl.LearningRateScheduler(halve_at_3, changes_at=sl.at(5))
    assert scheduler.next_sync_step(0, 4) is None  # steps 1..4: the change at 5 is outside
    assert scheduler.next_sync_step(0, 5) == 4
    assert scheduler.next_sync_step(0, 10) == 4
    assert scheduler.next_sync_step(4, 10) is None  # step 5 was set before this call
    assert scheduler.next_sync_step(3, 1) is None
    assert sl.LearningRateScheduler(halve_at_3).next_sync_step(7, 10) == 8


def test_repr_names_the_function_or_its_type_and_the_schedule():
    assert repr(sl.LearningRateScheduler(halve_at_3)) == "LearningRateScheduler(halve_at_3)"
    assert repr(sl.LearningRateScheduler(halve_at_3, changes_at=sl.at(3))) == (
        "LearningRateScheduler(halve_at_3, changes_at=at(3))"
    )
    partial = functools.partial(rate_of, 0.1)
    assert repr(sl.LearningRateScheduler(partial, changes_at=sl.every(10))) == (
        "LearningRateScheduler(partial, changes_at=every(10))"
    )
