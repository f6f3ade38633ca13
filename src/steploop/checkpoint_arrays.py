"""Callbacks' array state in checkpoints: what ``get_state``'s JSON cannot hold.

A callback may keep arrays a resumed run needs (``EarlyStopping(restore_best_weights=True)``
keeps a copy of the best step's variables). It hands them out with ``get_arrays()`` (a mapping
of names to NumPy arrays) and takes them back with ``set_arrays(arrays)``; both are no-ops on
``Callback`` (see ``steploop.callbacks.base``).

A checkpoint ``ckpt-N`` saves them in ``ckpt-N.arrays.npz`` (``steploop.checkpoint_files``),
keyed by ``"{owner}/{name}"``: the owner is the callback's ``state_key`` (through ``Every``),
followed by the part's path for a part of a composite criterion (``"EarlyStopping |
MaxSteps.parts[0]"``). A restore gives every owner its own arrays, the prefix removed, and an
empty mapping to an owner the checkpoint holds none for (a checkpoint written before arrays were
saved has none at all), so nothing kept before the restore survives it.

>>> import steploop as sl
>>> [key for key, _ in owners([sl.EarlyStopping(3) | sl.MaxSteps(9)])]
['EarlyStopping', 'EarlyStopping.parts[0]', 'EarlyStopping.parts[1]']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from steploop.callbacks.base import Callback
from steploop.callbacks.every import Every
from steploop.callbacks.stopping import StoppingCriterion


def owners(callbacks: Sequence[Callback]) -> Iterator[tuple[str, Callback]]:
    """``(owner key, callback)`` for every callback and, in a composite criterion, every part."""
    for callback in callbacks:
        inner = callback.callback if isinstance(callback, Every) else callback
        key = callback.state_key
        if isinstance(inner, StoppingCriterion):
            for path, node in inner.nodes(""):
                yield key + path, node
        else:
            yield key, inner


def collect(callbacks: Sequence[Callback]) -> dict[str, np.ndarray]:
    """Every callback's ``get_arrays()``, keyed ``"{owner}/{name}"``. Two callbacks with arrays
    under one owner key are a ``ValueError`` (give one another key with ``keyed``)."""
    arrays: dict[str, np.ndarray] = {}
    seen: set[str] = set()
    for key, callback in owners(callbacks):
        own = callback.get_arrays()
        if not own:
            continue
        if key in seen:
            raise ValueError(
                f"two callbacks would both save arrays under {key!r}; give one another key "
                f"with keyed(), e.g. {type(callback).__name__}(...).keyed('{key}_2')"
            )
        seen.add(key)
        arrays.update({f"{key}/{name}": np.asarray(value) for name, value in own.items()})
    return arrays


def hand_back(callbacks: Sequence[Callback], arrays: Mapping[str, np.ndarray]) -> None:
    """Give every callback the arrays saved under its owner key (none: an empty mapping)."""
    for key, callback in owners(callbacks):
        start = f"{key}/"
        own = {name[len(start):]: value for name, value in arrays.items() if name.startswith(start)}
        callback.set_arrays(own)
