"""``NamedVariables``: the variables of a strategy whose variables are mutable objects, by name.

Written once for every framework whose variables are objects updated in place (TensorFlow's
``tf.Variable``, a PyTorch parameter): the strategy's variables, their reported names (made
unique: ``steploop.outputs.unique``) and their order sorted by name, which is the order an
optimizer is given them (``steploop.variable_record.canonical_order``); reading them to NumPy
(``variables``), and the host copies ``get_weights``/``set_weights`` (``WeightsCopyable``).

The framework supplies ``_name_of(variable)``, ``_to_numpy(variable)`` and
``_assign(variable, value)``. The variables may be known only at the first step (those the loss
read): ``_adopt(found)`` takes them then, and again whenever another set is found.

>>> import numpy as np
>>> class Box:
...     def __init__(self, name, value):
...         self.name, self.value = name, np.array(value)
>>> class Boxes(NamedVariables):
...     _name_of = staticmethod(lambda box: box.name)
...     _to_numpy = staticmethod(lambda box: box.value)
...     _assign = staticmethod(lambda box, value: setattr(box, "value", np.array(value)))
>>> boxes = Boxes()
>>> variables = boxes._adopt((Box("w", 1.0), Box("b", 2.0), Box("w", 3.0)))
>>> boxes._names, boxes._order
(('w', 'b', 'w_1'), (1, 0, 2))
>>> boxes.set_weights({"w": 5.0, "b": 6.0, "w_1": 7.0})
>>> {name: float(value) for name, value in boxes.get_weights().items()}
{'w': 5.0, 'b': 6.0, 'w_1': 7.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steploop import variable_record
from steploop.outputs import unique


def check_weights(owner: str, weights: Any, names: Sequence[str]) -> None:
    """Refuse ``weights`` that are not a mapping of exactly ``names`` (what ``get_weights``
    returns) with a ``ValueError`` naming both."""
    if not isinstance(weights, Mapping) or set(weights) != set(names):
        got = sorted(weights) if isinstance(weights, Mapping) else type(weights).__name__
        raise ValueError(
            f"{owner}.set_weights: weights must map {sorted(names)} to arrays (what get_weights "
            f"returns), got {got}"
        )


class NamedVariables:
    """The variables of a strategy, their names and their order by name (a mixin)."""

    _variables: tuple[Any, ...] | None = None
    _names: tuple[str, ...] | None = None
    _order: tuple[int, ...] = ()  # the variables' positions sorted by name

    @staticmethod
    def _name_of(variable: Any) -> str:
        raise NotImplementedError

    @staticmethod
    def _to_numpy(variable: Any) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _assign(variable: Any, value: Any) -> None:
        raise NotImplementedError

    def _unique_names(self, variables: Sequence[Any]) -> tuple[str, ...]:
        return unique(map(self._name_of, variables))

    def _set_variables(self, variables: tuple[Any, ...]) -> None:
        self._variables, self._names = variables, self._unique_names(variables)
        self._order = variable_record.canonical_order(self._names)

    def _adopt(self, found: tuple[Any, ...]) -> tuple[Any, ...]:
        """The variables ``found`` (those a step's loss read), taken as the strategy's own unless
        they are the very same objects already."""
        known = self._variables
        if known is None or len(found) != len(known) or any(map(_other, found, known)):
            self._set_variables(found)
        assert self._variables is not None
        return self._variables

    def _canonical(self, variables: Sequence[Any]) -> tuple[int, ...]:
        """Positions of ``variables`` sorted by name (cached for the strategy's variables)."""
        if variables is self._variables:
            return self._order
        return variable_record.canonical_order(self._unique_names(variables))

    def variables(self) -> Mapping[str, np.ndarray]:
        """The variables' values by name, as NumPy arrays (empty while they are not known)."""
        if self._variables is None or self._names is None:
            return {}
        return dict(zip(self._names, map(self._to_numpy, self._variables), strict=True))

    def get_weights(self) -> dict[str, np.ndarray]:
        """A host copy of the variables by name (``WeightsCopyable``; once they are known)."""
        return {name: np.array(value, copy=True) for name, value in self.variables().items()}

    def set_weights(self, weights: Any) -> None:
        """Assign each variable its value in ``weights`` (``WeightsCopyable``), by name."""
        names = self._names or ()
        check_weights(type(self).__name__, weights, names)
        for name, variable in zip(names, self._variables or (), strict=True):
            self._assign(variable, weights[name])


def _other(a: Any, b: Any) -> bool:
    return a is not b
