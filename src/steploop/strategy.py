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
  fused calls run ``step`` in a Python loop (``run_steps_in_python``): same results, so every
  strategy can be fused. A strategy with compiled loops (``steploop.loop_body.CompiledLoops``)
  runs them with ``fused_or_plain``, which takes one plain step when they cannot start.
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
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs
import numpy as np

from steploop import _validate
from steploop.criteria_program import Quantities
from steploop.ops import HOST
from steploop.records import check_value_names

if TYPE_CHECKING:
    from steploop.criteria_program import CriteriaProgram
    from steploop.loop_body import CompiledLoops

#: What ``BatchCursor.next`` returns when the data is exhausted.
END: Final = object()

#: ``keep_gradients`` of ``run_steps`` asking for the last step's gradients only (every step's
#: would be copied out of the call for no reader: only the last record can still be read).
LAST: Final = "last"


@attrs.frozen(slots=False)
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
    its answer at the last; the Trainer does not ask again), and the call ended after the step
    during which the Trainer was asked to stop (``CriteriaProgram.stop_asked``).
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
    strategy_stop: str | None = None


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


def run_steps_in_python(
    strategy: StepStrategy,
    count: int,
    first_step: int,
    stopper: CriteriaProgram,
    feed: BatchCursor | None,
    keep_gradients: bool | str,
) -> FusedResult:
    """Do up to ``count`` steps of ``strategy``, ending after the step where ``stopper`` fires,
    the strategy's ``stop_after`` asks to stop or the Trainer was asked to (``stopper.stop_asked``),
    or when ``feed`` is exhausted: ``run_steps`` for a strategy that is not ``Fusable``, calling
    ``step`` in a Python loop (results equal step by step). The steps of one call report the
    same value names (they are stacked): a step whose names differ raises a ``ValueError``."""
    # each step's output on the host, converted once: its loss, and its values and gradients
    # only where they are stacked (floats are not tracked by the garbage collector; a call keeps
    # no object a step it does not need)
    losses: list[float] = []
    value_rows: list[Mapping[str, Any]] = []
    gradient_rows: list[Mapping[str, Any]] = []
    targets: list[Any] = []
    states = stopper.initial()
    verdicts: tuple[Any, ...] = ()
    stopped = exhausted = False
    every = keep_gradients is True
    gradients_needed = every or stopper.needs_gradients
    output = last_output = None
    error: BaseException | None = None
    reason: str | None = None
    stops_itself = getattr(strategy, "stop_after", None)
    step, to_host, where = strategy.step, strategy.to_host, f"{type(strategy).__name__}.step"
    evaluate = stopper.evaluate if stopper else None  # bound once: this loop runs every step
    release = getattr(strategy, "release", None)  # Releasing: what a step kept for its callbacks
    target = None
    names: Any = None  # the value names of the call's first step: every step must report them
    for index in range(count):
        try:  # a step that raises after others: they are recorded (as plain steps), then it
            if index and release is not None:  # no callback sees the step before inside a call
                release()
            if feed is None:
                output = step()
            else:
                batch = feed.next()
                if batch is END:
                    exhausted = True
                    break
                if stopper.stop_asked:  # by the data as it yielded: the step does not run
                    feed.put_back(batch)
                    break
                output = step(batch)
            loss = checked_loss(strategy, output)
            values = output.values
            if values:  # a bad name fails at its step, before the next, as for a plain step
                check_value_names(where, values)
                values = to_host(dict(values))
            if names is None:
                names = values.keys() if values else ()
            elif (values.keys() if values else ()) != names:
                raise ValueError(_names_differ(where, first_step, index, names, values))
            gradients = output.gradients if gradients_needed else None
            row = Quantities(
                first_step + index,
                loss,
                values or {},
                to_host(dict(gradients)) if gradients else {},
            )
            if every and output.target_gradients is not None:
                target = to_host(dict(output.target_gradients))
        except BaseException as raised:
            error = raised
            break
        losses.append(loss)
        if names:
            value_rows.append(row.values)
        if every:
            gradient_rows.append(row.gradients)
        last_output = output
        if target is not None:
            targets.append(target)
            target = None
        if evaluate is not None:
            try:  # a criterion that raises: its step stays recorded, as after a plain step
                stopped, states, verdicts = evaluate(HOST, states, row)
            except BaseException as raised:  # the criteria before it took the step
                error, states = raised, stopper.states_until_error(states, row)
                break
        if stops_itself is not None:
            try:
                reason = stops_itself(row.step, row.values)
            except BaseException as raised:
                error = raised
                break
            if reason is not None:
                stopped = True
        if stopped or stopper.stop_asked:
            break
    output = last_output
    gradients_stacked = every and strategy.reports_gradients
    stacked = _stacked(losses, value_rows, gradient_rows if gradients_stacked else None, targets)
    last = keep_gradients == LAST and losses and output is not None
    if last and output is not None:  # the last step's alone, no row axis
        gradients, targets_of_last = output.gradients, output.target_gradients
        stacked = attrs.evolve(
            stacked,
            gradients=None if gradients is None else strategy.to_host(dict(gradients)),
            target_gradients=None
            if targets_of_last is None
            else strategy.to_host(dict(targets_of_last)),
        )
    return FusedResult(
        steps=len(losses),
        output=stacked,
        states=states,
        verdicts=tuple(bool(met) for met in verdicts),
        stopped=bool(stopped),
        exhausted=exhausted,
        last_gradients=bool(last),
        error=error,
        in_python=True,
        strategy_stop=reason,
    )


