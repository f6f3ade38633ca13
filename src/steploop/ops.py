"""Array namespaces: how a stopping criterion states its test once for every backend.

A criterion with an array form writes ``test(ops, state, q)`` using only Python operators
(``<``, ``-``, ``abs``) and the few functions below, on ``q.step``, ``q.loss`` (float64),
``q.values`` and ``q.gradients``. The Trainer evaluates it with ``HOST`` (plain Python floats and
NumPy) step by step; a framework evaluates the very same function inside a compiled multi-step
loop with its own namespace, so both stop at the same step. A framework builds that namespace
from its primitives with ``ArrayOps`` (``steploop.tf.ops.TF_OPS``, ``steploop.jax.ops.JAX_OPS``).

Numbers are float64 on every backend: a float32 loss is widened before any comparison, so a
tolerance such as ``1e-12`` is never rounded to float32 in one backend and not the other.

The namespace's functions:

* ``any_(a, b)``, ``all_(a, b)``, ``not_(a)``: logical or, and, not of conditions;
* ``where(condition, a, b)``: ``a`` where ``condition`` holds, else ``b``;
* ``isfinite(a)``, ``isnan(a)``, ``sqrt(a)``;
* ``global_norm(gradients)``: the L2 norm of all arrays of a mapping, summed in float64 in the
  mapping's order;
* ``number(a)``: ``a`` as a float64 scalar (a reported value, say).

>>> HOST.where(HOST.any_(1.0 < 2.0, False), 3.0, 4.0)
3.0
>>> HOST.global_norm({"a": np.array([3.0]), "b": np.array(4.0)})
5.0
>>> NUMPY = ArrayOps("NUMPY", any_=np.logical_or, all_=np.logical_and, not_=np.logical_not,
...     number=np.float64, where=np.where, isfinite=np.isfinite, isnan=np.isnan, sqrt=np.sqrt,
...     sum_=np.sum, square=np.square)
>>> float(NUMPY.global_norm({"a": np.array([3.0]), "b": np.array(4.0)}))
5.0
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


class HostOps:
    """The Python/NumPy namespace: exact float64 arithmetic on scalars, NumPy on arrays."""

    name = "host"

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return a if condition else b

    # C functions, called at every step of a plain run: no Python frame each. The conditions are
    # bools (comparisons, or these functions' results), as the frameworks' logical ops require.
    any_ = staticmethod(operator.or_)
    all_ = staticmethod(operator.and_)
    not_ = staticmethod(operator.not_)
    isfinite = staticmethod(math.isfinite)
    isnan = staticmethod(math.isnan)
    sqrt = staticmethod(math.sqrt)
    number = staticmethod(float)

    @staticmethod
    def global_norm(gradients: Mapping[str, Any]) -> float:
        total = 0.0
        for gradient in gradients.values():
            total = total + float(np.sum(np.square(np.asarray(gradient, dtype=np.float64))))
        return math.sqrt(total)

    def __repr__(self) -> str:
        return "HOST"


#: The namespace the Trainer uses for step-by-step checks.
HOST = HostOps()


class ArrayOps:
    """The namespace for an array framework, from its primitives (keyword arguments): the
    logical ``any_``, ``all_``, ``not_``; ``number`` (a value as a float64 array); ``where``,
    ``isfinite``, ``isnan``, ``sqrt``, ``square`` on arrays and ``sum_`` of all of an array's
    elements. Every number is widened with ``number`` before it is compared or computed with,
    so the framework decides in float64 as ``HOST`` does."""

    def __init__(self, label: str, **primitives: Callable[..., Any]) -> None:
        expected = {"any_", "all_", "not_", "number", "where", "isfinite", "isnan", "sqrt"}
        expected |= {"sum_", "square"}
        if set(primitives) != expected:
            raise TypeError(f"ArrayOps({label!r}) needs exactly {sorted(expected)}")
        self._label, self._p = label, primitives
        self.any_, self.all_, self.not_ = primitives["any_"], primitives["all_"], primitives["not_"]
        self.number = primitives["number"]

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self._p["where"](condition, self.number(a), self.number(b))

    def isfinite(self, a: Any) -> Any:
        return self._p["isfinite"](self.number(a))

    def isnan(self, a: Any) -> Any:
        return self._p["isnan"](self.number(a))

    def sqrt(self, a: Any) -> Any:
        return self._p["sqrt"](self.number(a))

    def global_norm(self, gradients: Mapping[str, Any]) -> Any:
        total = self.number(0.0)
        for gradient in gradients.values():
            total = total + self._p["sum_"](self._p["square"](self.number(gradient)))
        return self._p["sqrt"](total)

    def __repr__(self) -> str:
        return self._label
