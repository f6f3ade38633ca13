"""CriteriaProgram: cache keys that identify criteria by kind, settings and composition, the
verdict of an empty program, state counts that must match, its repr, a framework's program
joined with its own any_, and which criteria the host may join as flat."""

import pytest

import steploop as sl
from steploop.callbacks.stopping import StoppingCriterion
from steploop.criteria_program import CriteriaProgram, Quantities
from steploop.ops import HOST


def key(*criteria):
    return CriteriaProgram(criteria).cache_key()


def test_equal_settings_give_equal_keys_across_objects():
    assert key(sl.MaxSteps(3) | sl.LossBelow(0.5)) == key(sl.MaxSteps(3) | sl.LossBelow(0.5))
    assert key(sl.MaxSteps(3)) == key(sl.MaxSteps(3))


def test_other_settings_kinds_or_composition_give_other_keys():
    assert key(sl.MaxSteps(3) | sl.LossBelow(0.5)) != key(sl.MaxSteps(4) | sl.LossBelow(0.5))
    assert key(sl.MaxSteps(3) | sl.LossBelow(0.5)) != key(sl.MaxSteps(3) & sl.LossBelow(0.5))
    assert key(sl.MaxSteps(3)) != key(sl.MaxSteps(4))
    assert key(sl.MaxSteps(3), sl.LossBelow(0.5)) != key(sl.LossBelow(0.5), sl.MaxSteps(3))


class Below(StoppingCriterion):
    """An array-form criterion that is not an attrs class: its settings are unknown."""

    array_form = True

    def __init__(self, threshold):
        self.threshold = threshold

    def test(self, ops, state, q):
        return q.loss < self.threshold, state


def test_criteria_of_unknown_settings_each_get_their_own_key():
    first, second = Below(1.0), Below(1.0)
    assert key(first) != key(second)
    assert key(first) == key(first)


def test_an_empty_program_never_stops():
    program = CriteriaProgram([])
    assert program.evaluate(HOST, (), Quantities(step=1, loss=0.0)) == (False, (), ())
    assert program.evaluate(HOST, (), Quantities(step=1, loss=0.0))[0] is False


def test_states_must_match_the_leaves_in_number():
    program = CriteriaProgram([sl.MaxSteps(3) | sl.LossBelow(0.5)])
    assert len(program.initial()) == 2
    with pytest.raises(ValueError):
        program.evaluate(HOST, ((),), Quantities(step=1, loss=1.0))
    with pytest.raises(ValueError):
        program.load(((),))


def test_repr_lists_the_criteria():
    program = CriteriaProgram([sl.MaxSteps(3), sl.LossBelow(0.5)])
    assert repr(program) == "CriteriaProgram([MaxSteps(3), LossBelow(0.5)])"


class NoArrayForm(StoppingCriterion):
    """A criterion without an array form."""

    def __repr__(self):
        return "NoArrayForm()"


def test_a_criterion_without_array_form_is_refused_by_name():
    """A criterion with no array form cannot join a program; the error says which and why."""
    with pytest.raises(ValueError) as caught:
        CriteriaProgram([sl.MaxSteps(3), NoArrayForm()])
    assert str(caught.value) == (
        "NoArrayForm() has no array form; it cannot run in a CriteriaProgram"
    )


def test_a_gradient_criterion_gets_gradients_in_a_python_fused_call():
    """GradientNormBelow(1e-3) in a fused call on (x-4)**2 from 0 (lr 0.1) stops at step 42:
    the gradient at step k is -8 * 0.8**(k-1), first below 1e-3 in norm at k = 42."""
    from steploop.python_loop import run_steps_in_python
    from tests.helpers import quadratic

    stopper = CriteriaProgram([sl.GradientNormBelow(1e-3)])
    chunk = run_steps_in_python(quadratic(), 50, 1, stopper, None, False)
    assert (chunk.steps, chunk.stopped) == (42, True)


def test_the_key_is_recomputed_after_invalidate():
    """After invalidate the key is computed again from the criteria, equal to a fresh one's."""
    program = CriteriaProgram([sl.MaxSteps(3)])
    program.cache_key()
    program.invalidate()
    assert program.cache_key() == key(sl.MaxSteps(3))
    assert program.cache_key() != key(sl.MaxSteps(4))


def fresh_criterion_class():
    """A criterion class made now, so nothing about it is cached yet."""
    import attrs

    @attrs.define(repr=False)
    class Below(StoppingCriterion):
        tol: float
        scale: float = attrs.field(default=1.0)
        hidden: int = attrs.field(default=0, init=False)
        array_form = True

        def test(self, ops, state, q):
            return q.loss < self.tol * self.scale, ()

        def reason(self, q):
            return "below"

    return Below


def test_init_fields_names_the_settings_of_a_new_class_every_time_it_is_asked():
    from steploop._fields import field_names

    below = fresh_criterion_class()
    assert field_names(below, init_only=True) == ("tol", "scale")
    assert field_names(below, init_only=True) == ("tol", "scale")  # asked again: kept names
    assert field_names(below) == ("tol", "scale", "hidden")
    assert field_names(StoppingCriterion, init_only=True) is None  # not an attrs class


def test_a_new_criterion_class_keys_by_its_settings_not_by_object():
    below = fresh_criterion_class()
    assert key(below(0.5)) == key(below(0.5)) == ((below, (("tol", 0.5), ("scale", 1.0))),)
    assert key(below(0.5)) != key(below(0.25))


