"""The framework-neutral parts of a compiled fused call (``StepStrategy.run_steps``).

A framework that runs K steps in one compiled call needs its batches stacked, so they must share
one structure, dtype and shape: ``pull_uniform`` takes up to K such batches from the
``BatchCursor`` and puts back the first one that differs. After the call, ``assemble`` builds the
``FusedResult`` from the call's control numbers, the stopper's state vector and the stacked
outputs, and puts back the batches that were pulled but not used (the call stopped early), so the
next call starts with them.

>>> from steploop.strategy import BatchCursor
>>> feed = BatchCursor(iter([[1.0, 2.0], [3.0, 4.0], [5.0]]))
>>> batches, ended = pull_uniform(feed, 3)
>>> len(batches), ended, feed.next()
(2, False, [5.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from steploop.strategy import END, BatchCursor, FusedResult, StepOutput

if TYPE_CHECKING:
    from steploop.criteria_program import CriteriaProgram


def _structure(batch: Any, leaves: list[Any]) -> Any:
    """``batch``'s nesting (tuples, lists, dicts), its leaves appended to ``leaves``."""
    if isinstance(batch, Mapping):
        return (type(batch).__name__, tuple((k, _structure(batch[k], leaves)) for k in batch))
    if isinstance(batch, (tuple, list)):
        return (type(batch).__name__, tuple(_structure(part, leaves) for part in batch))
    leaves.append(batch)
    return None


def signature(batch: Any) -> Any:
    """Structure, shapes and dtypes of a numeric batch, or ``None`` when a part is not numeric.

    >>> signature((1.0, [2, 3])) == signature((0.5, [7, 8])), signature(("a",))
    (True, None)
    """
    leaves: list[Any] = []
    structure = _structure(batch, leaves)
    specs = [_spec(leaf) for leaf in leaves]
    if any(spec is None for spec in specs):
        return None
    return structure, tuple(specs)


def _spec(leaf: Any) -> tuple[tuple[int, ...], str] | None:
    """A numeric leaf's shape and dtype name, read off an array (a framework's too: nothing is
    copied to the host) or from NumPy's view of a number or list; ``None`` when not numeric."""
    shape, dtype = getattr(leaf, "shape", None), getattr(leaf, "dtype", None)
    try:
        if shape is None or dtype is None:
            array = np.asarray(leaf)
            shape, dtype = array.shape, array.dtype
        kind = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))  # a tf.DType too
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        return None
    numeric = kind.kind in "biufc" or kind.name.startswith(_EXTENDED)
    return (dims, kind.name) if numeric else None


#: The names of ml_dtypes' numbers (bfloat16, float8_*, int4), which NumPy sees as kind "V".
_EXTENDED = ("bfloat", "float", "int", "uint")


def pull_uniform(
    feed: BatchCursor, count: int, stopper: CriteriaProgram | None = None
) -> tuple[list[Any], bool]:
    """Up to ``count`` batches of one structure, dtype and shape from ``feed`` (a batch that
    differs, or is not numeric, is put back for the next call; the plain step then says what is
    wrong with it); returns them and whether the data ended. A batch the data yielded as it
    asked the Trainer to stop (``stopper.stop_asked``) is put back, and none is pulled after it:
    as step by step, no step takes it."""
    batches: list[Any] = []
    first = None
    while len(batches) < count:
        batch = feed.next()
        if batch is END:
            return batches, True
        if stopper is not None and stopper.stop_asked:
            feed.put_back(batch)
            return batches, False
        this = signature(batch)
        if this is None or (batches and this != first):
            feed.put_back(batch)
            return batches, False
        first = this
        batches.append(batch)
    return batches, False


def empty() -> FusedResult:
    """The chunk of a call that found no batch left."""
    return FusedResult(steps=0, output=StepOutput(loss=np.zeros(0)), exhausted=True)


def assemble(
    control: Sequence[int],
    state_values: Sequence[float],
    initial: tuple[tuple[float, ...], ...],
    stacked: Mapping[str, Any],
    batches: Sequence[Any] = (),
    feed: BatchCursor | None = None,
    ended: bool = False,
    last_gradients: bool = False,
    honoured: bool = False,
) -> FusedResult:
    """The ``FusedResult`` of a compiled call.

    ``control`` is (steps done, stopped, exhausted, then each stopper leaf's verdict);
    ``state_values`` the leaves' states, flat, shaped as ``initial``; ``stacked`` the outputs
    with a row per step (``"loss"``, ``"values"``, optional ``"gradients"`` and
    ``"target_gradients"``). ``batches`` were pulled from ``feed`` for the call; those past the
    steps done go back, and ``ended`` says the feed had no more; ``last_gradients``: the
    gradients are the last step's alone (``FusedResult.last_gradients``); ``honoured``: the
    batches stop where a stop the data asked for takes effect (``FusedResult.stop_honoured``).

    >>> chunk = assemble([2, 1, 0, 1], [0.5], ((0.0,),), {"loss": [1.0, 0.5], "values": {}})
    >>> chunk.steps, chunk.states, chunk.verdicts, chunk.stopped
    (2, ((0.5,),), (True,), True)
    """
    steps, stopped, exhausted, verdicts = control[0], control[1], control[2], control[3:]
    values = iter(state_values)
    states = tuple(tuple(next(values) for _ in state) for state in initial)
    if feed is not None:
        for batch in reversed(batches[steps:]):  # pulled, not used: the next call's first
            feed.put_back(batch)
    return FusedResult(
        steps=steps,
        output=StepOutput(
            loss=stacked["loss"],
            gradients=stacked.get("gradients"),
            target_gradients=stacked.get("target_gradients"),
            values=stacked["values"],
        ),
        states=states,
        verdicts=tuple(bool(met) for met in verdicts),
        stopped=bool(stopped),
        exhausted=bool(exhausted) or (ended and steps == len(batches)),
        last_gradients=last_gradients,
        stop_honoured=honoured,
    )
