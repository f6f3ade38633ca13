"""What a strategy does with a step whose loss or gradients are not finite (``on_nonfinite``).

Written once for every framework. A strategy takes ``on_nonfinite`` (checked with
``NonFinite.of``) and, in its update, calls ``NonFinite.guard`` with the step's "not finite"
flags and the update; the framework supplies only primitive array operations (``GuardOps``:
the code of the first bad quantity and the rolled-back code are derived from them here) and,
for ``rollback``, a way to save, test and put back its state (``Saved``).

Policies
--------
* ``apply`` (the default): apply the update anyway, as a hand-written loop would; no code.
* ``skip``: do not apply a step whose loss or a gradient is not finite.
* ``stop``: as ``skip``, and the run stops after that step (``stop_after``), naming it.
* ``rollback``: apply the update; if the loss, a gradient, or the state after the update (the
  variables and optimiser state) is not finite, put the state back as it was before the step.

Codes
-----
Except under ``apply``, every step reports ``values["nonfinite"]``: ``0`` all finite, ``1`` the
loss, ``2 + i`` the gradient of variable ``i`` (the strategy's variable order), ``-1`` the update
made the state non-finite (rolled back). The first non-finite quantity wins.

>>> policy = NonFinite.of("Demo", "stop")
>>> policy.stop_after(3, {"nonfinite": 2}, ("w", "b")).split(";")[0]
"non-finite gradient of 'w' at step 3"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import attrs

#: The values ``on_nonfinite`` takes.
POLICIES: Final = ("apply", "skip", "stop", "rollback")

#: ``values["nonfinite"]`` codes (see the module docstring).
FINITE: Final = 0
LOSS: Final = 1
FIRST_GRADIENT: Final = 2
ROLLED_BACK: Final = -1

#: The key of the code in ``StepOutput.values``.
KEY: Final = "nonfinite"


class GuardOps(Protocol):
    """The framework's primitive array operations the guard needs (eager, host or inside a
    graph); ``first_bad`` and ``rolled_back`` below are built from them."""

    def when(self, condition: Any, action: Callable[[], None]) -> None:
        """Run ``action`` (stateful, no result) only where ``condition`` holds."""

    def any_(self, a: Any, b: Any) -> Any: ...

    def all_(self, a: Any, b: Any) -> Any: ...

    def not_(self, a: Any) -> Any: ...

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        """``a`` where ``condition`` holds, else ``b`` (integer codes: the framework's int)."""

    def stack(self, flags: Sequence[Any]) -> Any:
        """The flags as one vector of booleans."""

    def any_of(self, stacked: Any) -> Any:
        """Whether any flag of ``stack``'s vector is set."""

    def argmax(self, stacked: Any) -> Any:
        """The index of the first set flag of ``stack``'s vector (any index when none is), as
        the framework's integer the codes have."""


def first_bad(ops: GuardOps, flags: Sequence[Any]) -> tuple[Any, Any]:
    """``(any flag set, 1 + index of the first set flag or 0)``, as the framework's values: with
    ``flags`` the loss's and then each gradient's, the second is the step's code.

    >>> first_bad(HOST_GUARD, [False, True, True]), first_bad(HOST_GUARD, [False, False])
    ((True, 2), (False, 0))
    """
    stacked = ops.stack(flags)
    bad = ops.any_of(stacked)
    return bad, ops.where(bad, ops.argmax(stacked) + 1, FINITE)


def rolled_back(ops: GuardOps, bad: Any, after: Any, code: Any) -> Any:
    """``ROLLED_BACK`` where ``after`` holds (the update made the state non-finite) and ``bad``
    does not (no quantity of the step was), else ``code``.

    >>> rolled_back(HOST_GUARD, False, True, 0), rolled_back(HOST_GUARD, True, True, 2)
    (-1, 2)
    """
    return ops.where(ops.all_(ops.not_(bad), after), ROLLED_BACK, code)


class Saved(Protocol):
    """The state a ``rollback`` step saves, tests and puts back (variables, optimiser state)."""

    def not_finite(self) -> Any:
        """Whether the current state holds a non-finite number (after the update)."""

    def put_back(self) -> None:
        """Put the state back as it was when saved."""


class _HostGuard:
    """``GuardOps`` on plain Python booleans and ints: for a strategy whose step runs on the
    host (NumPy, or any eager framework whose flags are Python booleans)."""

    @staticmethod
    def when(condition: bool, action: Callable[[], None]) -> None:
        if condition:
            action()

    @staticmethod
    def any_(a: bool, b: bool) -> bool:
        return a or b

    @staticmethod
    def all_(a: bool, b: bool) -> bool:
        return a and b

    @staticmethod
    def not_(a: bool) -> bool:
        return not a

    @staticmethod
    def where(condition: bool, a: int, b: int) -> int:
        return a if condition else b

    @staticmethod
    def stack(flags: Sequence[bool]) -> list[bool]:
        return list(flags)

    any_of = staticmethod(any)

    @staticmethod
    def argmax(stacked: Sequence[bool]) -> int:
        return next((i for i, flag in enumerate(stacked) if flag), 0)


HOST_GUARD = _HostGuard()


@attrs.frozen
class NonFinite:
    """A checked ``on_nonfinite`` policy and what follows from it.

    >>> NonFinite.of("Demo", "skip").reports
    True
    >>> NonFinite.of("Demo", "ignore")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: Demo: on_nonfinite must be one of ['apply', 'skip', ...], got 'ignore'
    """

    policy: str = attrs.field(validator=attrs.validators.in_(POLICIES))

    @classmethod
    def of(cls, owner: str, policy: Any) -> NonFinite:
        """The policy ``policy`` of strategy ``owner``, or a ``ValueError`` naming both."""
        if not isinstance(policy, str) or policy not in POLICIES:
            raise ValueError(
                f"{owner}: on_nonfinite must be one of {list(POLICIES)}, got {policy!r}"
            )
        return cls(policy)

    @property
    def reports(self) -> bool:
        """Whether steps report ``values["nonfinite"]`` (every policy but ``apply``)."""
        return self.policy != "apply"

    def guard(
        self,
        ops: GuardOps,
        flags: Sequence[Any],
        update: Callable[[], None],
        save: Callable[[], Saved] | None = None,
    ) -> Any:
        """Apply ``update`` as the policy says; return the step's code (``None`` under ``apply``).

        ``flags`` say, for the loss and then each gradient, whether it is not finite; ``save``
        saves the state before the update (needed by ``rollback`` only).
        """
        if self.policy == "apply":
            update()
            return None
        bad, code = first_bad(ops, flags)
        if self.policy in ("skip", "stop"):
            ops.when(ops.not_(bad), update)
            return code
        assert save is not None, "rollback needs the state to save"
        saved = save()
        update()
        after = saved.not_finite()
        ops.when(ops.any_(bad, after), saved.put_back)
        return rolled_back(ops, bad, after, code)

    def with_code(self, values: Mapping[str, Any], code: Any) -> dict[str, Any]:
        """``values`` with the step's code added (unchanged under ``apply``)."""
        return dict(values) if code is None else {**values, KEY: code}

    def stop_after(self, step: int, values: Mapping[str, Any], names: Sequence[str]) -> str | None:
        """Under ``stop``: why the run must stop after ``step`` (its reported ``values``), or
        ``None``; ``names`` are the variables in the order the gradient codes count them."""
        if self.policy != "stop":
            return None
        code = int(values.get(KEY, FINITE))
        if code == FINITE:
            return None
        return (
            f"non-finite {describe(code, names)} at step {step}; its update was not applied, "
            "the variables are those of the step before"
        )


class ReportsNonFinite:
    """``stop_after`` and ``nonfinite_quantity`` of a strategy (a mixin), from its ``_policy``
    and the names of its variables ``_names`` (``None`` while they are not known)."""

    _policy: NonFinite
    _names: tuple[str, ...] | None

    def nonfinite_quantity(self, code: int) -> str:
        """What a ``values["nonfinite"]`` code means (see ``steploop.nonfinite``)."""
        return describe(code, self._names or ())

    def stop_after(self, step: int, values: Mapping[str, Any]) -> str | None:
        """Under ``on_nonfinite='stop'``: why the run must stop after ``step``, or ``None``."""
        return self._policy.stop_after(step, values, self._names or ())

    def _graph_stop(self, output: Any) -> Any:
        """The in-graph form of ``stop_after`` for fused loops: whether the step's ``output``
        (a ``StepOutput`` of the framework's arrays) was not finite; ``None``: never stops."""
        if self._policy.policy != "stop":
            return None
        return output.values[KEY] != 0


def describe(code: int, names: Sequence[str]) -> str:
    """What a ``values["nonfinite"]`` code means, given the variables' names.

    >>> describe(1, ["w"]), describe(2, ["w"]), describe(9, ["w"])
    ('loss', "gradient of 'w'", 'quantity 9')
    """
    if code == LOSS:
        return "loss"
    if code == ROLLED_BACK:
        return "variables or optimizer state after the update (rolled back)"
    index = code - FIRST_GRADIENT
    return f"gradient of {names[index]!r}" if 0 <= index < len(names) else f"quantity {code}"
