"""The error relay: a check's error raised while tracing reaches the caller as is, once."""

import pytest

from steploop.relay import ErrorRelay


def wrapping(function):
    """A stand-in for a framework's tracer, which wraps what the traced function raised."""

    def traced():
        try:
            function()
        except Exception as error:
            raise RuntimeError("deep in the framework") from error

    return traced


def test_a_checked_error_is_raised_as_is_and_only_once():
    relay = ErrorRelay()

    def check():
        with relay.checking():
            raise TypeError("loss must return a tensor")

    with pytest.raises(TypeError, match="loss must return a tensor"):
        relay.call(wrapping(check))
    with pytest.raises(RuntimeError, match="deep in the framework"):  # nothing remembered now
        relay.call(wrapping(lambda: 1 / 0))


def test_fail_remembers_an_error_raised_by_hand_and_other_errors_pass():
    relay = ErrorRelay()

    def resolve():
        raise relay.fail(ValueError("no trainable variable"))

    with pytest.raises(ValueError, match="no trainable variable"):
        relay.call(wrapping(resolve))
    assert relay.call(lambda x: x + 1, 1) == 2
    with pytest.raises(ZeroDivisionError):
        relay.call(lambda: 1 / 0)
