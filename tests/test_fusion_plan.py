"""FusionPlan: the in-graph program, which callbacks need records, and the host-stopper warning."""

import warnings

import pytest

import steploop as sl
from steploop.callbacks.stopping import StoppingCriterion
from steploop.fusion import FusionPlan, step_hooks


class Stopper(sl.Callback):
    """Stops from the host after a step (``may_stop`` is inferred)."""

    def on_step_end(self, trainer, record):
        trainer.stop("enough")


class Watcher(sl.Callback):
    """Has a step hook and never stops."""

    def on_step_end(self, trainer, record):
        pass


class BeginOnly(sl.Callback):
    may_stop = True

    def on_step_begin(self, trainer):
        pass


class AtRunEnd(sl.Callback):
    """May stop, but has no step hook."""

    may_stop = True

    def on_run_end(self, trainer, result):
        pass


class EveryStep(Stopper):
    """Needs live state at every step, so fused calls never run past it."""

    def next_sync_step(self, after, count):
        return after + 1


class Live(Stopper):
    """Needs live state at the steps of its schedule (every step by default)."""

    needs_live_state = True

    def __init__(self, schedule=None):
        if schedule is not None:
            self.schedule = schedule


class SecondStep(Stopper):
    def next_sync_step(self, after, count):
        return after + 2


class HostCheck(StoppingCriterion):
    def check(self, trainer, record):
        return None

    def __repr__(self):
        return "HostCheck()"


class AtSync(HostCheck):
    @property
    def stops_at_sync(self):
        return True


class Plain(Stopper):
    stops_at_sync = True  # not a StoppingCriterion: the attribute is not read


def fix_for(name):
    return f"if it never calls trainer.stop, set may_stop = False on {name} to silence this warning"


def message(k, index, shown, what, fix):
    return (
        f"steps_per_call={k}: callbacks[{index}] {shown} may stop the run but {what} no array "
        f"form, so they are checked after each fused chunk and the run may go up to {k - 1} "
        f"steps past the step where they ask to stop ({fix})"
    )


EXACT = "stopping criteria with an array form, such as LossBelow or MaxSteps, stop exactly"


def test_step_hooks_are_step_begin_or_step_end():
    assert step_hooks(Stopper()) and step_hooks(BeginOnly())
    assert not step_hooks(AtRunEnd()) and not step_hooks(sl.Callback())


def test_array_form_criteria_and_exact_parts_make_the_program():
    limit, budget = sl.MaxSteps(5), sl.TimeLimit(60) | sl.MaxSteps(9)
    plan = FusionPlan([Watcher(), limit, sl.TimeLimit(60), budget], steps_per_call=4)
    assert plan.stopper.criteria == (limit, budget.parts[1])
    assert plan.bounded is True
    assert plan.callbacks[0].__class__ is Watcher and len(plan.callbacks) == 4
    assert plan.steps_per_call == 4
    only = FusionPlan([limit, sl.TimeLimit(60)], steps_per_call=4)
    assert only.stopper.criteria == (limit,) and only.bounded is False
    assert not FusionPlan([], steps_per_call=4).stopper


def test_records_are_needed_for_step_hooks_outside_the_program():
    assert FusionPlan([sl.MaxSteps(3), sl.LossBelow(0.1)], 4).records_needed is False
    assert FusionPlan([sl.MaxSteps(3), Watcher()], 4).records_needed is True
    assert FusionPlan([sl.MaxSteps(3), BeginOnly()], 4).records_needed is True
    assert FusionPlan([AtRunEnd()], 4).records_needed is False
    # a host-checked composite's host part needs records, though its exact part is in the program
    assert FusionPlan([sl.TimeLimit(60) | sl.MaxSteps(3)], 4).records_needed is True


def test_callbacks_that_cannot_run_past_their_stop_are_not_host_stoppers():
    skipped = [sl.MaxSteps(3), Watcher(), AtRunEnd(), EveryStep(), AtSync(), Live()]
    stoppers = [
        sl.TimeLimit(60) & sl.MaxSteps(3),
        SecondStep(),
        HostCheck(),
        Plain(),
        sl.TimeLimit(60),
    ]
    plan = FusionPlan([*skipped, *stoppers], steps_per_call=4)
    found = list(plan.host_stoppers())
    assert [index for index, _ in found] == [6, 7, 8, 9, 10]
    assert [callback for _, callback in found] == stoppers


def test_the_warning_names_each_host_stopper_and_the_fix():
    plan = FusionPlan(
        [sl.MaxSteps(3), sl.TimeLimit(600), sl.TimeLimit(600) | sl.MaxSteps(20), Stopper()],
        steps_per_call=5,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan.warn_host_stoppers(1)
    assert [str(w.message) for w in caught] == [
        message(5, 1, "TimeLimit(600s)", "it has", EXACT),
        message(
            5,
            2,
            "TimeLimit(600s) | MaxSteps(20)",
            "its part(s) TimeLimit(600s) have",
            EXACT + ", also as parts of it",
        ),
        message(5, 3, "Stopper", "it has", fix_for("Stopper")),
    ]
    assert all(w.category is UserWarning for w in caught)
    # the warning points at the caller, not at the plan's own code
    assert not any(w.filename.endswith("fusion.py") for w in caught)


def test_two_host_parts_are_listed():
    plan = FusionPlan([(HostCheck() | sl.MaxSteps(3)) | sl.TimeLimit(9)], steps_per_call=2)
    with pytest.warns(UserWarning) as caught:
        plan.warn_host_stoppers(1)
    assert [str(w.message) for w in caught] == [
        message(
            2,
            0,
            "HostCheck() | MaxSteps(3) | TimeLimit(9s)",
            "its part(s) HostCheck(), TimeLimit(9s) have",
            EXACT + ", also as parts of it",
        )
    ]


def test_no_warning_without_host_stoppers():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FusionPlan([sl.MaxSteps(3), Watcher()], steps_per_call=4).warn_host_stoppers(1)


def test_call_size_is_k_unless_a_callback_or_the_budget_ends_the_call_sooner():
    assert FusionPlan([], steps_per_call=2).call_size(0, None) == 2
    assert FusionPlan([], steps_per_call=1).call_size(0, 5) == 1
    plan = FusionPlan([Live(sl.at(5, 9))], steps_per_call=8)
    assert plan.call_size(0, None) == 5
    assert plan.call_size(4, None) == 1
    assert plan.call_size(5, None) == 4
    assert plan.call_size(5, 1) == 1
    assert plan.call_size(9, None) == 8
