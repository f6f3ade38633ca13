"""Stopping criteria: the base class's messages and state, remembered verdicts, composites'
operators, nesting and per-run hooks."""

import pytest

import steploop as sl
from steploop.callbacks.stopping import AnyOf, StoppingCriterion
from tests.helpers import quadratic
from tests.test_autofuse import fused_quadratic


def message(call, error):
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


class Lazy(StoppingCriterion):
    """Implements neither check nor test."""


def test_a_criterion_without_check_or_test_says_what_to_implement():
    said = "Lazy must implement check or test (it has no array form)"
    assert message(lambda: Lazy().check(None, None), NotImplementedError) == said
    assert message(lambda: Lazy().test(None, (), None), NotImplementedError) == said


def test_a_criterion_that_claims_an_array_form_without_a_test_says_so():
    class Claims(StoppingCriterion):
        array_form = True

    said = "Claims sets array_form = True but implements no test"
    assert message(lambda: Claims().check(None, sl.StepRecord(1, 1.0)), NotImplementedError) == said


def test_a_host_criterion_that_writes_only_test_is_checked_with_it():
    """``array_form`` left False: the host check still uses its ``test``."""

    class Above(StoppingCriterion):
        def test(self, ops, state, q):
            return q.loss > 2.0, ()

    record = sl.StepRecord(step=3, loss=2.5)
    assert Above().check(None, record).reason == "Above: met at step 3"


def test_a_loaded_state_is_held_as_a_tuple():
    criterion = Lazy()
    assert criterion.state() == ()
    criterion.load([1.0, 2.0])
    assert criterion.state() == (1.0, 2.0)
    kept = (3.0,)
    criterion.load(kept)
    assert criterion.state() is kept


def test_a_verdict_is_remembered_for_its_step_until_forgotten():
    criterion = sl.MaxSteps(3)
    sl.Trainer(quadratic(), [criterion], steps_per_call=1).run()
    stop = criterion.verdict_at(3)
    assert stop is not None and stop.reason == "MaxSteps(3): reached 3 steps"
    assert criterion.verdict_at(2) is None
    assert criterion.verdict_at(4) is None
    criterion.forget_verdict()
    assert criterion.verdict_at(3) is None


@pytest.mark.parametrize(
    ("combine", "expected"),
    [
        (lambda c: c | 5, "'|' combines stopping criteria; got int"),
        (lambda c: c & "x", "'&' combines stopping criteria; got str"),
        (lambda c: AnyOf(c, sl.PrintLogger()), "'|' combines stopping criteria; got PrintLogger"),
    ],
)
def test_only_criteria_combine(combine, expected):
    assert message(lambda: combine(sl.MaxSteps(3)), TypeError) == expected


def test_a_nested_composite_reads_back_in_parentheses():
    nested = (sl.MaxSteps(1) & sl.LossBelow(1.0)) | sl.MaxSteps(2)
    assert repr(nested) == "(MaxSteps(1) & LossBelow(1)) | MaxSteps(2)"
    flat = sl.MaxSteps(1) | sl.MaxSteps(2) | sl.MaxSteps(3)
    assert repr(flat) == "MaxSteps(1) | MaxSteps(2) | MaxSteps(3)"


def test_a_composite_refuses_a_state_with_another_number_of_parts():
    composite = sl.TimeLimit(60) | sl.TimeLimit(120)
    state = composite.get_state()
    assert len(state["parts"]) == 2
    with pytest.raises(ValueError):
        composite.set_state({"parts": state["parts"][:1]})


class EndSpy(StoppingCriterion):
    """Never met; keeps the Trainer its per-run tear-down is given."""

    def __init__(self):
        self.ended = []

    def check(self, trainer, record):
        return None

    def _end_run(self, trainer):
        self.ended.append(trainer)


def test_the_per_run_tear_down_gets_the_trainer_alone_or_in_a_composite():
    alone, inside = EndSpy(), EndSpy()
    trainer = sl.Trainer(quadratic(), [alone, inside | sl.MaxSteps(2)], steps_per_call=1)
    trainer.run()
    assert alone.ended == [trainer] and inside.ended == [trainer]


def test_a_composite_met_inside_a_fused_call_remembers_its_verdict():
    strategy = fused_quadratic()
    either = sl.LossBelow(-1.0) | sl.MaxSteps(6)
    trainer = sl.Trainer(strategy, [either], steps_per_call=4)
    assert trainer.run().steps == 6
    assert strategy.calls == [4, 4]  # the second call stopped after its second step
    stop = either.verdict_at(6)
    assert stop is not None and stop.reason == "MaxSteps(6): reached 6 steps"


class CountedChecks(StoppingCriterion):
    """Met at step ``at``; counts its checks."""

    def __init__(self, at):
        self.at, self.checks = at, []

    def check(self, trainer, record):
        self.checks.append(record.step)
        return self._stop(f"step {record.step}") if record.step == self.at else None


class OwnStepEnd(CountedChecks):
    """Overrides ``on_step_end``: called as it is, and it decides whether the run stops."""

    def __init__(self, at):
        super().__init__(at)
        self.ends = []

    def on_step_end(self, trainer, record):
        self.ends.append(record.step)


def test_a_criterion_is_checked_once_a_step_and_its_stop_is_remembered():
    criterion = CountedChecks(at=4)
    result = sl.Trainer(quadratic(), [criterion], steps_per_call=1).run(max_steps=10)
    assert criterion.checks == [1, 2, 3, 4]
    assert (result.steps, result.status) == (4, "converged")
    assert result.stop_reason == "CountedChecks: step 4"
    assert criterion.verdict_at(4).reason == "CountedChecks: step 4"


def test_an_overridden_on_step_end_is_called_instead_of_check():
    criterion = OwnStepEnd(at=2)
    result = sl.Trainer(quadratic(), [criterion], steps_per_call=1).run(max_steps=5)
    assert criterion.ends == [1, 2, 3, 4, 5]
    assert criterion.checks == []
    assert (result.steps, result.status) == (5, "budget")


def test_a_stop_from_check_ends_the_run_through_stopped():
    class Met(CountedChecks):
        def stopped(self, trainer, record, stop):
            self.stopped_at = record.step
            super().stopped(trainer, record, stop)

    criterion = Met(at=3)
    result = sl.Trainer(quadratic(), [criterion], steps_per_call=1).run(max_steps=9)
    assert (criterion.stopped_at, result.steps) == (3, 3)


class ListState(StoppingCriterion):
    """An array-form counter whose ``test`` returns its new state as a list."""

    array_form = True

    def init(self):
        return (0.0,)

    def test(self, ops, state, q):
        return False, [state[0] + 1.0]


def test_a_state_that_test_returns_as_a_list_is_held_as_a_tuple():
    """``check`` keeps the state ``test`` returned as a tuple, whatever sequence it was."""
    criterion = ListState()
    assert criterion.check(None, None) is None
    assert criterion.check(None, None) is None
    assert criterion.state() == (2.0,)


class SeesTrainer(StoppingCriterion):
    """Never met; keeps the trainer each check is given."""

    may_stop = False

    def __init__(self):
        self.trainers = []

    def check(self, trainer, record):
        self.trainers.append(trainer)
        return None


def test_a_criterion_called_through_on_step_end_checks_with_the_trainer():
    """Wrapped in ``every``, a criterion's ``on_step_end`` hands ``check`` the Trainer."""
    criterion = SeesTrainer()
    trainer = sl.Trainer(quadratic(), [criterion.every(2)], steps_per_call=1)
    trainer.run(max_steps=4)
    assert criterion.trainers == [trainer, trainer]