def test_a_remembered_verdict_outlives_a_change_of_a_field_not_set_at_construction():
    """Verdicts are kept for the criterion's settings (its init fields), not its other fields."""
    below = fresh_criterion_class()(0.5)
    assert below.stop_from(iter([True]), Quantities(step=3, loss=0.1)) is not None
    below.hidden = 7
    assert below.verdict_at(3) is not None
    below.tol = 0.25
    assert below.verdict_at(3) is None


class ListState(StoppingCriterion):
    """Counts steps in a state it returns as a list; met from its third step."""

    array_form = True

    def init(self):
        return (0.0,)

    def test(self, ops, state, q):
        count = state[0] + 1.0
        return count >= 3.0, [count]


@pytest.mark.parametrize("flat", [True, False])
def test_the_host_program_joins_every_criterion_and_keeps_states_as_tuples(flat):
    """A later criterion alone met stops the program, with or without a composite before it (a
    composite is joined by its operator); a state a test returns as a list is kept as a tuple."""
    first = sl.LossBelow(0.5) if flat else (sl.LossBelow(0.5) | sl.MaxSteps(100))
    program = CriteriaProgram([first, ListState()])
    states = program.initial()
    for step in (1, 2, 3):
        stop, states, verdicts = program.evaluate(HOST, states, Quantities(step=step, loss=1.0))
        assert stop is (step == 3)
    assert states[-1] == (3.0,) and type(states[-1]) is tuple
    assert verdicts == ((False, True) if flat else (False, False, True))
    both = CriteriaProgram([sl.LossBelow(0.5) & sl.MaxSteps(2), sl.MaxSteps(100)])
    stop, _, verdicts = both.evaluate(HOST, both.initial(), Quantities(step=2, loss=1.0))
    assert (stop, verdicts) == (False, (False, True, False))  # & of a met and an unmet part
    first = CriteriaProgram([sl.LossBelow(0.5) | sl.MaxSteps(2), sl.MaxSteps(100)])
    stop, _, _ = first.evaluate(HOST, first.initial(), Quantities(step=2, loss=1.0))
    assert stop is True  # the first criterion met, the last not


def tagged_ops():
    """Array ops whose primitives return their name and arguments (as ``tests/test_ops_core.py``'s):
    they show how a framework's program joins the verdicts."""
    from steploop.ops import ArrayOps
    from tests.test_ops_core import PRIMITIVES, tagged

    return ArrayOps("TAGGED", **{name: tagged(name) for name in PRIMITIVES})


def test_a_framework_program_joins_flat_criteria_with_its_own_any():
    """With a framework's ops, criteria without a composite are joined with its ``any_`` (a
    traced verdict has no Python truth value); an empty program's verdict is False."""
    ops = tagged_ops()
    program = CriteriaProgram([sl.LossBelow(0.5), sl.MaxSteps(3)])
    stop, states, verdicts = program.evaluate(ops, program.initial(), Quantities(step=1, loss=1.0))
    assert (stop, states, verdicts) == (("any_", False, False), ((), ()), (False, False))
    empty = CriteriaProgram([])
    assert empty.evaluate(ops, (), Quantities(step=1, loss=0.0)) == (False, (), ())
    assert empty.evaluate(ops, (), Quantities(step=1, loss=0.0))[0] is False


class Inverted(StoppingCriterion):
    """Met when its one part is not: a criterion whose single leaf is another criterion."""

    array_form = True

    def __init__(self, part):
        self.part = part

    def leaves(self):
        return (self.part,)

    def combine(self, ops, verdicts):
        return ops.not_(next(verdicts))


def test_a_criterion_whose_one_leaf_is_another_is_joined_by_its_combine():
    """Only a criterion that is its own single leaf counts as flat: a wrapper of one leaf gives
    its combine's verdict on the host, not its leaf's."""
    program = CriteriaProgram([Inverted(sl.MaxSteps(3))])
    for step, met in ((2, True), (3, False)):
        stop, _, verdicts = program.evaluate(HOST, program.initial(), Quantities(step, loss=1.0))
        assert (stop, verdicts) == (met, (not met,))


@pytest.mark.parametrize("steps_per_call", [1, 4])
def test_a_criterion_before_one_that_raises_takes_its_step_with_the_host_namespace(
    steps_per_call,
):
    """A criterion that computes with its namespace (an EarlyStopping with a baseline) takes
    the step at which a later one raised, in a call in Python as step by step."""
    from tests.test_python_loop import FailsAt, StopsAt

    early = sl.EarlyStopping(5, baseline=0.5, mode="max")
    trainer = sl.Trainer(
        StopsAt(last=None), [sl.MaxSteps(10), early, FailsAt(3)], steps_per_call=steps_per_call
    )
    with pytest.raises(RuntimeError, match="FailsAt raised at step 3"):
        trainer.run()
    # losses 1, 2, 3 beat the baseline 0.5 (max) and each the one before: the best is step 3's
    assert early.state() == (3.0, 3.0, 0.0, 1.0)


def test_states_until_error_runs_the_tests_before_the_raising_one_with_host():
    from tests.test_python_loop import FailsAt

    program = CriteriaProgram([sl.EarlyStopping(5, baseline=0.5, mode="max"), FailsAt(2)])
    states = program.states_until_error(program.initial(), Quantities(2, 4.0))
    assert states == ((4.0, 2.0, 0.0, 1.0), (0.0,))
