"""``TF_OPS``: the TensorFlow array namespace stopping criteria are evaluated with in graphs.

It mirrors ``steploop.ops.HOST`` (see there for the contract), built by ``steploop.ops.ArrayOps``
from TensorFlow's primitives; numbers are float64, so a criterion decides in a compiled loop
exactly as it does on the host.

>>> import tensorflow as tf
>>> bool(TF_OPS.any_(tf.constant(1.0, tf.float64) < 2.0, False))
True
"""

import tensorflow as tf

from steploop.ops import ArrayOps

#: The namespace TensorFlow strategies evaluate criteria with inside fused calls.
TF_OPS = ArrayOps(
    "TF_OPS",
    any_=tf.logical_or,
    all_=tf.logical_and,
    not_=tf.logical_not,
    number=lambda value: tf.cast(value, tf.float64),
    where=tf.where,
    isfinite=tf.math.is_finite,
    isnan=tf.math.is_nan,
    sqrt=tf.sqrt,
    sum_=tf.reduce_sum,
    square=tf.square,
)
