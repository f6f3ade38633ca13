"""Array data in batches: ``batches((xs, ys), batch_size)``, framework-free (NumPy only).

``batches(arrays, batch_size, shuffle=None, drop_remainder=False)`` takes one array, a tuple of
arrays or a dict of arrays, all with the same number of rows, and returns a ``Batches``: an
iterable whose every iteration is one epoch of batches, each batch of the same structure as
``arrays`` (a tuple stays a tuple, a dict a dict) holding ``batch_size`` consecutive rows.

Invariants:

* ``len(batches)`` is the number of batches per epoch: ``ceil(n / batch_size)``, or
  ``n // batch_size`` with ``drop_remainder=True`` (the last, smaller batch is then left out);
* without ``shuffle``, every epoch yields the rows in order; with ``shuffle=seed`` (an int),
  epoch ``e`` yields them in a permutation that depends only on ``(seed, e)``: the same seed
  gives the same epochs in every process, and each epoch is shuffled anew;
* iterating again starts the next epoch (``epoch(e)`` iterates epoch ``e`` explicitly, for a
  resumed run); the arrays are never copied or changed, batches are slices or gathered rows.

A ``Trainer`` takes one batch per step, so a ``Batches`` given as its ``data`` is one epoch; the
run ends with status ``exhausted`` at its end.

>>> import numpy as np
>>> data = batches((np.arange(5), np.arange(5) * 10), batch_size=2)
>>> len(data), [tuple(part.tolist() for part in batch) for batch in data]
(3, [([0, 1], [0, 10]), ([2, 3], [20, 30]), ([4], [40])])
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from steploop import _validate


class Batches:
    """An epoch of batches of rows of equal-length arrays, re-iterable; see ``batches``.

    >>> import numpy as np
    >>> data = batches({"x": np.arange(4)}, batch_size=3, drop_remainder=True)
    >>> len(data), [batch["x"].tolist() for batch in data]
    (1, [[0, 1, 2]])
    """

    def __init__(
        self, arrays: Any, batch_size: int, shuffle: int | None, drop_remainder: bool
    ) -> None:
        self.batch_size = _validate.count("batches batch_size", batch_size)
        if shuffle is not None and (
            isinstance(shuffle, bool) or not isinstance(shuffle, numbers.Integral)
        ):
            raise TypeError(
                f"batches shuffle must be None (keep the order) or an int seed, got "
                f"{shuffle!r} ({type(shuffle).__name__})"
            )
        if not isinstance(drop_remainder, bool):
            raise TypeError(
                f"batches drop_remainder must be a bool, got {drop_remainder!r} "
                f"({type(drop_remainder).__name__})"
            )
        self.shuffle = None if shuffle is None else int(shuffle)
        self.drop_remainder = drop_remainder
        self._kind, labels, self._arrays = _parts(arrays)
        self._keys = tuple(arrays) if self._kind == "dict" else ()
        self.rows = _rows(labels, self._arrays)
        self._epoch = 0

    def __len__(self) -> int:
        if self.drop_remainder:
            return self.rows // self.batch_size
        return -(-self.rows // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        epoch = self._epoch
        self._epoch += 1
        return self.epoch(epoch)

    def epoch(self, number: int) -> Iterator[Any]:
        """The batches of epoch ``number`` (counted from 0): with a seed, in its own order."""
        number = _validate.count("Batches.epoch number", number, minimum=0)
        order = None
        if self.shuffle is not None:
            order = np.random.default_rng([self.shuffle, number]).permutation(self.rows)
        for index in range(len(self)):
            start = index * self.batch_size
            rows: Any = slice(start, start + self.batch_size)
            if order is not None:
                rows = order[rows]
            yield self._batch([array[rows] for array in self._arrays])

    def _batch(self, parts: list[Any]) -> Any:
        if self._kind == "dict":
            return dict(zip(self._keys, parts, strict=True))
        if self._kind == "tuple":
            return tuple(parts)
        return parts[0]

    def __repr__(self) -> str:
        shuffle = "" if self.shuffle is None else f", shuffle={self.shuffle}"
        drop = ", drop_remainder=True" if self.drop_remainder else ""
        return (
            f"batches({self.rows} rows, batch_size={self.batch_size}{shuffle}{drop}): "
            f"{len(self)} batches per epoch"
        )


def batches(
    arrays: Any, batch_size: int, shuffle: int | None = None, drop_remainder: bool = False
) -> Batches:
    """The rows of ``arrays`` (an array, a tuple or a dict of arrays of equal length) in batches
    of ``batch_size``; see the module docstring for the epochs, shuffling and ``len``.

    >>> import numpy as np
    >>> xs = np.arange(6.0)
    >>> data = batches((xs, 2 * xs), batch_size=4, shuffle=0)
    >>> [len(x) for x, _ in data], all((2 * x == y).all() for x, y in data)
    ([4, 2], True)
    """
    return Batches(arrays, batch_size, shuffle, drop_remainder)


def _parts(arrays: Any) -> tuple[str, tuple[str, ...], list[np.ndarray]]:
    """``(kind, labels, arrays)``: kind is ``"tuple"``, ``"dict"`` or ``"array"``; the labels
    name each array in errors (``[0]``, ``['x']``)."""
    if isinstance(arrays, Mapping):
        labels = {key: f"[{key!r}]" for key in arrays}
        return "dict", tuple(labels.values()), [_array(labels[k], v) for k, v in arrays.items()]
    if isinstance(arrays, (tuple, list)):
        if isinstance(arrays, list):
            raise TypeError(
                "batches arrays must be an array, a tuple or a dict of arrays, got a list; "
                "pass a tuple (xs, ys) for several arrays, or np.asarray(...) for one"
            )
        names = tuple(f"[{index}]" for index in range(len(arrays)))
        return "tuple", names, [_array(name, a) for name, a in zip(names, arrays, strict=True)]
    return "array", ("",), [_array("", arrays)]


def _array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(
            f"batches arrays{name} must be an array with a leading axis of rows, got "
            f"{type(value).__name__}"
        )
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(
            f"batches arrays{name} must have at least one axis (its rows), got a scalar"
        )
    return array


def _rows(names: tuple[str, ...], arrays: list[np.ndarray]) -> int:
    if not arrays:
        raise ValueError("batches arrays is empty: give at least one array")
    lengths = [len(array) for array in arrays]
    if len(set(lengths)) > 1:
        each = ", ".join(f"arrays{name} has {n}" for name, n in zip(names, lengths, strict=True))
        raise ValueError(f"batches arrays must all have the same number of rows: {each}")
    if lengths[0] == 0:
        raise ValueError("batches arrays have no rows: there is nothing to batch")
    return lengths[0]
