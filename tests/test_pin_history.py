"""History: step numbers kept as given (exact, out of order, up to the int64 maximum), an
``epoch`` column logged by a callback reading 0 at the earlier steps, and an epoch past int64
refused."""

import numpy as np
import pytest

import steploop as sl


def steps_of(*steps):
    history = sl.History()
    for step in steps:
        history.append(step, 1.0)
    return history["step"].tolist()


def test_steps_that_are_not_consecutive_are_kept_as_given():
    """Steps that go back, or repeat after a jump, read back as they were appended."""
    assert steps_of(5, 4) == [5, 4]
    assert steps_of(1, 3, 3) == [1, 3, 3]


def test_a_step_number_stays_exact_beyond_float_precision():
    """A plain step's int number is kept exactly, not rounded through a float."""
    step = 2**53 + 1  # the first int a float64 cannot hold
    assert steps_of(step) == [step]


def test_an_epoch_logged_by_a_callback_reads_0_at_earlier_steps():
    """``log("epoch", ...)`` makes an integer column whose earlier rows read 0, not nan."""
    history = sl.History()
    history.append(1, 4.0)
    history.append(2, 1.0)
    history.log("epoch", 1)
    epochs = history["epoch"]
    assert epochs.dtype == np.int64
    assert epochs.tolist() == [0, 1]


def test_extend_refuses_an_epoch_past_int64_and_adds_no_row():
    """An epoch the int64 column cannot hold raises OverflowError, not a wrapped-round number."""
    history = sl.History()
    with pytest.raises(OverflowError):
        history.extend(1, [4.0, 1.0], epoch=2**63)
    assert len(history) == 0


def test_extend_keeps_steps_up_to_the_int64_maximum_exactly():
    """Steps that continue the numbering up to 2**63 - 1 read back exactly after ``extend``."""
    last = 2**63 - 1  # the largest int64
    history = sl.History()
    history.append(last - 1, 4.0)
    history.extend(last, [1.0])
    assert history["step"].tolist() == [last - 1, last]
