"""The extension point: a ``StepStrategy`` performs one update step and reports what it did.

Contract
--------
* ``step()`` (no data) or ``step(batch)`` (with ``Trainer(data=...)``) performs exactly one
  update and returns a ``StepOutput``. It is the one method a subclass must write.
* ``release()`` frees whatever the step kept alive for its callbacks (a persistent gradient tape,
  say). The Trainer calls it after the step's last ``on_step_end`` hook, and on error, so no such
  resource outlives its step. The default does nothing.
* ``variables()`` returns the current values of the variables by name, as NumPy arrays; the
  Trainer calls it only when a callback reads ``StepRecord.variables``.
* ``to_host(tree)`` turns the framework values of a ``StepOutput`` into NumPy; the Trainer calls
  it lazily, once per quantity a callback reads.
* ``check(takes_batch)`` lets a strategy reject, when the Trainer is built, a loss that cannot be
  called the way the Trainer will call it.
* ``reports_gradients`` says whether ``StepOutput.gradients`` is filled, so criteria that need
  gradients are refused at construction when they would never see any.

The values in a ``StepOutput`` may be framework objects (tensors); nothing is copied to the host
until ``to_host`` is called. A later multi-step strategy returns the same record with one leading
axis of length K per quantity (K steps of one call), so the Trainer can split it into K records.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import numpy as np

from steploop import _validate


@attrs.frozen
class StepOutput:
    """What a strategy's ``step`` returns: the loss and optional named quantities.

    ``loss`` is a scalar (float or framework scalar); ``gradients`` maps variable names to the
    loss's gradients; ``target_gradients`` maps each further target to such a mapping;
    ``values`` holds other scalars or arrays to record in the history.

    >>> StepOutput(loss=16.0, gradients={"x": -8.0}).gradients
    {'x': -8.0}
    """

    loss: Any
    gradients: Mapping[str, Any] | None = None
    target_gradients: Mapping[str, Mapping[str, Any]] | None = None
    values: Mapping[str, Any] = attrs.field(factory=dict)


class StepStrategy(abc.ABC):
    """One optimisation step; subclass it and write ``step``.

    >>> class Halve(StepStrategy):
    ...     def __init__(self):
    ...         self.x = 8.0
    ...     def step(self):
    ...         self.x /= 2
    ...         return StepOutput(loss=self.x ** 2)
    >>> Halve().step().loss
    16.0
    """

    #: True when ``step`` fills ``StepOutput.gradients``.
    reports_gradients: ClassVar[bool] = False

    @abc.abstractmethod
    def step(self, batch: Any = None) -> StepOutput:
        """Perform one update (on ``batch`` when the Trainer has data) and report it."""

    def release(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Free what the last step kept for its callbacks (default: nothing)."""

    def variables(self) -> Mapping[str, np.ndarray]:
        """Current variable values by name, as NumPy arrays (default: none)."""
        return {}

    def to_host(self, tree: Any) -> Any:
        """Convert a (nested mapping of) framework values to NumPy arrays."""
        if isinstance(tree, Mapping):
            return {key: self.to_host(value) for key, value in tree.items()}
        return np.asarray(tree)

    def check(self, takes_batch: bool) -> None:
        """Raise ``TypeError`` if ``step`` cannot be called as the Trainer will call it."""
        how = "step(batch), since the Trainer has data" if takes_batch else "step()"
        _validate.accepts(f"{type(self).__name__}.step", self.step, int(takes_batch), how)
