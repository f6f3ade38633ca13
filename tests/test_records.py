"""Records: lazy conversion happens once, expiry is explicit, statuses are validated."""

import contextlib

import numpy as np
import pytest

import steploop as sl
from steploop.records import Lazy
from tests.helpers import RaiseAt, batch_replay, gradient_descent, quadratic


def test_lazy_computes_once_and_expires_only_if_unread():
    calls = []
    read = Lazy(lambda: calls.append(1) or "value")
    assert read.get() == "value"
    read.expire("gone")
    assert read.get() == "value" and calls == [1]
    unread = Lazy(lambda: calls.append(2) or "never")
    unread.expire("variables of step 3 are gone")
    with pytest.raises(RuntimeError, match="variables of step 3 are gone"):
        unread.get()
    unread.expire("a later expiry")  # the first expiry's message stays
    with pytest.raises(RuntimeError, match=r"^variables of step 3 are gone$"):
        unread.get()
    assert calls == [1]


def test_step_record_is_frozen_and_compares_by_step_loss_values():
    a = sl.StepRecord(step=1, loss=2.0, values={"v": 1.0})
    b = sl.StepRecord(step=1, loss=2.0, values={"v": 1.0}, gradients_lazy=Lazy(None, {"x": 1}))
    assert a == b
    with pytest.raises(AttributeError):
        a.step = 2
    assert b.gradients == {"x": 1} and a.target_gradients == {} and a.variables == {}


def test_run_result_and_stop_validate_the_status():
    history = sl.History()
    with pytest.raises(ValueError, match="'status' must be in"):
        sl.RunResult(
            steps=0, loss=np.nan, status="done", stop_reason="", history=history, elapsed=0.0
        )
    with pytest.raises(ValueError, match="'status' must be in"):
        sl.Stop("why", "finished")
    for status in sl.STATUSES:  # every word of STATUSES is accepted
        assert sl.Stop("why", status).status == status


def test_every_status_is_what_some_run_ends_with():
    """STATUSES lists exactly the words real runs end with (``error`` as on_run_end sees it)."""
    seen = []

    class Status(sl.Callback):
        def on_run_end(self, trainer, result):
            seen.append(result.status)

    class StopAt2(sl.Callback):
        def on_step_end(self, trainer, record):
            if record.step == 2:
                trainer.stop("asked to")

    nan = gradient_descent(lambda x: (x * np.nan, x * 0.0))
    runs = [
        (quadratic(), [sl.LossBelow(1e-12)], None),
        (quadratic(), [sl.MaxSteps(3)], None),
        (batch_replay([]), [], [1.0, 2.0]),
        (quadratic(), [StopAt2()], None),
        (nan, [sl.StopOnNaN()], None),
        (quadratic(), [RaiseAt(2), sl.MaxSteps(5)], None),
    ]
    for strategy, callbacks, data in runs:
        with contextlib.suppress(RuntimeError):
            sl.Trainer(strategy, [*callbacks, Status()], data).run()
    assert seen == list(sl.STATUSES)


def test_the_fast_record_builder_fills_every_field_as_the_constructor_does():
    """``step_record`` (what a plain step uses) sets each field the constructor sets, so a
    field added to StepRecord and not to it fails here."""
    from steploop.readback import LiveVariables
    from steploop.records import Lazy, step_record

    class Two:
        def variables(self):
            return {"x": 2.0}

    gradients, targets = Lazy(lambda: {"x": 1.0}), Lazy(lambda: {"t": {"x": 3.0}})
    args = (4, 0.25, {"lr": 0.1}, 2)
    fast = step_record(*args, gradients, targets, LiveVariables(Two(), 4))
    made = sl.StepRecord(
        *args,
        gradients_lazy=gradients,
        target_gradients_lazy=targets,
        variables_lazy=LiveVariables(Two(), 4),
    )
    assert fast.__dict__.keys() == made.__dict__.keys()
    assert fast == made and repr(fast) == repr(made)
    assert (fast.gradients, fast.target_gradients, fast.variables) == (
        {"x": 1.0},
        {"t": {"x": 3.0}},
        {"x": 2.0},
    )
