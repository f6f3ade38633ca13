"""Pins the Trainer's argument checks: exact error messages, array hints and describe()."""

import re

import numpy as np
import pytest

import steploop as sl
from tests.helpers import batch_replay, quadratic
from tests.scripted import Scripted


class NoGradients(Scripted):
    """A scripted strategy that reports no gradients."""

    reports_gradients = False


class NeedsGradients(sl.Callback):
    """A callback that needs gradients."""

    requires_gradients = True

    def __repr__(self):
        return "NeedsGradients()"


def test_a_non_strategy_is_refused_with_the_full_hint():
    """A strategy that is no StepStrategy names the class to subclass and a ready one."""
    with pytest.raises(TypeError) as caught:
        sl.Trainer(object())
    assert str(caught.value) == (
        "strategy must be a StepStrategy, got object; "
        "subclass steploop.StepStrategy or use a ready one such as steploop.tf.TapeStep"
    )


def test_a_gradient_callback_without_gradients_names_a_strategy_that_reports_them():
    """A callback that needs gradients on a strategy without them: the whole message."""
    with pytest.raises(ValueError) as caught:
        sl.Trainer(NoGradients([1.0]), callbacks=[sl.MaxSteps(1), NeedsGradients()])
    assert str(caught.value) == (
        "callbacks[1] NeedsGradients() needs gradients, but NoGradients reports none; "
        "use a strategy that reports them (steploop.tf.TapeStep, for example)"
    )


def test_a_run_nothing_could_end_is_refused_with_the_full_message():
    """run() with no stopping callback, max_steps or data: the whole message."""
    with pytest.raises(ValueError) as caught:
        sl.Trainer(quadratic()).run()
    assert str(caught.value) == (
        "nothing would end this run: no callback can stop it, max_steps is None and "
        "there is no data; add a stopping criterion (e.g. steploop.MaxSteps(1000)) or "
        "pass max_steps"
    )


def test_stop_with_status_error_lists_every_other_status():
    """stop(status='error') lists the statuses a user may give: all but 'error', in order."""
    allowed = ["converged", "budget", "exhausted", "stopped", "nonfinite"]
    with pytest.raises(ValueError) as caught:
        sl.Trainer(quadratic()).stop("enough", status="error")
    assert str(caught.value) == f"stop: status must be one of {allowed}, got 'error'"


def test_stop_with_an_unknown_status_lists_the_allowed_ones():
    """stop(status='done') names the allowed statuses and the bad one."""
    message = (
        "stop: status must be one of ['converged', 'budget', 'exhausted', 'stopped', "
        "'nonfinite'], got 'done'"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        sl.Trainer(quadratic()).stop("enough", status="done")


def test_a_tuple_with_an_item_without_shape_is_taken_as_data():
    """A tuple holding something without a shape is an ordinary iterable of batches."""
    trainer = sl.Trainer(batch_replay([]), data=(np.zeros(3), 2.0))
    assert "data=tuple of 2 batches" in trainer.describe()


def test_a_tuple_with_a_scalar_array_is_taken_as_data():
    """A tuple holding a 0-d array (a shape of no axes) is an ordinary iterable of batches."""
    trainer = sl.Trainer(batch_replay([]), data=(np.zeros(3), np.float64(5.0)))
    assert "data=tuple of 2 batches" in trainer.describe()


def test_a_tuple_of_one_array_suggests_a_one_tuple_of_xs():
    """One array of 3 rows in a tuple: the hint writes ``(xs,)``."""
    with pytest.raises(ValueError) as caught:
        sl.Trainer(batch_replay([]), data=(np.zeros(3),))
    assert str(caught.value) == (
        "data is a tuple of 1 arrays of 3 rows: the Trainer would take each whole array as one "
        "batch; to train on batches of rows, write data=sl.batches((xs,), batch_size=32)"
    )


def test_a_tuple_of_three_arrays_suggests_numbered_names():
    """Three arrays of 4 rows in a tuple: the hint names them a0, a1, a2."""
    data = (np.zeros(4), np.ones(4), np.zeros((4, 2)))
    with pytest.raises(ValueError) as caught:
        sl.Trainer(batch_replay([]), data=data)
    assert str(caught.value) == (
        "data is a tuple of 3 arrays of 4 rows: the Trainer would take each whole array as one "
        "batch; to train on batches of rows, write data=sl.batches((a0, a1, a2), batch_size=32)"
    )


def test_describe_names_data_without_a_length_by_its_type():
    """describe() gives data with no len() (a generator) as its type name."""
    trainer = sl.Trainer(batch_replay([]), data=(x for x in [1.0, 2.0]))
    first = trainer.describe().splitlines()[0]
    assert first == "Trainer(GradientDescent, data=generator)"
