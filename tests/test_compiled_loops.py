"""``CompiledLoops`` driven by a NumPy stand-in for a framework's compiled loop."""

import numpy as np
import pytest

import steploop as sl
from steploop import loop_body
from steploop.callbacks.stopping import StoppingCriterion
from steploop.criteria_program import CriteriaProgram
from steploop.loop_body import ITERATOR, NO_DATA, STACKED, CompiledLoops, Source
from steploop.ops import HOST, ArrayOps
from steploop.strategy import BatchCursor, FusedResult, StepOutput
from tests.test_ops_core import PRIMITIVES


def step(number, batch):
    """A step's output: loss 1/step (times the batch, when there is one)."""
    scale = 1.0 if batch is None else float(batch)
    return StepOutput(
        loss=scale / number, values={"b": scale}, gradients={"w": np.array([scale, number])}
    )


class NumpyLoops(CompiledLoops):
    """A framework's loops in plain Python: ``build`` makes a closure, ``call`` runs it."""

    def __init__(self, native=False):
        super().__init__()
        self.builds, self.calls, self._native = [], [], native

    def native(self, iterator):
        return self._native

    def build(self, count, stopper, keep_gradients, mode):
        self.builds.append((count, keep_gradients, mode))
        layout = loop_body.States.of(stopper)

        def loop(first_step, limit, flat, batches):
            states, verdicts, stop, exhausted, i = layout.unpack(flat), (), False, False, 0
            rows = []
            while i < limit and not stop:
                if mode == NO_DATA:
                    batch = None
                elif mode == STACKED:
                    batch = batches[i]
                else:
                    batch = next(batches, None)
                    if batch is None:
                        exhausted = True
                        break
                output = step(first_step + i, batch)
                stop, states, verdicts = loop_body.after_step(
                    HOST, stopper, first_step + i, output, states, None
                )
                rows.append(loop_body.parts(output))
                i += 1
            stacked = {
                "loss": np.array([row["loss"] for row in rows]),
                "values": {"b": np.array([row["values"]["b"] for row in rows])},
            }
            if keep_gradients:
                stacked["gradients"] = {"w": np.array([row["gradients"]["w"] for row in rows])}
            control = loop_body.control(i, stop, exhausted, verdicts)
            numbers = loop_body.numbers(control, layout.flat(states))
            return [float(n) for n in numbers], stacked

        return loop

    def call(self, function, key, first_step, source, flat, feed):
        self.calls.append((key, first_step, source, list(flat)))
        batches = feed.iterator if source.mode == ITERATOR else source.batches
        return function(first_step, source.limit, flat, batches)


def test_the_base_class_builds_and_calls_nothing():
    loops = CompiledLoops()
    assert loops.loops == {}
    assert loops.native(iter([])) is False
    with pytest.raises(NotImplementedError):
        loops.build(2, CriteriaProgram([]), False, NO_DATA)
    with pytest.raises(NotImplementedError):
        loops.call(None, None, 1, Source(NO_DATA, 2), [], None)


def test_a_call_without_data_runs_count_steps_from_the_first_step():
    loops = NumpyLoops()
    stopper = CriteriaProgram([sl.MaxSteps(100)])
    chunk = loops.run(4, 3, stopper, None, True)
    assert chunk.steps == 4
    assert chunk.output.loss.tolist() == [1 / 3, 1 / 4, 1 / 5, 1 / 6]
    assert chunk.output.values["b"].tolist() == [1.0] * 4
    assert chunk.output.gradients["w"].tolist() == [[1.0, 3], [1.0, 4], [1.0, 5], [1.0, 6]]
    assert chunk.output.target_gradients is None
    assert (chunk.stopped, chunk.exhausted, chunk.verdicts, chunk.states) == (
        False,
        False,
        (False,),
        ((),),
    )
    key = (4, stopper.cache_key(), True, NO_DATA)
    assert loops.builds == [(4, True, NO_DATA)]
    assert loops.calls == [(key, 3, Source(NO_DATA, 4), [])]
    assert list(loops.loops) == [key]


