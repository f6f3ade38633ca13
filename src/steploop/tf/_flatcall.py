"""Calling a compiled step through TensorFlow's private ``ConcreteFunction._call_flat``.

The one private TensorFlow API steploop uses, on the hot path: ``ConcreteCalls.invoke`` calls a
``tf.function``'s concrete function for its arguments' signature with the flat list of input
tensors, skipping the per-call dispatch and argument binding (about 50 µs a call on 2 cores); the
same graph as ``function(*arguments)``. Without ``_call_flat`` the structured call is taken, for
good (``FLAT_CALLS``); ``tests/tf/test_fused.py`` checks that both give the same steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

#: Whether concrete functions are called flat; switched off for good when unavailable.
FLAT_CALLS = True

#: Put first in the tensors list by ``signature`` when the arguments cannot be called flat.
_NOT_FLAT: Any = object()


def signature(arguments: Any, tensors: list[Any] | None) -> Any:
    """A hashable signature of arguments made of tensors (and nested tuples and dicts of them, a
    ``tf.data`` iterator, plain numbers), or ``None`` when they hold anything else.

    In the same walk, the tensors are appended to ``tensors`` in order (the flat inputs of a
    concrete function); an argument that is not a tensor or a tuple or list of them (a dict, an
    iterator, a number) clears it, and the structured call is taken instead.
    """
    parts: list[Any] = []
    for argument in arguments:
        if isinstance(argument, tf.Tensor):
            parts.append((tuple(argument.shape), argument.dtype))
            if tensors is not None:
                tensors.append(argument)
            continue
        if isinstance(argument, (tuple, list)):
            inner = signature(argument, tensors)
            if inner is None:
                return None
            parts.append((type(argument), inner))
            continue
        if tensors is not None:
            tensors.clear()
            tensors.append(_NOT_FLAT)
        if isinstance(argument, Mapping):
            inner = signature(tuple(argument.values()), None)
            if inner is None:
                return None
            parts.append((type(argument), tuple(argument), inner))
        elif isinstance(argument, tf.data.Iterator):
            parts.append(("iterator", repr(argument.element_spec)))
        elif isinstance(argument, (float, int)) and not isinstance(argument, bool):
            parts.append((type(argument), argument))
        else:
            return None
    return tuple(parts)


def _call_flat(concrete: Any, tensors: list[tf.Tensor], arguments: tuple[Any, ...]) -> Any:
    global FLAT_CALLS
    try:
        flat_call = concrete._call_flat
        captured = concrete.captured_inputs
    except AttributeError:
        FLAT_CALLS = False
        return concrete(*arguments)
    return flat_call(tensors, captured)


class ConcreteCalls:
    """A cache of concrete functions, and calls through it; ``traced`` calls a function so that
    an error raised while tracing reaches the caller as is (see ``TFStep._traced``)."""

    def __init__(self, traced: Callable[..., Any]) -> None:
        self._traced = traced
        self._concretes: dict[Any, Any] = {}

    def invoke(
        self, function: Any, arguments: tuple[Any, ...], key: Any = None, known: Any = None
    ) -> Any:
        """``function(*arguments)`` through its cached concrete function; ``known`` is the
        signature when the caller knows it (plain tensors whose shapes ``key`` fixes)."""
        tensors: list[Any] = []
        if known is None:
            known = signature(arguments, tensors)
            if known is None:
                return self._traced(function, *arguments)
        else:
            tensors = list(arguments)
        cache_key = (id(function), key, known)
        concrete = self._concretes.get(cache_key)
        if concrete is None:
            concrete = self._traced(function.get_concrete_function, *arguments)
            self._concretes[cache_key] = concrete
        if FLAT_CALLS and not (tensors and tensors[0] is _NOT_FLAT):
            return _call_flat(concrete, tensors, arguments)
        return self._traced(concrete, *arguments)
