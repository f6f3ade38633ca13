"""The extension point: a ``StepStrategy`` performs one update step and reports what it did.

Contract
--------
* ``step()`` (no data) or ``step(batch)`` (with ``Trainer(data=...)``) performs exactly one
  update and returns a ``StepOutput``. It is the one method a subclass must write.
* ``reports_gradients`` says whether ``StepOutput.gradients`` is filled, so criteria that need
  gradients are refused at construction when they would never see any.
* ``to_host(tree)`` turns the framework values of a ``StepOutput`` into NumPy; the Trainer calls
  it lazily, once per quantity a callback reads (default: ``numpy.asarray``).
* ``variables()`` returns the current values of the variables by name, as NumPy arrays; the
  Trainer calls it only when a callback reads ``StepRecord.variables`` (default: none).
* ``check(takes_batch)`` lets a strategy reject, when the Trainer is built, a loss that cannot be
  called the way the Trainer will call it (default: ``step``'s own signature is checked).

The values in a ``StepOutput`` may be framework objects (tensors); nothing is copied to the host
until ``to_host`` is called.

Optional capabilities
---------------------
A strategy has a capability when it has its methods; the Trainer asks with ``isinstance`` against
the ``typing.Protocol``s of ``steploop.capabilities`` (``Fusable``, ``Checkpointable``,
``DataAware``, ``Releasing``, ``StopsItself``), once, when it is built:

* ``Fusable``: ``run_steps(count, first_step, stopper, feed, keep_gradients)`` performs up to
  ``count`` steps in one call and returns a ``FusedResult`` (each quantity with a leading row per
  step; the gradients only when ``keep_gradients`` is ``True``, or only the last step's, with no
  row axis and ``FusedResult.last_gradients`` set, when it is ``LAST``), ending after the step
  where ``stopper`` (the in-graph stopping criteria, see ``steploop.criteria_program``) fires
  or when ``feed`` has no batch left; ``ready_to_fuse`` says whether it can run now (a
  TensorFlow strategy is not until one plain step built its optimiser slots). Without it,
  fused calls run ``step`` in a Python loop (``steploop.python_loop.run_steps_in_python``):
  same results, so every strategy can be fused. A strategy with compiled loops
  (``steploop.loop_body.CompiledLoops``) runs them with ``steploop.python_loop.fused_or_plain``,
  which takes one plain step when they cannot start.
* ``Checkpointable``: ``save(prefix)`` / ``restore(prefix)`` write and read the variables and
  optimiser state; ``steploop.Checkpoint`` needs them. ``restore`` matches variables by name and
  raises a ``ValueError`` naming any variable missing, extra, renamed, reshaped or re-typed
  (``steploop.checkpoint.check_variables``).
* ``DataAware``: ``prepare_data(data)`` returns the iterable the Trainer takes batches from
  (TensorFlow: a ``tf.data.Dataset`` gets a prefetch); ``data_from(data, position)`` an iterator
  from batch ``position`` on, for a resumed run (without it: ``batches_from``).
* ``Releasing``: ``release()`` frees whatever the step kept alive for its callbacks (a persistent
  gradient tape); the Trainer calls it after the step's last ``on_step_end`` hook, and on error.
* ``StopsItself``: ``stop_after(step, values)`` may ask the run to end after a step (a
  non-finite step under ``on_nonfinite="stop"``); the Trainer stops with status ``nonfinite``.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Final

import attrs
import numpy as np

from steploop import _validate

#: What ``BatchCursor.next`` returns when the data is exhausted.
END: Final = object()

#: ``keep_gradients`` of ``run_steps`` asking for the last step's gradients only (every step's
#: would be copied out of the call for no reader: only the last record can still be read).
LAST: Final = "last"


@attrs.frozen(slots=False, init=False)  # its own __init__: every step makes one
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

    def __init__(
        self,
        loss: Any,
        gradients: Mapping[str, Any] | None = None,
        target_gradients: Mapping[str, Mapping[str, Any]] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        # attrs' own would look up a setattr it does not use and call a factory: ~25% slower
        held = self.__dict__
        held["loss"] = loss
        held["gradients"] = gradients
        held["target_gradients"] = target_gradients
        held["values"] = {} if values is None else values


@attrs.frozen(slots=False)
class FusedResult:
    """What ``run_steps`` returns: ``steps`` steps done in one call.

    ``output`` holds each quantity with a leading axis of at least ``steps`` rows (row ``i`` is
    step ``first_step + i``; rows past ``steps`` are padding). ``states`` are the stopper's leaf
    states after the last step and ``verdicts`` its leaves' verdicts at that step, as host numbers;
    ``stopped`` says the stopper fired at the last step, ``exhausted`` that the data ran out.
    ``last_gradients`` says ``output``'s gradients (and target gradients) are the last step's
    alone, with no row axis (``run_steps(..., keep_gradients=LAST)``). ``error``: what the step
    after them raised (a call in Python that failed part way): the Trainer records the ``steps``
    done, as plain steps would have, then raises it. ``in_python``: the steps ran in Python
    (``run_steps_in_python``): ``output`` is NumPy already (each step converted with the
    strategy's ``to_host``, which the Trainer does not call again: a framework's may take only
    its own arrays), the strategy's ``stop_after`` was asked at every step (``strategy_stop``:
    its answer at the last, or what it raised there; the Trainer does not ask again, and raises
    that where a plain step's commit asks). ``stop_honoured``: the Trainer was asked to stop
    while the call ran (``CriteriaProgram.stop_asked``) and the call ended where that stop takes
    effect step by step: after the step it was asked during, or before the batch the data
    yielded as it asked (a call in Python, or a compiled call whose batches were being pulled).
    """

    steps: int
    output: StepOutput
    states: tuple[tuple[float, ...], ...] = ()
    verdicts: tuple[bool, ...] = ()
    stopped: bool = False
    exhausted: bool = False
    last_gradients: bool = False
    error: BaseException | None = attrs.field(default=None, eq=False)
    in_python: bool = False
    strategy_stop: str | BaseException | None = attrs.field(default=None, eq=False)
    stop_honoured: bool = False


class BatchCursor:
    """The Trainer's position in its data, shared by plain and fused steps.

    ``next()`` returns the next batch or ``END``; ``put_back(batch)`` returns one batch to the
    front (a strategy that pulled one batch too many, or a step that did not run). A strategy that
    pulls batches itself (inside a compiled loop) uses ``iterator`` when ``has_pending`` is false.

    >>> feed = BatchCursor(iter([1, 2]))
    >>> feed.next(), feed.put_back(1), feed.next(), feed.next(), feed.next() is END
    (1, None, 1, 2, True)
    """

    def __init__(self, iterator: Iterator[Any]) -> None:
        self.iterator = iterator
        self._pending: list[Any] = []

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def next(self) -> Any:
        if self._pending:
            return self._pending.pop()
        return next(self.iterator, END)

    def put_back(self, batch: Any) -> None:
        self._pending.append(batch)


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


def batches_from(data: Any, position: int) -> Iterator[Any]:
    """An iterator over ``data`` from batch number ``position`` on (0: the start): ``data_from``
    for a strategy that is not ``DataAware``.

    >>> list(batches_from([1, 2, 3], 1))
    [2, 3]
    """
    iterator = iter(data)
    return itertools.islice(iterator, position, None) if position else iterator


def checked_loss(strategy: StepStrategy, output: Any) -> float:
    """The loss of ``output`` (a ``StepOutput``) as a float, or an error naming the strategy."""
    if type(output) is StepOutput and type(output.loss) is float:
        return output.loss  # a host number already: nothing to convert or check
    name = type(strategy).__name__
    if not isinstance(output, StepOutput):
        raise TypeError(f"{name}.step must return a StepOutput, got {type(output).__name__}")
    loss = strategy.to_host(output.loss)
    if np.ndim(loss) != 0:
        raise ValueError(
            f"{name}.step returned a loss of shape {np.shape(loss)}; the loss must be a scalar"
        )
    try:
        return float(loss)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}.step returned a loss of type {type(output.loss).__name__} that is not a number"
        ) from None
