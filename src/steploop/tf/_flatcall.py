"""Calling a compiled step through TensorFlow's private ``ConcreteFunction._call_flat``.

The private TensorFlow APIs steploop uses, on the hot path: ``ConcreteCalls.invoke`` calls a
``tf.function``'s concrete function for its arguments' signature with the flat list of input
tensors, skipping the per-call dispatch and argument binding (about 50 µs a call on 2 cores); the
same graph as ``function(*arguments)``. Without ``_call_flat`` the structured call is taken, for
good (``FLAT_CALLS``); ``tests/tf/test_fused.py`` checks that both give the same steps. When no
gradient tape could record the call (what ``_call_flat`` itself checks before it takes its own
short cut), the function's ``_inference_function.call_flat`` runs it and ``packer`` rebuilds the
outputs (tensors in tuples, lists and dicts) from the flat list in TensorFlow's order (a dict's
values by sorted key): ~8 µs a call less than TensorFlow's output packing by trace types.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

try:  # private: whether a gradient tape is active (``_call_flat`` asks the same)
    from tensorflow.python.eager.record import could_possibly_record
except ImportError:  # pragma: no cover - another TensorFlow layout: always the checked call

    def could_possibly_record() -> bool:
        return True

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


def packer(structure: Any, count: int) -> Callable[[Sequence[Any]], Any] | None:
    """A function that rebuilds ``structure`` (a concrete function's structured outputs: tensors
    in tuples, lists and dicts, and ``None``) from its ``count`` flat outputs, in TensorFlow's
    order; ``None`` when the structure holds anything else or the count differs.

    >>> pack = packer((tf.constant(1.0), {"b": tf.constant(2.0), "a": None}), 2)
    >>> pack(["x", "y"])
    ('x', {'b': 'y', 'a': None})
    """
    positions = itertools.count()

    def plan(node: Any) -> Callable[[Sequence[Any]], Any] | None:
        if isinstance(node, tf.Tensor):
            if node.dtype in (tf.resource, tf.variant):
                return None
            return operator.itemgetter(next(positions))
        if node is None:
            return lambda flat: None
        if type(node) in (tuple, list):
            parts = [plan(part) for part in node]
            if any(part is None for part in parts):
                return None
            kind = type(node)
            return lambda flat: kind([part(flat) for part in parts])  # type: ignore[misc]
        if type(node) is dict and all(type(key) is str for key in node):
            by_key = {key: plan(node[key]) for key in sorted(node)}  # the flat order
            if any(part is None for part in by_key.values()):
                return None
            order = [(key, by_key[key]) for key in node]  # the order of the keys as returned
            return lambda flat: {key: part(flat) for key, part in order}  # type: ignore[misc]
        return None

    pack = plan(structure)
    return pack if pack is not None and next(positions) == count else None


def _fast_call(concrete: Any) -> tuple[Callable[..., Any], Callable[[Any], Any]] | None:
    """``(call_flat, pack)`` for ``concrete``, or ``None`` when it cannot be called so."""
    try:
        call = concrete._inference_function.call_flat
        pack = packer(concrete.structured_outputs, len(concrete.outputs))
    except AttributeError:
        return None
    return None if pack is None else (call, pack)


def _call_flat(
    concrete: Any, tensors: list[tf.Tensor], arguments: tuple[Any, ...], fast: Any = None
) -> Any:
    global FLAT_CALLS
    try:
        flat_call = concrete._call_flat
        captured = concrete.captured_inputs
    except AttributeError:
        FLAT_CALLS = False
        return concrete(*arguments)
    if fast is not None and not could_possibly_record() and tf.executing_eagerly():
        call, pack = fast
        return pack(call(*tensors, *captured))
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
        cached = self._concretes.get(cache_key)
        if cached is None:
            concrete = self._traced(function.get_concrete_function, *arguments)
            cached = self._concretes[cache_key] = (concrete, _fast_call(concrete))
        concrete, fast = cached
        if FLAT_CALLS and not (tensors and tensors[0] is _NOT_FLAT):
            return _call_flat(concrete, tensors, arguments, fast)
        return self._traced(concrete, *arguments)
