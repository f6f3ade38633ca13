"""The in-graph stopping program of a fused multi-step call, and the quantities it reads.

``CriteriaProgram`` gathers the Trainer's stopping criteria that have an array form (see
``steploop.callbacks.stopping``) into one program. A strategy's ``run_steps`` evaluates it after
every step, with the framework's array namespace, starting from ``initial()`` (the criteria's
current state); the first step where it fires ends the call. Afterwards the Trainer either loads
the final states back into the criteria (``load``) and asks them for their stop reasons
(``stops``), or replays each step's record through the ordinary callbacks; both give what a
step-by-step run would have given.

>>> from steploop.callbacks.stopping import LossBelow, MaxSteps
>>> from steploop.ops import HOST
>>> stopper = CriteriaProgram([LossBelow(0.5) | MaxSteps(3)])
>>> stopper.evaluate(HOST, stopper.initial(), Quantities(step=3, loss=1.0))
(True, ((), ()), (False, True))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from steploop._fields import field_names
from steploop.ops import HOST
from steploop.records import Stop

if TYPE_CHECKING:
    from steploop.callbacks.stopping import StoppingCriterion



@attrs.frozen(slots=False)  # built at every step of a host loop (see steploop.records)
class Quantities:
    """What a criterion's ``test`` reads about one step (host numbers or framework tensors).

    ``loss`` is float64; ``gradients`` maps variable names to gradients (empty when the strategy
    reports none); ``values`` holds the step's reported values.
    """

    step: Any
    loss: Any
    values: Mapping[str, Any] = attrs.field(factory=dict)
    gradients: Mapping[str, Any] = attrs.field(factory=dict)


def _key(criterion: StoppingCriterion) -> Any:
    parts = getattr(criterion, "parts", None)
    if parts is not None:
        return (type(criterion), tuple(_key(part) for part in parts))
    kind = type(criterion)
    names = field_names(kind, init_only=True)
    if names is not None:
        return (kind, tuple((name, getattr(criterion, name)) for name in names))
    return (kind, id(criterion))  # unknown settings: one loop per object


class CriteriaProgram:
    """The array-form stopping criteria of a Trainer, evaluated as one program.

    ``criteria`` are top-level criteria, in callback order; their leaves carry the state.
    """

    def __init__(self, criteria: Iterable[StoppingCriterion]) -> None:
        self.criteria = tuple(criteria)
        for criterion in self.criteria:
            if not criterion.array_form:
                raise ValueError(
                    f"{criterion!r} has no array form; it cannot run in a CriteriaProgram"
                )
        each = [criterion.leaves() for criterion in self.criteria]
        self.leaves = tuple(leaf for leaves in each for leaf in leaves)
        self.needs_gradients = any(c.requires_gradients for c in self.criteria)
        self._key: tuple[Any, ...] | None = None
        #: every criterion its own leaf (no composite): on the host, stop when any leaf is met
        pairs = zip(self.criteria, each, strict=True)
        self._flat = all(len(leaves) == 1 and leaves[0] is c for c, leaves in pairs)
        self._tests = tuple(leaf.test for leaf in self.leaves)  # bound once: run at every step
        #: set by the Trainer when it is asked to stop while a call runs: a call in Python
        #: (``run_steps_in_python``) ends after the step during which it was asked
        self.stop_asked = False

    def __bool__(self) -> bool:
        return bool(self.criteria)

    def cache_key(self) -> tuple[Any, ...]:
        """Identifies the program by its criteria's kinds, settings and composition (not by the
        objects), so a compiled loop serves every Trainer with the same criteria. Computed on first
        use after ``invalidate`` (the Trainer calls it as each run starts, so settings changed
        between runs take effect)."""
        if self._key is None:
            self._key = tuple(_key(criterion) for criterion in self.criteria)
        return self._key

    def invalidate(self) -> None:
        """Forget ``cache_key``: it is recomputed from the criteria's current settings when next
        read."""
        self._key = None

    def initial(self) -> tuple[tuple[float, ...], ...]:
        """Every leaf's current state."""
        return tuple(tuple(float(value) for value in leaf.state()) for leaf in self.leaves)

    def evaluate(
        self, ops: Any, states: tuple[tuple[Any, ...], ...], q: Any
    ) -> tuple[Any, tuple[tuple[Any, ...], ...], tuple[Any, ...]]:
        """``(stop, new_states, leaf_verdicts)`` after the step ``q``."""
        leaf_verdicts, new_states = [], []
        for test, state in zip(self._tests, states, strict=True):
            met, new_state = test(ops, state, q)
            leaf_verdicts.append(met)
            new_states.append(new_state if type(new_state) is tuple else tuple(new_state))
        if self._flat and ops is HOST:  # host bools: each criterion's verdict is its leaf's
            return any(leaf_verdicts), tuple(new_states), tuple(leaf_verdicts)
        remaining = iter(leaf_verdicts)
        stop: Any = False
        for index, criterion in enumerate(self.criteria):
            verdict = criterion.combine(ops, remaining)
            stop = verdict if index == 0 else ops.any_(stop, verdict)
        return stop, tuple(new_states), tuple(leaf_verdicts)

    def states_until_error(
        self, states: tuple[tuple[Any, ...], ...], q: Any
    ) -> tuple[tuple[Any, ...], ...]:
        """The leaves' states after step ``q`` when ``evaluate`` raised there: the leaves before
        the first whose test raises take the step, it and those after keep ``states`` (as the
        criteria's own hooks leave them, step by step, when one of them raises)."""
        new_states = list(states)
        for index, test in enumerate(self._tests):
            try:
                _, state = test(HOST, states[index], q)
            except Exception:  # the error itself is the caller's to raise
                break
            new_states[index] = tuple(state)
        return tuple(new_states)

    def load(self, states: tuple[tuple[Any, ...], ...]) -> None:
        """Give each leaf its state back (after a fused call)."""
        for leaf, state in zip(self.leaves, states, strict=True):
            leaf.load(tuple(float(value) for value in state))

    def take_back(self, chunk: Any, q: Any) -> list[Stop]:
        """After a fused call whose records the callbacks do not see: load the leaves' final
        states back and return the stops the criteria make at its last step ``q``."""
        if not self.criteria:
            return []
        self.load(chunk.states)
        return self.stops(chunk.verdicts, q) if chunk.stopped else []

    def stops(self, verdicts: tuple[Any, ...], q: Any) -> list[Stop]:
        """The stop requests the criteria make at step ``q``, given their leaves' verdicts."""
        remaining = iter(verdicts)
        found = [criterion.stop_from(remaining, q) for criterion in self.criteria]
        return [stop for stop in found if stop is not None]

    def __repr__(self) -> str:
        return f"CriteriaProgram({list(self.criteria)!r})"
