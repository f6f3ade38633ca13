"""Argument checks shared by every public constructor.

Each check raises a ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value)
whose message names the argument, what was expected and what was received, and returns the value
normalised (``int`` for counts, ``float`` for tolerances) so callers can store it directly.
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
from typing import Any


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def count(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, checking it is an integer of at least ``minimum``.

    >>> count("every", 3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def number(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float:
    """Return ``value`` as a finite float, optionally checking its sign.

    >>> number("tol", 1e-6, positive=True)
    1e-06
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {result}")
    if positive and result <= 0:
        raise ValueError(f"{name} must be > 0, got {result}")
    if nonnegative and result < 0:
        raise ValueError(f"{name} must be >= 0, got {result}")
    return result


def callable_(name: str, value: Any, expected: str) -> Any:
    """Check that ``value`` is callable; ``expected`` says what it should be.

    >>> callable_("loss", len, "a function") is len
    True
    """
    if not callable(value):
        hint = ""
        if hasattr(value, "shape") or hasattr(value, "dtype"):
            hint = " (a tensor is a value, not a function: wrap it, e.g. lambda: (x - 4.0) ** 2)"
        raise TypeError(f"{name} must be {expected}, got {_describe_short(value)}{hint}")
    return value


def _describe_short(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def accepts(label: str, function: Any, arguments: int, how: str) -> None:
    """Raise ``TypeError`` unless ``function`` can be called with ``arguments`` positionals.

    ``label`` names the function in the message and ``how`` says how it will be called.

    >>> accepts("loss", lambda: 0.0, 1, "loss(batch)")
    Traceback (most recent call last):
    ...
    TypeError: loss() cannot be called as loss(batch)
    """
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature: trust them
        return
    try:
        signature.bind(*([None] * arguments))
    except TypeError:
        raise TypeError(f"{label}{signature} cannot be called as {how}") from None


def flag(name: str, value: Any) -> bool:
    """Return ``value``, checking it is a bool.

    >>> flag("variables", True)
    True
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {_describe(value)}")
    return value


def text_file(name: str, value: Any) -> Any:
    """Return ``value``, checking it is ``None`` or has a ``write`` method (an open text file)."""
    if value is not None and not callable(getattr(value, "write", None)):
        raise TypeError(
            f"{name} must be an open text file (with write) or None, got {_describe(value)}"
        )
    return value


def path(name: str, value: Any) -> str:
    """Return ``value`` as a non-empty path string (a str or an ``os.PathLike``).

    >>> path("CSVLogger path", "run.csv")
    'run.csv'
    """
    try:
        result = os.fspath(value)
    except TypeError:
        raise TypeError(f"{name} must be a str or os.PathLike, got {_describe(value)}") from None
    if not result:
        raise ValueError(f"{name} must not be empty")
    return str(result)
