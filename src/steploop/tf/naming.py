"""Names of variables as steploop reports them.

Keras variables are named by their ``path`` (``"mlp/dense/kernel"``), plain ``tf.Variable`` by
their name without the ``":0"`` suffix; the names of one strategy are made unique by appending
``_1``, ``_2``, ... to repeats, in order (``steploop.outputs.unique``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from steploop.outputs import unique


def variable_name(variable: Any) -> str:
    """The reported name of one variable.

    >>> import tensorflow as tf
    >>> variable_name(tf.Variable(0.0, name="x"))
    'x'
    """
    path = getattr(variable, "path", None)
    if isinstance(path, str) and path:
        return path
    name = str(getattr(variable, "name", "") or "variable")
    return name[:-2] if name.endswith(":0") else name


def unique_names(variables: Iterable[Any]) -> tuple[str, ...]:
    """Reported names of ``variables``, made unique in order.

    >>> import tensorflow as tf
    >>> unique_names([tf.Variable(0.0), tf.Variable(1.0), tf.Variable(2.0, name="x")])
    ('Variable', 'Variable_1', 'x')
    """
    return unique(map(variable_name, variables))
