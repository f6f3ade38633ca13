"""Argument checks of the framework strategies, written once for every framework.

A framework's strategy checks its arguments at construction and each batch as it arrives; the
messages are the same whatever the framework, which supplies only its own tests (is this a
variable of mine? convert this leaf to my array type). Each check raises a ``TypeError`` (wrong
kind of value) or ``ValueError`` (right kind, bad value) whose message starts with the strategy
(``owner``), names the argument, what was expected and what was received, and returns the value
normalised.

>>> flags("Demo", compile=True, jit_compile=False)
>>> var_list("Demo", [], lambda value: False, "a variable", repr)
Traceback (most recent call last):
ValueError: Demo: var_list is empty; give the variables to optimise
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def flags(owner: str, **values: Any) -> None:
    """Raise a ``TypeError`` naming the first of ``values`` that is not a bool.

    >>> flags("Demo", compile="yes")
    Traceback (most recent call last):
    TypeError: Demo: compile must be a bool, got str
    """
    for name, value in values.items():
        if not isinstance(value, bool):
            raise TypeError(f"{owner}: {name} must be a bool, got {type(value).__name__}")


def compiling(owner: str, compile: Any, jit_compile: Any, **others: Any) -> None:
    """Check a strategy's ``compile`` and ``jit_compile`` flags (and the bool flags ``others``):
    bools (``jit_compile`` may also be ``"auto"``), and XLA only on a compiled step.

    >>> compiling("Demo", compile=False, jit_compile=True)
    Traceback (most recent call last):
    ValueError: Demo: jit_compile=True compiles the step with XLA, which needs compile=True
    >>> compiling("Demo", compile=True, jit_compile="always")
    Traceback (most recent call last):
    TypeError: Demo: jit_compile must be a bool or "auto", got 'always'
    """
    flags(owner, **others, compile=compile)
    if not (
        isinstance(jit_compile, bool) or (isinstance(jit_compile, str) and jit_compile == "auto")
    ):
        got = repr(jit_compile) if isinstance(jit_compile, str) else type(jit_compile).__name__
        raise TypeError(f'{owner}: jit_compile must be a bool or "auto", got {got}')
    if jit_compile is True and not compile:
        raise ValueError(
            f"{owner}: jit_compile=True compiles the step with XLA, which needs compile=True"
        )


def rollback(owner: str, policy: str, optimizer: Any, kind: str) -> None:
    """Refuse ``on_nonfinite='rollback'`` with an optimizer whose state is not a list
    ``variables`` (``kind`` names an optimizer that has one), which a rollback saves."""
    if policy == "rollback" and not isinstance(getattr(optimizer, "variables", None), list | tuple):
        raise ValueError(
            f"{owner}: on_nonfinite='rollback' needs an optimizer whose state is a list "
            f"`variables` ({kind}); {type(optimizer).__name__} has none"
        )


def var_list(
    owner: str,
    value: Any,
    is_variable: Callable[[Any], bool],
    kind: str,
    name_of: Callable[[Any], str],
) -> tuple[Any, ...] | None:
    """A ``var_list`` argument as a tuple: ``None``, or a non-empty sequence of trainable
    variables (``is_variable``, described as ``kind``; ``name_of`` names one in the hint).

    >>> var_list("Demo", 3.0, lambda v: isinstance(v, list), "a list", repr)
    Traceback (most recent call last):
    TypeError: Demo: var_list must be a list of variables, got float
    """
    if value is None:
        return None
    if is_variable(value):
        raise TypeError(
            f"{owner}: var_list must be a list of variables, got one variable; "
            f"pass [{name_of(value)}]"
        )
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (Sequence, set)):
        try:
            value = list(value)
        except TypeError:
            raise TypeError(
                f"{owner}: var_list must be a list of variables, got {type(value).__name__}"
            ) from None
    variables = tuple(value)
    if not variables:
        raise ValueError(f"{owner}: var_list is empty; give the variables to optimise")
    for index, variable in enumerate(variables):
        if not is_variable(variable):
            raise TypeError(
                f"{owner}: var_list[{index}] must be {kind}, got {type(variable).__name__}"
            )
        if not getattr(variable, "trainable", True):
            raise ValueError(
                f"{owner}: var_list[{index}] ({getattr(variable, 'name', '?')}) is not trainable"
            )
    return variables


def optimizer(
    owner: str,
    value: Any,
    method: str,
    example: str,
    shown: Callable[[type], str] = lambda kind: kind.__name__,
    is_variable: Callable[[Any], bool] = lambda value: False,
) -> Any:
    """An optimizer argument: an instance (not its class) with the update ``method``.
    ``example`` is an instance as the user would write it; ``shown`` names a class as the user
    would import it; a list of variables (``is_variable``) is asked about (is it var_list?).

    >>> optimizer("Demo", "sgd", "update", "SGD(0.1)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: Demo: optimizer must have an update method (...), got the string 'sgd'
    """
    if isinstance(value, type):
        name = shown(value)
        raise TypeError(
            f"{owner}: optimizer must be an optimizer instance, got the class {name}; pass an "
            f"instance, e.g. {name}(learning_rate=0.01)"
        )
    if not callable(getattr(value, method, None)):
        if isinstance(value, str):
            got = f"the string {value!r}"
        elif isinstance(value, (list, tuple)) and any(map(is_variable, value)):
            got = f"a {type(value).__name__} of variables (is it var_list?)"
        else:
            got = type(value).__name__
        raise TypeError(
            f"{owner}: optimizer must have an {method} method (an optimizer instance such as "
            f"{example}), got {got}"
        )
    return value


def batch_part(owner: str, part: Any, convert: Callable[[Any], Any]) -> Any:
    """One part (a leaf) of a batch from data, converted by the framework (``convert``), or a
    ``TypeError`` naming what it is: batches hold arrays or numbers in tuples, lists, dicts.

    >>> batch_part("Demo", "text", float)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: Demo: a batch from data has a part 'text'; batches hold tensors, arrays or ...
    """
    if part is None or isinstance(part, (str, bytes)):
        raise TypeError(
            f"{owner}: a batch from data has a part {part!r}; batches hold tensors, "
            "arrays or numbers (in tuples, lists or dicts)"
        )
    try:
        return convert(part)
    except (TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise TypeError(
            f"{owner}: a batch from data has a part that is not a tensor or a rectangular "
            f"numeric array ({type(part).__name__}: {first})"
        ) from None


def returned_number(where: str, value: Any, what: str, array: Any, dtype: str | None) -> Any:
    """Check what a loss returned for ``what`` (``where`` names the loss): ``array`` is it as the
    framework's array (``None`` when not numeric) and ``dtype`` the name of its dtype when it is
    not floating point (``None`` when it is). Returns ``array``.

    >>> returned_number("Demo: loss", None, "loss", None, None)
    Traceback (most recent call last):
    TypeError: Demo: loss must return a numeric tensor for 'loss', got None
    """
    if array is None:
        shown = repr(value) if value is None or isinstance(value, (str, bytes)) else None
        got = shown or type(value).__name__
        raise TypeError(f"{where} must return a numeric tensor for {what!r}, got {got}")
    if dtype is not None:
        raise TypeError(f"{where} must return a floating-point tensor for {what!r}, got {dtype}")
    return array


def scalar_loss(where: str, shape: Sequence[int | None] | None, reduce: str) -> None:
    """Raise a ``ValueError`` unless the loss's ``shape`` (``None``: unknown) is a scalar's;
    ``reduce`` names the framework's mean.

    >>> scalar_loss("Demo: loss", (2,), "np.mean")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: Demo: loss must return a scalar for 'loss', got a tensor of shape (2,); ...
    """
    if shape is not None and len(shape) != 0:
        raise ValueError(
            f"{where} must return a scalar for 'loss', got a tensor of shape {tuple(shape)}; "
            f"reduce it, e.g. with {reduce}"
        )
