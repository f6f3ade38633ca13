"""``ErrorRelay``: a clear error raised while a framework traces a step reaches the caller as is.

A compiled step is traced by the framework (``tf.function``, ``jax.jit``), which wraps an error
raised inside the traced function in its own traceback. A strategy checks what the user's loss
returns while tracing; so that the user sees that ``TypeError``/``ValueError`` and not the
framework's wrapping, the check remembers it (``checking``, or ``fail`` for an error raised by
hand) and the call that started the trace (``call``) re-raises the remembered error instead of
what the framework raised. Invariant: an error is re-raised at most once, and only by the
``call`` during which it was remembered or the next one.

>>> relay = ErrorRelay()
>>> def traced():
...     with relay.checking():
...         raise ValueError("loss must be a scalar")
>>> def framework():
...     try:
...         traced()
...     except Exception as error:
...         raise RuntimeError("wrapped") from error
>>> relay.call(framework)
Traceback (most recent call last):
ValueError: loss must be a scalar
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class ErrorRelay:
    """Remembers the error a check raised while tracing and re-raises it from ``call``."""

    def __init__(self) -> None:
        self._pending: Exception | None = None

    def call(self, function: Callable[..., Any], *arguments: Any) -> Any:
        """``function(*arguments)``; an error remembered meanwhile is raised as is instead."""
        try:
            return function(*arguments)
        except Exception:
            error, self._pending = self._pending, None
            if error is not None:
                raise error from None
            raise

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Checks inside: a ``TypeError``/``ValueError`` they raise is remembered for ``call``."""
        try:
            yield
        except (TypeError, ValueError) as error:
            self._pending = error
            raise

    def fail(self, error: Exception) -> Exception:
        """Remember ``error`` for ``call``; return it to be raised here."""
        self._pending = error
        return error
