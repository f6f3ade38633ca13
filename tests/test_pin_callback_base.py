"""Callback basics: which classes may stop, keyed()'s message, and a CallbackList used as one
callback of a Trainer (it hands every hook its arguments)."""

import pytest

import steploop as sl
from tests.helpers import quadratic


class Plain(sl.Callback):
    def on_run_end(self, trainer, result):
        pass


class Stops(sl.Callback):
    def on_step_end(self, trainer, record):
        trainer.stop("enough")


class SaysItNeverStops(sl.Callback):
    may_stop = False

    def on_step_end(self, trainer, record):
        trainer.stop("enough")


class StopsInALambda(sl.Callback):
    def on_step_end(self, trainer, record):
        (lambda: trainer.stop("enough"))()


class StopsInAStaticMethod(sl.Callback):
    @staticmethod
    def finish(trainer):
        trainer.stop("enough")


class StopsInAProperty(sl.Callback):
    @property
    def finisher(self):
        return lambda trainer: trainer.stop("enough")


class StopsInAClassMethod(sl.Callback):
    @classmethod
    def finish(cls, trainer):
        trainer.stop("enough")


def test_a_class_may_stop_when_its_own_code_calls_stop():
    assert Plain.may_stop is False
    assert Stops.may_stop is True
    assert SaysItNeverStops.may_stop is False  # set explicitly: kept
    assert StopsInALambda.may_stop is True
    assert StopsInAStaticMethod.may_stop is True
    assert StopsInAClassMethod.may_stop is True
    assert StopsInAProperty.may_stop is True


@pytest.mark.parametrize("key", [5, "", None])
def test_keyed_needs_a_non_empty_str(key):
    with pytest.raises(TypeError) as caught:
        sl.MaxSteps(3).keyed(key)
    assert str(caught.value) == f"MaxSteps.keyed: key must be a non-empty str, got {key!r}"


class Recorder(sl.Callback):
    may_stop = False

    def __init__(self):
        self.calls = []

    def on_step_begin(self, trainer, step):
        self.calls.append(("step_begin", trainer, step))

    def on_error(self, trainer, error):
        self.calls.append(("error", trainer, error))

    def on_run_end(self, trainer, result):
        self.calls.append(("run_end", trainer, result))


def test_a_callback_list_hands_each_hook_its_arguments():
    recorder = Recorder()
    trainer = sl.Trainer(quadratic(), [sl.CallbackList([recorder])], steps_per_call=1)
    result = trainer.run(max_steps=2)
    assert recorder.calls == [
        ("step_begin", trainer, 1),
        ("step_begin", trainer, 2),
        ("run_end", trainer, result),
    ]


class Boom(sl.Callback):
    may_stop = False

    def on_step_end(self, trainer, record):
        if record.step == 2:
            raise RuntimeError("boom at 2")


def test_a_callback_list_hands_on_error_the_error():
    recorder = Recorder()
    trainer = sl.Trainer(quadratic(), [sl.CallbackList([recorder]), Boom()], steps_per_call=1)
    with pytest.raises(RuntimeError, match="boom at 2") as caught:
        trainer.run(max_steps=5)
    kinds = [call[0] for call in recorder.calls]
    assert kinds == ["step_begin", "step_begin", "error", "run_end"]
    assert recorder.calls[2] == ("error", trainer, caught.value)
    assert recorder.calls[3][1] is trainer


def test_a_callback_list_reads_back_its_callbacks():
    assert repr(sl.CallbackList([sl.MaxSteps(3), sl.Callback()])) == (
        "CallbackList([MaxSteps(3), Callback])"
    )
