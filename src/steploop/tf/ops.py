"""``TF_OPS``: the TensorFlow array namespace that stopping criteria are evaluated with in graphs.

It mirrors ``steploop.ops.HOST`` function for function (see there for the contract); numbers are
float64, so a criterion decides in a compiled loop exactly as it does on the host.

>>> import tensorflow as tf
>>> bool(TF_OPS.any_(tf.constant(1.0, tf.float64) < 2.0, False))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf


def _f64(value: Any) -> tf.Tensor:
    return tf.cast(value, tf.float64)


class TFOps:
    """TensorFlow versions of the namespace's functions."""

    name = "tensorflow"
    any_ = staticmethod(tf.logical_or)
    all_ = staticmethod(tf.logical_and)
    not_ = staticmethod(tf.logical_not)
    number = staticmethod(_f64)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> tf.Tensor:
        return tf.where(condition, _f64(a), _f64(b))

    @staticmethod
    def isfinite(a: Any) -> tf.Tensor:
        return tf.math.is_finite(_f64(a))

    @staticmethod
    def isnan(a: Any) -> tf.Tensor:
        return tf.math.is_nan(_f64(a))

    @staticmethod
    def sqrt(a: Any) -> tf.Tensor:
        return tf.sqrt(_f64(a))

    @staticmethod
    def global_norm(gradients: Mapping[str, Any]) -> tf.Tensor:
        total = tf.constant(0.0, tf.float64)
        for gradient in gradients.values():
            total = total + tf.reduce_sum(tf.square(_f64(gradient)))
        return tf.sqrt(total)

    def __repr__(self) -> str:
        return "TF_OPS"


#: The namespace TensorFlow strategies evaluate criteria with inside fused calls.
TF_OPS = TFOps()
