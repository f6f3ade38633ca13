"""FusionPlan: what the callbacks allow a fused call to do, read once when a Trainer is built."""

import logging

import steploop as sl
from steploop.fusion import FusionPlan

WARNING = (
    "the in-graph stopping criteria fired at step 7 but their host check did not; the run "
    "carries on (their numbers differ in the last bit)"
)


def test_check_agreement_logs_only_when_the_program_stopped_alone(caplog):
    """Logged when the in-graph program ended a call and no criterion stopped on the host; not
    when the host agrees, not when the call ran on, not for a program with bounds of host-checked
    composites (an & whose host-only part is not met ends calls without stopping)."""
    plan = FusionPlan([sl.LossBelow(1.0)], steps_per_call=4)
    with caplog.at_level(logging.WARNING, logger="steploop"):
        plan.check_agreement(True, None, 7)
        assert caplog.messages == [WARNING]
        caplog.clear()
        plan.check_agreement(False, None, 7)
        plan.check_agreement(True, sl.Stop("met", "converged"), 7)
        bounded = FusionPlan([sl.TimeLimit(600) & sl.LossBelow(1.0)], steps_per_call=4)
        assert bounded.bounded and not plan.bounded
        bounded.check_agreement(True, None, 7)
    assert caplog.messages == []


def test_call_size_ends_where_a_callback_needs_live_state_and_at_the_budget(tmp_path):
    """One step when the strategy is not ready or K is 1; otherwise K, the budget, or up to the
    next step where a callback needs live state, whichever comes first."""
    saver = sl.Checkpoint(tmp_path, every=sl.at(10))  # needs live state at step 10
    plan = FusionPlan([saver], steps_per_call=8)
    assert plan.call_size(0, None) == 8
    assert plan.call_size(4, None) == 6  # steps 5..10
    assert plan.call_size(4, 3) == 3
    assert plan.call_size(4, None, ready=False) == 1
    assert FusionPlan([saver], steps_per_call=1).call_size(0, None) == 1
    assert plan.records_needed and not FusionPlan([sl.MaxSteps(3)], 8).records_needed