def test_the_criteria_start_from_their_state_and_stop_the_call():
    loops = NumpyLoops()
    criterion = sl.LossChangeBelow(0.05, patience=2)
    stopper = CriteriaProgram([criterion | sl.MaxSteps(100)])
    # losses 1/1, 1/2, ...: the change falls below 0.05 from step 5 on (1/4 - 1/5 = 0.05 is not)
    chunk = loops.run(10, 1, stopper, None, False)
    assert chunk.steps == 6
    assert chunk.stopped is True and chunk.verdicts == (True, False)
    assert chunk.states[0] == pytest.approx((1 / 6, 2.0, 1 / 5 - 1 / 6))
    assert chunk.states[1] == ()
    assert loops.calls[0][0][2] is False
    assert chunk.output.gradients is None
    # the next call starts from the criteria's state, loaded back
    stopper.load(((1 / 6, 1.0, 0.0), ()))
    chunk = loops.run(10, 7, stopper, None, False)
    assert loops.calls[1][3] == [1 / 6, 1.0, 0.0]
    assert chunk.steps == 1 and chunk.stopped is True


def test_a_loop_is_built_once_per_kind():
    loops = NumpyLoops()
    stopper = CriteriaProgram([sl.MaxSteps(100)])
    for first in (1, 5, 9):
        assert loops.run(4, first, stopper, None, False).steps == 4
    assert loops.builds == [(4, False, NO_DATA)]
    loops.run(4, 13, stopper, None, True)
    loops.run(2, 17, stopper, None, True)
    loops.run(2, 19, CriteriaProgram([sl.MaxSteps(50)]), None, True)
    loops.run(2, 21, stopper, BatchCursor(iter([1.0, 2.0])), True)
    assert loops.builds == [
        (4, False, NO_DATA),
        (4, True, NO_DATA),
        (2, True, NO_DATA),
        (2, True, NO_DATA),
        (2, True, STACKED),
    ]
    assert len(loops.loops) == 5
    assert [call[1] for call in loops.calls] == [1, 5, 9, 13, 17, 19, 21]


def test_stacked_batches_not_used_go_back_to_the_feed():
    loops = NumpyLoops()
    feed = BatchCursor(iter([2.0, 3.0, 4.0, 5.0, 6.0]))
    chunk = loops.run(4, 1, CriteriaProgram([sl.MaxSteps(2)]), feed, False)
    assert loops.calls[0][2] == Source(STACKED, 4, [2.0, 3.0, 4.0, 5.0], False)
    assert chunk.steps == 2 and chunk.stopped is True and chunk.exhausted is False
    assert chunk.output.values["b"].tolist() == [2.0, 3.0]
    assert [feed.next() for _ in range(3)] == [4.0, 5.0, 6.0]


def test_a_feed_that_ends_in_the_call_is_exhausted():
    loops = NumpyLoops()
    feed = BatchCursor(iter([2.0, 4.0]))
    chunk = loops.run(4, 1, CriteriaProgram([]), feed, False)
    assert loops.calls[0][2] == Source(STACKED, 2, [2.0, 4.0], True)
    assert chunk.steps == 2 and chunk.exhausted is True and chunk.stopped is False
    assert chunk.output.loss.tolist() == [2.0, 2.0]
    assert chunk.states == () and chunk.verdicts == ()


def test_a_feed_with_no_batch_left_gives_an_empty_exhausted_chunk():
    loops = NumpyLoops()
    chunk = loops.run(4, 1, CriteriaProgram([]), BatchCursor(iter([])), False)
    assert isinstance(chunk, FusedResult)
    assert (chunk.steps, chunk.exhausted, chunk.output.loss.shape) == (0, True, (0,))
    assert loops.builds == [] and loops.calls == []


def test_a_batch_that_cannot_be_stacked_is_left_to_a_plain_step():
    loops = NumpyLoops()
    feed = BatchCursor(iter(["text", 1.0]))
    assert loops.run(4, 1, CriteriaProgram([]), feed, False) is None
    assert loops.builds == [] and loops.calls == []
    assert feed.next() == "text"


def test_a_native_loop_pulls_from_the_iterator_itself():
    loops = NumpyLoops(native=True)
    feed = BatchCursor(iter([2.0, 4.0, 8.0]))
    chunk = loops.run(2, 1, CriteriaProgram([]), feed, False)
    assert loops.calls[0][2] == Source(ITERATOR, 2)
    assert chunk.output.values["b"].tolist() == [2.0, 4.0]
    assert chunk.exhausted is False
    chunk = loops.run(2, 3, CriteriaProgram([]), feed, False)
    assert chunk.steps == 1 and chunk.exhausted is True
    assert loops.builds == [(2, False, ITERATOR)]


