"""CompiledLoops.run marks a call made under keep_gradients=LAST as holding the last step's
gradients alone, and no other call; Source.rows pads a short call's batches to the loop's rows."""

import pytest

from steploop.criteria_program import CriteriaProgram
from steploop.loop_body import STACKED, CompiledLoops, Source
from steploop.strategy import LAST


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
