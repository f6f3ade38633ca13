"""The attrs field names of a class, read once per class (a Trainer reads them as it is built).

>>> import attrs
>>> @attrs.define
... class Below:
...     tol: float
...     seen: int = attrs.field(default=0, init=False)
>>> field_names(Below), field_names(Below, init_only=True), field_names(int)
(('tol', 'seen'), ('tol',), None)
"""

from __future__ import annotations

import attrs

#: Each class met: ``(all field names, those set at construction)``, or ``None`` (not attrs). A
#: plain dict (read several times a run; a weak one makes a reference at every read): the classes
#: stay alive, as in ``functools.cache``.
_NAMES: dict[type, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}


def field_names(kind: type, init_only: bool = False) -> tuple[str, ...] | None:
    """The names of ``kind``'s attrs fields (only those set at construction with
    ``init_only``), or ``None`` when it is not an attrs class."""
    try:
        names = _NAMES[kind]
    except KeyError:
        names = _NAMES[kind] = None
        if attrs.has(kind):
            fields = attrs.fields(kind)
            every = tuple(f.name for f in fields)
            names = _NAMES[kind] = (every, tuple(f.name for f in fields if f.init))
    return None if names is None else names[init_only]
