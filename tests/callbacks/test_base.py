"""Callback plumbing: no-op hooks, Every, CallbackList dispatch, the Release hook."""

import pytest

import steploop as sl
from steploop.callbacks.base import HOOKS
from tests.helpers import Recorder, quadratic


class Untouchable:
    """An argument that fails the test if a hook reads, sets or calls anything on it."""

    def __getattribute__(self, name):
        raise AssertionError(f"a no-op hook touched .{name}")

    def __setattr__(self, name, value):
        raise AssertionError(f"a no-op hook set .{name}")


def test_base_hooks_are_no_ops():
    """Every hook of the base class takes its documented arguments, touches none of them and
    returns nothing; a run with a base Callback equals one without."""
    callback = sl.Callback()
    for name, arguments in HOOKS.items():
        assert getattr(callback, name)(*[Untouchable() for _ in arguments]) is None, name
    assert vars(callback) == {} and repr(callback) == "Callback"
    with_it = sl.Trainer(quadratic(), callbacks=[callback]).run(max_steps=5)
    without = sl.Trainer(quadratic()).run(max_steps=5)
    assert with_it.history == without.history and with_it.status == without.status == "budget"


def test_every_forwards_step_hooks_on_multiples_only():
    events = []
    sl.Trainer(quadratic(), callbacks=[Recorder(events).every(3)]).run(max_steps=7)
    assert [e[1:] for e in events] == [
        ("run_begin", 0),
        ("step_begin", 3),
        ("step_end", 3),
        ("step_begin", 6),
        ("step_end", 6),
        ("run_end", "budget"),
    ]


def test_every_refuses_non_callbacks():
    with pytest.raises(TypeError, match="Every: callback must be a Callback, got int"):
        sl.Every(3, 2)


def test_callback_list_dispatches_only_to_implementers():
    events = []

    class OnlyEnd(sl.Callback):
        def on_run_end(self, trainer, result):
            events.append("end")

    callbacks = sl.CallbackList([OnlyEnd(), Recorder(events)])
    assert len(callbacks) == 2
    callbacks.on_step_end(None, sl.StepRecord(step=1, loss=0.0))
    assert events == [("cb", "step_end", 1)]


def test_release_runs_after_every_step_and_on_error():
    calls = []

    class Holds(sl.StepStrategy):
        def step(self):
            calls.append("step")
            if calls.count("step") == 3:
                raise ValueError("third")
            return sl.StepOutput(loss=1.0)

        def release(self):
            calls.append("release")

    class Looks(sl.Callback):
        def on_step_end(self, trainer, record):
            calls.append("callback")

    with pytest.raises(ValueError, match="third"):
        sl.Trainer(Holds(), callbacks=[Looks()]).run(max_steps=5)
    assert calls == [
        "step",
        "callback",
        "release",
        "step",
        "callback",
        "release",
        "step",
        "release",
        "release",
    ]
