"""Array namespaces: how a stopping criterion states its test once for every backend.

A criterion with an array form writes ``test(ops, state, q)`` using only Python operators
(``<``, ``-``, ``abs``) and the few functions below, on ``q.step``, ``q.loss`` (float64),
``q.values`` and ``q.gradients``. The Trainer evaluates it with ``HOST`` (plain Python floats and
NumPy) step by step; a framework evaluates the very same function inside a compiled multi-step
loop with its own namespace (``steploop.tf.ops.TF_OPS``), so both stop at the same step.

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


class HostOps:
    """The Python/NumPy namespace: exact float64 arithmetic on scalars, NumPy on arrays."""

    name = "host"

    @staticmethod
    def any_(a: Any, b: Any) -> bool:
        return bool(a) or bool(b)

    @staticmethod
    def all_(a: Any, b: Any) -> bool:
        return bool(a) and bool(b)

    @staticmethod
    def not_(a: Any) -> bool:
        return not a

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return a if condition else b

    @staticmethod
    def isfinite(a: Any) -> bool:
        return math.isfinite(a)

    @staticmethod
    def isnan(a: Any) -> bool:
        return math.isnan(a)

    @staticmethod
    def sqrt(a: Any) -> float:
        return math.sqrt(a)

    @staticmethod
    def number(a: Any) -> float:
        return float(a)

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
