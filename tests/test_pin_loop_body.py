"""CompiledLoops.run marks a call made under keep_gradients=LAST as holding the last step's
gradients alone, and no other call; Source.rows pads a short call's batches to the loop's rows; a
call whose data asks to stop as it yields a batch ends before that batch and says so."""

import pytest

import steploop as sl
from steploop.criteria_program import CriteriaProgram
from steploop.loop_body import STACKED, CompiledLoops, Source
from steploop.strategy import LAST, BatchCursor
from tests.test_compiled_loops import NumpyLoops
from tests.test_compiled_loops import step as compiled_step


class TwoSteps(CompiledLoops):
    """A loop that always does two steps (losses 1 and 0.5) and reports gradient 3 for ``w``."""

    def build(self, count, stopper, keep_gradients, mode):
        return "loop"

    def call(self, function, key, first_step, source, flat, feed):
        stacked = {"loss": [1.0, 0.5], "values": {}, "gradients": {"w": 3.0}}
        return [2.0, 0.0, 0.0], stacked


@pytest.mark.parametrize(("keep", "last"), [(LAST, True), (True, False), (False, False)])
def test_only_a_last_call_says_its_gradients_are_the_last_steps(keep, last):
    """last_gradients is True exactly for keep_gradients=LAST; the rest of the result is kept."""
    chunk = TwoSteps().run(4, 1, CriteriaProgram([]), None, keep)
    assert chunk.last_gradients is last
    assert chunk.steps == 2
    assert list(chunk.output.loss) == [1.0, 0.5]
    assert chunk.output.gradients == {"w": 3.0}


@pytest.mark.parametrize(
    ("batches", "count", "rows"),
    [
        (["a", "b"], 4, ["a", "b", "b", "b"]),  # the data ended two rows short: the last repeats
        (["a", "b", "c"], 4, ["a", "b", "c", "c"]),
        (["a", "b", "c"], 3, ["a", "b", "c"]),  # a full call: as pulled
        (["a"], 1, ["a"]),
    ],
)
def test_a_short_call_is_padded_with_its_last_batch(batches, count, rows):
    """rows(count) gives count rows: the batches pulled, then the last one again."""
    assert Source(STACKED, len(batches), batches, True).rows(count) == rows


class WrongCount(TwoSteps):
    """Returns one number too many for a program without criteria (3 control numbers)."""

    def call(self, function, key, first_step, source, flat, feed):
        return [2.0, 0.0, 0.0, 1.0], super().call(function, key, first_step, source, flat, feed)[1]


def test_a_call_returning_the_wrong_count_of_numbers_is_refused_naming_the_class():
    with pytest.raises(ValueError) as raised:
        WrongCount().run(4, 1, CriteriaProgram([]), None, False)
    assert str(raised.value) == (
        "WrongCount.call returned 4 numbers; expected 3 (steps, stopped, exhausted, 0 verdicts, "
        "0 states)"
    )


class AsksAt:
    """Data 1, 2, 3, ... that asks ``stopper`` to stop as it yields batch ``at``."""

    def __init__(self, stopper, at, count=6):
        self.stopper, self.at, self.count = stopper, at, count

    def __iter__(self):
        for batch in range(1, self.count + 1):
            if batch == self.at:
                self.stopper.stop_asked = True
            yield float(batch)


@pytest.mark.parametrize("at", [2, 3, 4])
def test_a_compiled_call_stops_before_the_batch_the_data_asked_to_stop_at(at):
    """The batches are pulled before the loop runs: the one yielded as the data asked to stop
    goes back, no later one is pulled, and the call says it ended where that stop takes effect
    (stop_honoured); the data has not ended."""
    loops, stopper = NumpyLoops(), CriteriaProgram([])
    feed = BatchCursor(iter(AsksAt(stopper, at)))
    chunk = loops.run(4, 1, stopper, feed, False)
    kept = [float(b) for b in range(1, at)]
    assert loops.calls[0][2] == Source(STACKED, at - 1, kept, False, True)
    assert chunk.steps == at - 1 and chunk.output.values["b"].tolist() == kept
    assert chunk.stop_honoured is True
    assert chunk.exhausted is False and chunk.stopped is False
    assert feed.next() == float(at)  # the batch the data asked at is the next one


def test_a_compiled_call_the_data_did_not_ask_to_stop_honours_no_stop():
    loops, stopper = NumpyLoops(), CriteriaProgram([])
    feed = BatchCursor(iter(AsksAt(stopper, at=6)))
    chunk = loops.run(4, 1, stopper, feed, False)
    assert loops.calls[0][2] == Source(STACKED, 4, [1.0, 2.0, 3.0, 4.0], False, False)
    assert chunk.steps == 4 and chunk.stop_honoured is False


def test_a_compiled_call_whose_data_asks_at_its_first_batch_is_left_to_a_plain_step():
    """No batch to stack: the caller's plain step puts the batch back and takes no step."""
    loops, stopper = NumpyLoops(), CriteriaProgram([])
    feed = BatchCursor(iter(AsksAt(stopper, at=1)))
    assert loops.run(4, 1, stopper, feed, False) is None
    assert loops.calls == [] and feed.next() == 1.0


class Compiled(sl.StepStrategy):
    """A Fusable strategy whose calls are ``NumpyLoops``' loop: step k with batch b has loss
    b / k, as its plain step."""

    ready_to_fuse = True

    def __init__(self):
        self.k = 0
        self.loops = NumpyLoops()

    def step(self, batch):
        self.k += 1
        return compiled_step(self.k, batch)

    def run_steps(self, count, first_step, stopper, feed, keep):
        chunk = self.loops.run(count, first_step, stopper, feed, keep)
        if chunk is not None:
            self.k += chunk.steps
        return chunk


def data_asking_to_stop(steps_per_call, asks_at):
    """A run whose data asks the Trainer to stop as it yields batch ``asks_at``, then 3 more
    steps: (steps, reason, steps after the second run, losses)."""
    holder = {}

    def data():
        for batch in range(1, 11):
            if batch == asks_at and "asked" not in holder:
                holder["asked"] = True
                holder["trainer"].stop(f"the data asked to stop at its batch {batch}")
            yield float(batch)

    strategy = Compiled()
    trainer = holder["trainer"] = sl.Trainer(
        strategy, [sl.MaxSteps(100)], data=data(), steps_per_call=steps_per_call
    )
    first = trainer.run()
    second = trainer.run(max_steps=3)
    assert bool(strategy.loops.calls) is (steps_per_call > 1)
    return first.steps, first.stop_reason, second.steps, trainer.history["loss"].tolist()


@pytest.mark.parametrize("asks_at", [2, 3, 6])
def test_a_stop_the_data_asks_for_ends_a_compiled_call_before_that_batch_as_step_by_step(
    asks_at,
):
    """The batch yielded as the data asked runs no step, the reason is the one asked (not a
    stop during a fused call), and the next run starts with that batch."""
    fused = data_asking_to_stop(4, asks_at)
    assert fused == data_asking_to_stop(1, asks_at)
    assert fused[:3] == (asks_at - 1, f"the data asked to stop at its batch {asks_at}", asks_at + 2)
    assert fused[3] == [1.0] * (asks_at + 2)  # loss b / k: step k took batch k, none skipped
