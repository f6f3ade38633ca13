"""What a strategy can do beyond ``step``: optional capabilities, declared as Protocols.

A strategy has a capability when it has the capability's methods; nothing needs to be inherited
or registered. The Trainer asks once, when it is built (``isinstance(strategy, Fusable)``), and
falls back to the core's defaults otherwise (see ``steploop.strategy``).

>>> from steploop.numpy import GradientDescent
>>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
>>> isinstance(gd, Checkpointable), isinstance(gd, StopsItself), isinstance(gd, Fusable)
(True, True, False)
>>> isinstance(gd, WeightsCopyable), isinstance(gd, Evaluates)
(True, True)
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from steploop.criteria_program import CriteriaProgram
    from steploop.strategy import BatchCursor, FusedResult


_C = TypeVar("_C")


@runtime_checkable
class Fusable(Protocol):
    """Runs several steps in one call (a compiled loop): the Trainer's fused calls use it."""

    @property
    def ready_to_fuse(self) -> bool:
        """Whether ``run_steps`` can run now (e.g. after a first plain step built the slots)."""

    def run_steps(
        self,
        count: int,
        first_step: int,
        stopper: CriteriaProgram,
        feed: BatchCursor | None,
        keep: bool | str,
    ) -> FusedResult:
        """Up to ``count`` steps, ending after the step where ``stopper`` fires."""


@runtime_checkable
class Checkpointable(Protocol):
    """Writes and reads its variables and optimiser state by name: ``Checkpoint`` needs it."""

    def save(self, prefix: str) -> None:
        """Write to files whose names start with ``prefix``."""

    def restore(self, prefix: str) -> None:
        """Read what ``save(prefix)`` wrote, matching variables by name."""


@runtime_checkable
class DataAware(Protocol):
    """Adapts the Trainer's data (prefetching, skipping consumed batches its own way)."""

    def prepare_data(self, data: Any) -> Any:
        """The iterable the Trainer takes batches from."""

    def data_from(self, data: Any, position: int) -> Iterator[Any]:
        """An iterator over ``data`` from batch number ``position`` on."""


@runtime_checkable
class Releasing(Protocol):
    """Keeps something alive for the step's callbacks (a persistent tape) and frees it after."""

    def release(self) -> None:
        """Free what the last step kept."""


@runtime_checkable
class StopsItself(Protocol):
    """May end the run after a step (a non-finite step under ``on_nonfinite="stop"``)."""

    def stop_after(self, step: int, values: Mapping[str, Any]) -> str | None:
        """Why the run must stop after ``step``, or ``None``."""


@runtime_checkable
class WeightsCopyable(Protocol):
    """Hands out a copy of its variables and takes one back: ``EarlyStopping(
    restore_best_weights=True)`` needs it. ``get_weights()`` returns host arrays by variable name
    (``dict[str, np.ndarray]``, the names of ``variables()``) that later steps do not change, so
    a ``Checkpoint`` can save the copy (``steploop.checkpoint_arrays``); ``set_weights(weights)``
    takes such a mapping (as saved, or read back from a checkpoint), refuses other names, and
    makes the variables equal, bit for bit, to those of that copy. The optimiser's state
    (moments, step count) is not part of it."""

    def get_weights(self) -> object:
        """A copy of the current variable values."""

    def set_weights(self, weights: object) -> None:
        """Set the variables to a copy ``get_weights`` returned."""


@runtime_checkable
class LearningRateControl(Protocol):
    """Has a learning rate that may change between steps: ``LearningRateScheduler`` needs it.
    Setting it takes effect from the next step on, in plain and fused calls alike."""

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses."""

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        """Use ``value`` from the next step on."""


@runtime_checkable
class Evaluates(Protocol):
    """Computes the loss on a batch without updating anything: ``Evaluate`` needs it.
    ``evaluate(batch)`` (``evaluate()`` for a loss that takes no batch) calls the loss as a step
    would (the loss contract of ``steploop.outputs``) and returns ``{"loss": ..., **values}`` as
    host floats; the variables and the optimiser state stay as they were."""

    def evaluate(self, *batch: Any) -> Mapping[str, float]:
        """The loss and the loss dict's ``"values"`` on ``batch``, as host floats."""


def has(strategy: object, capability: type[_C]) -> TypeGuard[_C]:
    """Whether ``strategy``'s class has the capability's methods (``isinstance(strategy,
    capability)`` for methods declared on the class), answered once per class: a Protocol's
    ``isinstance`` inspects every method at every call, and a Trainer asks at every run.

    >>> from steploop.numpy import GradientDescent
    >>> has(GradientDescent(lambda x: (x * x, 2 * x), 1.0, learning_rate=0.1), Checkpointable)
    True
    """
    return _has(type(strategy), capability)  # type: ignore[arg-type]


@functools.cache
def _has(kind: type, capability: type) -> bool:
    members = [name for name in vars(capability) if not name.startswith("_")]
    return all(hasattr(kind, name) for name in members)
