"""Argument checks: long values are cut in messages, and bool and path arguments name what they
got."""

import pytest

import steploop as sl


def message(call, error):
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


PREFIX = "LearningRateScheduler fn must be a function of the step, got "


def test_a_value_of_up_to_60_characters_is_shown_whole():
    value = "a" * 58  # its repr: 60 characters
    assert message(lambda: sl.LearningRateScheduler(value), TypeError) == (
        f"{PREFIX}'{value}' (str)"
    )


def test_a_longer_value_is_cut_to_57_characters_and_an_ellipsis():
    value = "a" * 59  # its repr: 61 characters
    assert message(lambda: sl.LearningRateScheduler(value), TypeError) == (
        f"{PREFIX}'{'a' * 56}... (str)"
    )


def test_a_flag_must_be_a_bool():
    assert message(lambda: sl.PrintLogger(variables=1), TypeError) == (
        "PrintLogger variables must be a bool, got 1 (int)"
    )


def test_a_path_must_be_a_non_empty_path():
    assert message(lambda: sl.CSVLogger(5), TypeError) == (
        "CSVLogger path must be a str or os.PathLike, got 5 (int)"
    )
    assert message(lambda: sl.CSVLogger(""), ValueError) == "CSVLogger path must not be empty"


HINT = " (a tensor is a value, not a function: wrap it, e.g. lambda: (x - 4.0) ** 2)"


class OnlyShape:
    """A non-callable value with a shape and no dtype."""

    shape = (2,)

    def __repr__(self):
        return "OnlyShape()"


class OnlyDtype:
    """A non-callable value with a dtype and no shape."""

    dtype = "float32"

    def __repr__(self):
        return "OnlyDtype()"


def test_a_value_with_a_shape_alone_gets_the_tensor_hint():
    """Something with a shape but no dtype, passed as a function, is told to wrap it."""
    assert message(lambda: sl.LearningRateScheduler(OnlyShape()), TypeError) == (
        f"{PREFIX}OnlyShape() (OnlyShape){HINT}"
    )


def test_a_value_with_a_dtype_alone_gets_the_tensor_hint():
    """Something with a dtype but no shape, passed as a function, is told to wrap it."""
    assert message(lambda: sl.LearningRateScheduler(OnlyDtype()), TypeError) == (
        f"{PREFIX}OnlyDtype() (OnlyDtype){HINT}"
    )


def test_a_value_without_shape_or_dtype_gets_no_hint():
    """A plain non-callable value gets no tensor hint."""
    assert message(lambda: sl.LearningRateScheduler(3), TypeError) == f"{PREFIX}3 (int)"