def _names_differ(where: str, first: int, index: int, names: Any, values: Any) -> str:
    now = sorted(values) if values else []
    return (
        f"{where} returned values named {now} at step {first + index}, but {sorted(names)} at step "
        f"{first}, the first step of its fused call: the steps of one call report the same "
        "names (steps_per_call=1 records names that change from step to step)"
    )


def fused_or_plain(
    strategy: StepStrategy,
    loops: CompiledLoops,
    count: int,
    first_step: int,
    stopper: CriteriaProgram,
    feed: BatchCursor | None,
    keep_gradients: bool | str,
) -> FusedResult:
    """Up to ``count`` steps of ``strategy`` in one call of its compiled ``loops``; when
    ``feed``'s next batch cannot be stacked (``loops.run`` returns ``None``), one plain step,
    which says what is wrong with it: ``run_steps`` of a strategy ready to fuse."""
    chunk = loops.run(count, first_step, stopper, feed, keep_gradients)
    if chunk is None:
        return run_steps_in_python(strategy, 1, first_step, stopper, feed, keep_gradients)
    return chunk


def batches_from(data: Any, position: int) -> Iterator[Any]:
    """An iterator over ``data`` from batch number ``position`` on (0: the start): ``data_from``
    for a strategy that is not ``DataAware``.

    >>> list(batches_from([1, 2, 3], 1))
    [2, 3]
    """
    iterator = iter(data)
    return itertools.islice(iterator, position, None) if position else iterator


def _stack(trees: list[Any]) -> Any:
    """One array per leaf, with a leading row per tree."""
    first = trees[0]
    if isinstance(first, Mapping):
        return {key: _stack([tree[key] for tree in trees]) for key in first}
    return np.stack([np.asarray(tree) for tree in trees])


def _stacked(
    losses: list[float],
    values: list[Mapping[str, Any]],
    gradients: list[Mapping[str, Any]] | None,
    targets: list[Any],
) -> StepOutput:
    """One ``StepOutput`` with a leading row per step, from the steps' host quantities (the
    values and gradients of every step, or none)."""
    if not losses:
        return StepOutput(loss=np.zeros(0))
    return StepOutput(
        loss=np.array(losses),
        gradients=None if gradients is None else _stack(gradients),
        target_gradients=_stack(targets) if targets else None,
        values=_stack(values) if values else {},
    )


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
