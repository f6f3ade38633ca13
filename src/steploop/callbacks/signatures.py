"""Checking callbacks when the Trainer is built: each is a ``Callback``, and each hook it
writes can take the arguments it will get (``HOOKS``), with no method misnamed as a hook (a
misspelling would never be called). A class is checked once; an object only for the hooks set on
the object itself.

>>> class Typo(Callback):
...     def on_step_ends(self, trainer, record):
...         pass
>>> try:
...     as_callbacks([Typo()])
... except TypeError as error:
...     print(str(error)[:86])
callbacks[0] (Typo).on_step_ends is not a callback hook and would never be called; did
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from steploop.callbacks.base import HOOKS, Callback, overridden_hooks

#: (class, hook) pairs whose signature was found right: checked once per class, not per object.
_CHECKED: set[tuple[type, str]] = set()


@functools.cache
def _misnamed_hooks(kind: type) -> tuple[str, ...]:
    """Methods of ``kind`` named like a hook (``on_...``) that are not one of ``HOOKS``."""
    names = {
        name
        for klass in kind.__mro__
        if klass not in (Callback, object)
        for name, value in vars(klass).items()
        if name.startswith("on_") and callable(value)
    }
    return tuple(sorted(names - HOOKS.keys()))


#: Classes whose hooks were all found right, and that have no misnamed hook: an object of one is
#: checked only for hooks set on the object itself.
_SOUND: set[type] = set()


def check_signatures(callback: Callback, label: str | Callable[[], str]) -> None:
    """Raise ``TypeError`` if a hook of ``callback`` cannot take the arguments it will get, or if
    it has a method named like a hook that is none (a misspelling would never be called).
    ``label`` names it in the error (or makes the name, when one is raised)."""
    kind = type(callback)
    own = getattr(callback, "__dict__", {})
    if kind in _SOUND and not any(name in own for name in overridden_hooks(callback)):
        return
    if callable(label):
        label = label()
    for name in _misnamed_hooks(kind):  # type: ignore[arg-type]
        closest = difflib.get_close_matches(name, HOOKS, n=1, cutoff=0.0)
        raise TypeError(
            f"{label}.{name} is not a callback hook and would never be called; did you mean "
            f"{closest[0]}? The hooks are {', '.join(HOOKS)}"
        )
    for name in overridden_hooks(callback):
        from_class = name not in getattr(callback, "__dict__", {})
        if from_class and (kind, name) in _CHECKED:
            continue
        hook = getattr(callback, name)
        if not callable(hook):
            raise TypeError(f"{label}.{name} must be a method, got {type(hook).__name__}")
        try:
            signature = inspect.signature(hook)
        except (TypeError, ValueError):
            continue
        arguments = HOOKS[name]
        try:
            signature.bind(*arguments)
        except TypeError:
            raise TypeError(
                f"{label}.{name} must accept ({', '.join(arguments)}); its signature is {signature}"
            ) from None
        if from_class:
            _CHECKED.add((kind, name))
    if all((kind, name) in _CHECKED for name in overridden_hooks(callback)):
        _SOUND.add(kind)



def as_callbacks(callbacks: Any) -> Sequence[Callback]:
    """Validate the Trainer's ``callbacks`` argument and return it as a tuple."""
    if isinstance(callbacks, Callback):
        raise TypeError(
            f"callbacks must be a list of Callback objects, got a single {callbacks!r}; "
            f"pass [{callbacks!r}]"
        )
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(
            f"callbacks must be a list of Callback objects, got {type(callbacks).__name__}"
        )
    result = tuple(callbacks)
    for index, callback in enumerate(result):
        if not isinstance(callback, Callback):
            raise TypeError(
                f"callbacks[{index}] must be a Callback, got {callback!r} "
                f"({type(callback).__name__})"
            )
        label = functools.partial("callbacks[{}] ({})".format, index, type(callback).__name__)
        check_signatures(callback, label)  # the label made only for an error
    return result
