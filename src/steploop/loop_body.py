"""The framework-neutral body of a compiled multi-step loop (a fused ``run_steps`` call).

A framework runs up to K steps in one compiled call with its own loop primitive (TensorFlow's
``tf.while_loop`` and ``TensorArray``s, JAX's ``lax.while_loop``); what the loop does is stated
here once, and the framework supplies only its array namespace (``ops``, see ``steploop.ops``)
and its loop mechanics:

* ``take``: where the call's batches come from (``Source``: none, the framework's own iterator,
  or up to K batches pulled from the ``BatchCursor`` to be stacked, see ``chunks.pull_uniform``),
  and the limit of steps the loop runs;
* ``kept``: which of a step's outputs are stacked, a row per step (loss and values always, the
  gradients when asked for and reported), and which are carried for the last step only (the
  gradients under ``LAST``); ``parts``: a ``StepOutput`` as those trees;
* ``States``: the stopping program's leaf states, threaded through the loop as one flat float64
  vector (``unpack`` inside the loop, ``flat`` for its result and its argument);
* ``after_step``: after each step, the stopping program (``CriteriaProgram.evaluate``) and the
  strategy's own stop (a non-finite step, say), giving ``(stop, states, verdicts)`` as the
  framework's arrays, so every iteration carries values of one type;
* ``control``: the loop's result numbers (steps done, stopped, exhausted, then each leaf's
  verdict), which ``chunks.assemble`` reads back;
* ``CompiledLoops``: a strategy's compiled loops, one per kind, and a call of one from the
  source to the assembled ``FusedResult``; the framework builds and calls a loop.

Invariant: the loop ends after K steps, at the first step where ``after_step`` says stop, or when
the source has no batch left; it runs the very step body and criteria a plain step runs, so a
fused call gives what K plain steps give.

>>> from steploop.callbacks.stopping import MaxSteps
>>> from steploop.criteria_program import CriteriaProgram
>>> from steploop.ops import HOST
>>> from steploop.strategy import StepOutput
>>> stopper = CriteriaProgram([MaxSteps(3)])
>>> after_step(HOST, stopper, 3, StepOutput(loss=1.0), States.of(stopper).initial, None)
(True, ((),), (True,))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs

from steploop import chunks
from steploop.criteria_program import CriteriaProgram, Quantities
from steploop.strategy import LAST, BatchCursor, FusedResult, StepOutput

#: Where a fused call takes its batches from.
NO_DATA: Final = "none"
ITERATOR: Final = "iterator"
STACKED: Final = "stacked"

#: The outputs a loop can stack, in order.
OUTPUTS: Final = ("loss", "values", "gradients", "target_gradients")


@attrs.frozen
class Source:
    """The batches of one call: ``mode`` (``NO_DATA``, ``ITERATOR``, ``STACKED``), the batches
    pulled to be stacked, whether the feed ended, and the most steps the loop may run."""

    mode: str
    limit: int
    batches: list[Any] = attrs.field(factory=list)
    ended: bool = False
    asked: bool = False  # the data asked to stop as it yielded the batch after these

    def rows(self, count: int) -> list[Any]:
        """The batches to stack for a loop of ``count`` steps: those pulled, padded to ``count``
        with the last one (rows the loop never reaches: it stops at ``limit``), so that every
        call of one loop has the same input shape and it compiles once, also where the data
        ends in the middle of a call.

        >>> Source(STACKED, 2, [1.0, 2.0], True).rows(4)
        [1.0, 2.0, 2.0, 2.0]
        """
        return self.batches + self.batches[-1:] * (count - len(self.batches))


def take(
    feed: BatchCursor | None,
    count: int,
    native: Callable[[Any], bool],
    stopper: CriteriaProgram | None = None,
) -> Source | FusedResult | None:
    """The ``Source`` of a call of up to ``count`` steps. ``native(iterator)`` says whether the
    framework's loop pulls from the feed's iterator itself (with no batch put back pending).
    ``chunks.empty()`` when no batch is left; ``None`` when the next batch cannot be stacked
    (the caller then takes one plain step, which says what is wrong with it, or, when the data
    asked to stop as it yielded the first, takes none: ``stopper.stop_asked``).

    >>> take(None, 4, lambda iterator: False)
    Source(mode='none', limit=4, batches=[], ended=False, asked=False)
    >>> take(BatchCursor(iter([[1.0], [2.0]])), 4, lambda iterator: False).limit
    2
    """
    if feed is None:
        return Source(NO_DATA, count)
    if native(feed.iterator) and not feed.has_pending:
        return Source(ITERATOR, count)
    batches, ended = chunks.pull_uniform(feed, count, stopper)
    if not batches:
        return chunks.empty() if ended else None
    asked = stopper is not None and stopper.stop_asked
    return Source(STACKED, len(batches), batches, ended, asked)


def kept(reported: Sequence[str], keep_gradients: bool | str) -> tuple[list[str], list[str]]:
    """``(stacked, last)``: the outputs a loop stacks, a row per step (loss and values, and the
    ``reported`` gradients when every step's are kept), and those it keeps for its last step
    only (the ``reported`` gradients under ``keep_gradients=LAST``), carried from step to step.

    >>> reported = ["loss", "values", "gradients"]
    >>> kept(reported, True)
    (['loss', 'values', 'gradients'], [])
    >>> kept(reported, False), kept(reported, LAST)
    ((['loss', 'values'], []), (['loss', 'values'], ['gradients']))
    """
    gradients = [key for key in OUTPUTS[2:] if keep_gradients and key in reported]
    if keep_gradients == LAST:
        return ["loss", "values"], gradients
    return ["loss", "values", *gradients], []


def parts(output: StepOutput, absent: Any = None) -> dict[str, Any]:
    """``output`` as the trees a loop stacks, by ``OUTPUTS`` key (plain dicts; ``absent`` for the
    gradients a strategy does not report).

    >>> parts(StepOutput(loss=1.0, gradients={"w": 2.0}))
    {'loss': 1.0, 'values': {}, 'gradients': {'w': 2.0}, 'target_gradients': None}
    """
    targets = output.target_gradients
    return {
        "loss": output.loss,
        "values": dict(output.values),
        "gradients": absent if output.gradients is None else dict(output.gradients),
        "target_gradients": absent
        if targets is None
        else {key: dict(value) for key, value in targets.items()},
    }


@attrs.frozen
class States:
    """The leaf states of a ``CriteriaProgram`` as one flat vector: ``initial`` (host floats),
    the size of each leaf's state.

    >>> layout = States(((1.0, 2.0), (), (3.0,)))
    >>> layout.flat(layout.initial), layout.unpack([1.0, 2.0, 3.0])
    ([1.0, 2.0, 3.0], ((1.0, 2.0), (), (3.0,)))
    """

    initial: tuple[tuple[float, ...], ...]

    @classmethod
    def of(cls, stopper: CriteriaProgram) -> States:
        return cls(stopper.initial())

    def unpack(self, vector: Any) -> tuple[tuple[Any, ...], ...]:
        """The leaves' states from the flat ``vector`` (indexed element by element)."""
        states, start = [], 0
        for state in self.initial:
            states.append(tuple(vector[start + j] for j in range(len(state))))
            start += len(state)
        return tuple(states)

    @staticmethod
    def flat(states: Sequence[Sequence[Any]]) -> list[Any]:
        """The leaves' states as one list, in order."""
        return [value for state in states for value in state]


def after_step(
    ops: Any,
    stopper: CriteriaProgram,
    step: Any,
    output: StepOutput,
    states: tuple[tuple[Any, ...], ...],
    extra_stop: Callable[[StepOutput], Any] | None,
) -> tuple[Any, tuple[tuple[Any, ...], ...], tuple[Any, ...]]:
    """``(stop, states, verdicts)`` after step number ``step`` gave ``output``: the stopping
    program evaluated with ``ops`` from ``states``, or'ed with the strategy's ``extra_stop``
    (``None``, or a function that returns ``None`` when the strategy never stops). Numbers are
    ``ops.number`` (float64) and conditions ``ops.any_`` results, whatever the criteria return.
    """
    quantities = Quantities(
        step=step,
        loss=ops.number(output.loss),
        values=dict(output.values),
        gradients=dict(output.gradients or {}),
    )
    stop: Any = False
    verdicts: tuple[Any, ...] = ()
    if stopper:
        stop, states, verdicts = stopper.evaluate(ops, states, quantities)
        states = tuple(tuple(ops.number(value) for value in state) for state in states)
    own = None if extra_stop is None else extra_stop(output)
    if own is not None:
        stop = ops.any_(stop, own)
    return ops.any_(stop, False), states, tuple(ops.any_(met, False) for met in verdicts)


def control(steps: Any, stopped: Any, exhausted: Any, verdicts: Sequence[Any]) -> list[Any]:
    """The loop's control numbers in the order ``chunks.assemble`` reads them.

    >>> control(3, True, False, [True, False])
    [3, True, False, True, False]
    """
    return [steps, stopped, exhausted, *verdicts]


def numbers(control: Sequence[Any], states: Sequence[Any]) -> list[Any]:
    """What a loop returns to the host besides its outputs: the ``control`` numbers, then the
    leaves' ``flat`` states; the framework casts each to float64 (exact for the counts and flags)
    and stacks them into one vector, so one copy brings them back (``split`` reads it).

    >>> numbers([3, True, False], [0.5])
    [3, True, False, 0.5]
    """
    return [*control, *states]


def split(values: Sequence[float], states: int) -> tuple[list[int], list[float]]:
    """The host list of a loop's ``numbers`` vector as ``(control, states)``; ``states`` is how
    many state numbers it ends with.

    >>> split([3.0, 1.0, 0.0, 0.5], 1)
    ([3, 1, 0], [0.5])
    """
    head = len(values) - states
    return [int(value) for value in values[:head]], list(values[head:])


class CompiledLoops:
    """The compiled loops of one strategy, one per kind (call size, criteria program, gradients
    kept, source mode), and what a fused call does around the loop: take the source, find or
    build the loop, call it, assemble its result. A framework supplies ``native(iterator)``
    (whether its loop pulls from that iterator itself; no by default), ``build(count, stopper,
    keep_gradients, mode)`` and ``call(function, key, first_step, source, flat, feed)`` (``key``
    is ``(count, criteria key, kept, mode)``; stacked data is ``source.rows(count)``), which
    runs the loop from the criteria's ``flat`` states and returns its ``numbers`` (control
    numbers, then states) as one host list, and the stacked outputs."""

    def __init__(self) -> None:
        self.loops: dict[Any, Any] = {}

    def native(self, iterator: Any) -> bool:
        return False

    def build(
        self, count: int, stopper: CriteriaProgram, keep_gradients: bool | str, mode: str
    ) -> Any:
        raise NotImplementedError

    def call(
        self, function: Any, key: Any, first_step: int, source: Source, flat: list[float], feed: Any
    ) -> tuple[list[float], Any]:
        raise NotImplementedError

    def run(
        self,
        count: int,
        first_step: int,
        stopper: CriteriaProgram,
        feed: BatchCursor | None,
        keep_gradients: bool | str,
    ) -> FusedResult | None:
        """Up to ``count`` steps in one compiled call; ``None`` when ``feed``'s next batch
        cannot be stacked (the caller then takes one plain step, which says what is wrong)."""
        source = take(feed, count, self.native, stopper)
        if not isinstance(source, Source):
            return source
        key = (count, stopper.cache_key(), keep_gradients, source.mode)
        function = self.loops.get(key)
        if function is None:
            function = self.loops[key] = self.build(count, stopper, keep_gradients, source.mode)
        initial = stopper.initial()
        flat = States.flat(initial)
        values, stacked = self.call(function, key, first_step, source, flat, feed)
        expected = 3 + len(stopper.leaves) + len(flat)  # control(), then the states
        if len(values) != expected:
            raise ValueError(
                f"{type(self).__name__}.call returned {len(values)} numbers; expected {expected} "
                f"(steps, stopped, exhausted, {len(stopper.leaves)} verdicts, {len(flat)} states)"
            )
        control, states = split(values, len(flat))
        last = keep_gradients == LAST
        return chunks.assemble(
            control, states, initial, stacked, source.batches, feed, source.ended, last,
            source.asked,
        )