# -- the loop body's pieces -------------------------------------------------------------------


def tagged(name):
    return lambda *args: (name, *args)


#: A namespace whose every function returns its name and arguments, to show what after_step
#: computes with: every condition it returns is an ``any_`` result.
TAGGED = ArrayOps("TAGGED", **{name: tagged(name) for name in PRIMITIVES})


class AccuracyAbove(StoppingCriterion):
    """Reads a reported value (array form)."""

    array_form = True

    def test(self, ops, state, q):
        return q.values["acc"] > 0.9, ()


def test_after_step_returns_any_results_for_the_stop_and_each_verdict():
    output = StepOutput(loss=1.0)
    assert loop_body.after_step(TAGGED, CriteriaProgram([]), 1, output, (), None) == (
        ("any_", False, False),
        (),
        (),
    )
    stop, states, verdicts = loop_body.after_step(
        TAGGED, CriteriaProgram([sl.MaxSteps(3)]), 3, output, ((),), lambda out: "own"
    )
    assert stop == ("any_", ("any_", True, "own"), False)
    assert states == ((),) and verdicts == (("any_", True, False),)


def test_after_step_widens_the_states_and_the_loss():
    """With a NumPy namespace the states come back as float64, the loss widened first."""
    numpy_ops = ArrayOps("NUMPY", **PRIMITIVES)
    stopper = CriteriaProgram([sl.LossChangeBelow(0.5)])
    output = StepOutput(loss=np.float32(2.5))
    stop, states, verdicts = loop_body.after_step(numpy_ops, stopper, 2, output, ((1, 0, 0),), None)
    assert [type(value) for value in states[0]] == [np.float64] * 3
    assert states == ((2.5, 0.0, 1.5),)
    assert (bool(stop), verdicts) == (False, (False,))


def test_the_criteria_read_the_steps_values_and_gradients():
    by_values = CriteriaProgram([AccuracyAbove()])
    high = StepOutput(loss=1.0, values={"acc": 0.95})
    low = StepOutput(loss=1.0, values={"acc": 0.5})
    assert loop_body.after_step(HOST, by_values, 1, high, ((),), None)[0] is True
    assert loop_body.after_step(HOST, by_values, 1, low, ((),), None)[0] is False
    by_norm = CriteriaProgram([sl.GradientNormBelow(1.0)])
    small = StepOutput(loss=1.0, gradients={"w": np.array([0.3, 0.4])})
    stop, states, verdicts = loop_body.after_step(HOST, by_norm, 1, small, ((np.nan,),), None)
    assert (stop, verdicts) == (True, (True,)) and states == ((0.5,),)
    large = StepOutput(loss=1.0, gradients={"w": np.array([3.0, 4.0])})
    assert loop_body.after_step(HOST, by_norm, 1, large, ((np.nan,),), None)[1] == ((5.0,),)


def test_parts_copies_the_target_gradients_by_target():
    targets = {"z": {"w": 3.0}}
    trees = loop_body.parts(StepOutput(loss=1.0, target_gradients=targets), absent="none")
    assert trees["target_gradients"] == {"z": {"w": 3.0}}
    assert trees["gradients"] == "none"
    assert loop_body.parts(StepOutput(loss=1.0), absent="none")["target_gradients"] == "none"


def test_take_asks_about_the_feeds_own_iterator():
    feed = BatchCursor(iter([1.0, 2.0]))
    source = loop_body.take(feed, 3, lambda iterator: iterator is feed.iterator)
    assert source == Source(ITERATOR, 3)
    feed.put_back(0.5)
    assert loop_body.take(feed, 3, lambda iterator: True).mode == STACKED


def test_states_unpack_leaf_by_leaf():
    layout = loop_body.States(((1.0, 2.0), (), (3.0,), (4.0, 5.0)))
    assert layout.unpack([10, 20, 30, 40, 50]) == ((10, 20), (), (30,), (40, 50))
    assert layout.flat(layout.initial) == [1.0, 2.0, 3.0, 4.0, 5.0]
