"""The body of a fused loop, run with the host namespace: it gives what plain steps give."""

import pytest

import steploop as sl
from steploop import chunks, loop_body
from steploop.criteria_program import CriteriaProgram, Quantities
from steploop.ops import HOST
from steploop.strategy import LAST, BatchCursor, FusedResult, StepOutput


def run_loop(stopper, losses, count, extra_stop=None):
    """A host loop written with loop_body only, as a framework's driver would."""
    layout = loop_body.States.of(stopper)
    states, verdicts, i, stop = layout.initial, (), 0, False
    while i < count and not stop:
        output = StepOutput(loss=losses[i], values={"i": i})
        stop, states, verdicts = loop_body.after_step(
            HOST, stopper, i + 1, output, states, extra_stop
        )
        i += 1
    return loop_body.control(i, stop, False, verdicts), layout.flat(states)


@pytest.mark.parametrize("count", [1, 3, 10])
def test_the_loop_stops_where_the_criteria_do(count):
    """A loop of after_step stops at the step the stopper's host evaluation stops at."""
    losses = [5.0, 3.0, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    stopper = CriteriaProgram([sl.LossBelow(0.5) | sl.MaxSteps(8)])
    control, flat = run_loop(stopper, losses, count)
    chunk = chunks.assemble(control, flat, stopper.initial(), {"loss": [], "values": {}})
    expected = min(count, 3)
    assert (chunk.steps, chunk.stopped) == (expected, expected == 3)
    host = CriteriaProgram([sl.LossBelow(0.5) | sl.MaxSteps(8)])
    assert host.evaluate(HOST, host.initial(), Quantities(step=3, loss=0.4))[0] is True


def test_the_strategys_own_stop_is_ored():
    control, _ = run_loop(CriteriaProgram([]), [1.0] * 5, 5, lambda output: output.values["i"] == 1)
    assert control[:3] == [2, True, False]
    control, _ = run_loop(CriteriaProgram([]), [1.0] * 5, 5, lambda output: None)
    assert control[:3] == [5, False, False]


def test_take_pulls_stackable_batches_or_says_why_not():
    assert loop_body.take(None, 3, lambda it: True).mode == loop_body.NO_DATA
    assert loop_body.take(BatchCursor(iter([1.0])), 3, lambda it: True).mode == loop_body.ITERATOR
    source = loop_body.take(BatchCursor(iter([1.0, 2.0])), 3, lambda it: False)
    assert (source.mode, source.limit, source.batches, source.ended) == (
        "stacked",
        2,
        [1.0, 2.0],
        True,
    )
    assert isinstance(loop_body.take(BatchCursor(iter([])), 3, lambda it: False), FusedResult)
    assert loop_body.take(BatchCursor(iter(["a"])), 3, lambda it: False) is None


def test_kept_and_parts_agree():
    """Every kept output is among a step's parts; gradients only when reported and kept."""
    output = StepOutput(loss=1.0, gradients={"w": 2.0}, target_gradients={"z": {"w": 3.0}})
    trees = loop_body.parts(output)
    assert loop_body.kept(list(trees), True) == (list(loop_body.OUTPUTS), [])
    assert loop_body.kept(list(trees), LAST) == (["loss", "values"], list(loop_body.OUTPUTS[2:]))
    assert loop_body.kept(["loss", "values", "gradients"], LAST) == (
        ["loss", "values"],
        ["gradients"],
    )
    assert loop_body.kept(list(trees), False) == (["loss", "values"], [])
    assert loop_body.parts(StepOutput(loss=1.0), absent={})["gradients"] == {}


def test_split_takes_the_states_from_the_end_and_the_control_numbers_as_ints():
    control, states = loop_body.split([3.0, 1.0, 0.0, 1.0, 0.5, 2.0], 2)
    assert (control, states) == ([3, 1, 0, 1], [0.5, 2.0])
    assert all(type(n) is int for n in control)
    assert loop_body.split([2.0, 0.0, 1.0], 0) == ([2, 0, 1], [])
