"""Callback basics: which classes may stop, keyed()'s message, and a CallbackList used as one
callback of a Trainer (it hands every hook its arguments)."""

import inspect
import logging

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


def check_message(callback):
    with pytest.raises(TypeError) as caught:
        sl.CallbackList([callback])
    return str(caught.value)


def test_a_misnamed_hook_names_the_closest_hook_however_far():
    """A method named like no hook is refused, naming the closest hook even when it is far off."""

    class Far(sl.Callback):
        def on_x(self, trainer):
            pass

    # "on_x" shares only "on_" with every hook; ratio 2*3/(4+8) = 0.5 with "on_error", the best
    assert check_message(Far()) == (
        "callbacks[0] (Far).on_x is not a callback hook and would never be called; did you mean "
        "on_error? The hooks are on_run_begin, on_epoch_begin, on_step_begin, on_step_end, "
        "on_epoch_end, on_error, on_run_end"
    )


def test_a_hook_that_is_not_callable_is_refused():
    """A hook attribute that is no method is refused with its type."""

    class NotAMethod(sl.Callback):
        on_step_end = 5

    assert check_message(NotAMethod()) == (
        "callbacks[0] (NotAMethod).on_step_end must be a method, got int"
    )


def test_a_class_hooks_are_checked_once_not_per_object():
    """The signature of a hook defined on the class is read for its first object only."""
    reads = []

    class Hook:
        @property
        def __signature__(self):
            reads.append(1)
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
            return inspect.Signature(
                [inspect.Parameter("trainer", kind), inspect.Parameter("record", kind)]
            )

        def __call__(self, trainer, record):
            pass

    class Counted(sl.Callback):
        on_step_end = Hook()

    sl.CallbackList([Counted()])
    once = len(reads)
    sl.CallbackList([Counted(), Counted()])
    assert once > 0
    assert len(reads) == once


def test_a_hook_set_on_the_object_is_checked_after_its_class_passed():
    """A hook assigned to one object is checked even when its class's hooks were found right."""

    class Two(sl.Callback):
        def on_run_begin(self, trainer):
            pass

        def on_step_end(self, trainer, record):
            pass

    sl.CallbackList([Two()])
    bad = Two()
    bad.on_step_end = lambda trainer: None
    assert check_message(bad) == (
        "callbacks[0] (Two).on_step_end must accept (trainer, record); its signature is (trainer)"
    )


def test_a_hook_without_a_readable_signature_does_not_hide_a_later_wrong_one():
    """A hook whose signature Python cannot read is skipped; the next hooks are still checked."""

    class Unreadable(sl.Callback):
        on_run_begin = staticmethod(vars)  # a builtin without a signature

        def on_step_end(self):
            pass

    assert check_message(Unreadable()) == (
        "callbacks[0] (Unreadable).on_step_end must accept (trainer, record); its signature is ()"
    )


class WrongSignature(sl.Callback):
    may_stop = False

    def on_step_end(self, trainer):
        pass


def test_a_checked_callback_list_takes_its_callbacks_as_given():
    """``checked=True`` skips the checks: a wrong hook is not refused there."""
    wrong = WrongSignature()
    assert sl.CallbackList([wrong], checked=True).callbacks == (wrong,)
    with pytest.raises(TypeError, match="must accept"):
        sl.CallbackList([wrong])


def test_an_item_that_is_no_callback_is_named_with_its_type():
    """The Trainer refuses a callbacks item that is no Callback, saying its index and type."""
    with pytest.raises(TypeError) as caught:
        sl.Trainer(quadratic(), [sl.MaxSteps(2), 5])
    assert str(caught.value) == "callbacks[1] must be a Callback, got 5 (int)"


class FailsAtEnd(sl.Callback):
    may_stop = False

    def on_run_end(self, trainer, result):
        raise RuntimeError("at the end")


def test_a_failing_clean_up_hook_is_logged_by_name(caplog):
    """An exception in ``on_run_end`` is logged as '<callback>.<hook> raised' and re-raised."""
    trainer = sl.Trainer(quadratic(), [FailsAtEnd()], steps_per_call=1)
    with (
        caplog.at_level(logging.ERROR, logger="steploop"),
        pytest.raises(RuntimeError, match="at the end"),
    ):
        trainer.run(max_steps=1)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["FailsAtEnd.on_run_end raised"]


def test_may_stop_is_decided_as_each_class_is_made():
    """The classes of ``test_a_class_may_stop_when_its_own_code_calls_stop``, made inside the test
    (not at import): whether each may stop is decided as it is made."""

    class PlainNow(sl.Callback):
        def on_run_end(self, trainer, result):
            pass

    class StopsNow(sl.Callback):
        def on_step_end(self, trainer, record):
            trainer.stop("enough")

    class SaysItNeverStopsNow(sl.Callback):
        may_stop = False

        def on_step_end(self, trainer, record):
            trainer.stop("enough")

    class StopsInAStaticMethodNow(sl.Callback):
        @staticmethod
        def finish(trainer):
            trainer.stop("enough")

    class StopsInAPropertyNow(sl.Callback):
        @property
        def finisher(self):
            return lambda trainer: trainer.stop("enough")

    class StopsInAClassMethodNow(sl.Callback):
        @classmethod
        def finish(cls, trainer):
            trainer.stop("enough")

    class SubclassOfOneThatStops(StopsNow):
        def on_run_end(self, trainer, result):
            pass

    assert PlainNow.may_stop is False
    assert StopsNow.may_stop is True
    assert SaysItNeverStopsNow.may_stop is False
    assert StopsInAStaticMethodNow.may_stop is True
    assert StopsInAPropertyNow.may_stop is True
    assert StopsInAClassMethodNow.may_stop is True
    assert SubclassOfOneThatStops.may_stop is True  # inherited
    assert "may_stop" not in vars(PlainNow) and "may_stop" not in vars(SubclassOfOneThatStops)
