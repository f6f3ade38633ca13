"""Epochs: a Trainer's passes over its data, ``Trainer(strategy, data=..., epochs=n)``.

Contract
--------
* Epoch ``e`` (counted from 1) is one pass over ``data``: ``iter(data)`` anew, or, for
  ``sl.batches(...)``, its epoch ``e - 1`` explicitly (so a resumed run sees the same order). The
  data must restart when iterated again; a one-shot iterator (a generator) is refused for
  ``epochs > 1`` when the Trainer is built, and an epoch after the first that yields no batch is
  a ``ValueError``.
* Every step belongs to one epoch: ``StepRecord.epoch`` and the history column ``epoch``. A fused
  call never crosses the end of an epoch: each epoch has its own ``BatchCursor``, and a call is cut
  to the batches left when the epoch's length is known.
* The length of an epoch is ``len(data)`` when the data has one (the pass is not read past it);
  otherwise the Trainer looks one batch ahead, so the last step of the epoch is known when its
  batch is taken (a generator runs one batch ahead of the steps). Either way ``every(epochs=n)``
  (``steploop.schedule``) fires at exactly the last step of every ``n``-th epoch, fused or not.
* Hooks: ``on_epoch_begin(trainer, epoch)`` before the epoch's first step (before its
  ``on_step_begin``); ``on_epoch_end(trainer, epoch)`` after every ``on_step_end`` hook of its
  last step, also when that step asked the run to stop. An epoch cut short by a stop, a budget or
  an error gets no ``on_epoch_end`` then: a later ``run`` carries on with it.
* The run ends after the ``n``-th epoch's ``on_epoch_end``, with status ``exhausted``, unless a
  criterion or a budget ended it before.
* ``state()`` (saved in checkpoints) holds the epoch, the batches its steps took, and whether its
  ``on_epoch_begin`` / ``on_epoch_end`` ran; a restored Trainer takes the next batch of that epoch
  and runs a pending ``on_epoch_end`` first.

>>> import steploop as sl
>>> from steploop.numpy import GradientDescent
>>> step = GradientDescent(lambda x, b: ((x - b) ** 2, 2 * (x - b)), 0.0, learning_rate=0.5)
>>> result = sl.Trainer(step, data=[1.0, 2.0], epochs=3).run()
>>> result.stop_reason, result.history["epoch"].tolist()
('data exhausted after 3 epochs (6 steps)', [1, 1, 2, 2, 3, 3])
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from steploop import _validate
from steploop._fields import field_names
from steploop.batching import Batches
from steploop.callbacks.base import Callback
from steploop.records import Stop
from steploop.schedule import LIVE_EPOCH_SCHEDULES, EpochSchedule
from steploop.strategy import END, BatchCursor

if TYPE_CHECKING:
    from steploop.callbacks.base import CallbackList
    from steploop.trainer import Trainer

log = logging.getLogger("steploop")


def check(epochs: Any, data: Any) -> int | None:
    """``epochs`` checked against ``data`` when the Trainer is built (``None``: no epochs)."""
    if epochs is None:
        return None
    count = _validate.count("epochs", epochs)
    if data is None:
        raise ValueError(
            f"epochs={count} needs data: an epoch is one pass over Trainer(data=...), and this "
            "Trainer has none"
        )
    if count > 1 and isinstance(data, Iterator):
        raise TypeError(
            f"data is a {type(data).__name__}, an iterator that makes one pass only, but "
            f"epochs={count} needs a new pass per epoch; pass data whose iter() starts again: a "
            "list of batches, sl.batches(...), a tf.data.Dataset, or an object whose __iter__ "
            "makes a new generator"
        )
    if _length(data) == 0:
        raise ValueError(f"data has no batches, so epochs={count} would do no step")
    return count


def of(
    count: int | None,
    data: Any,
    data_from: Callable[[Any, int], Iterator[Any]],
    callbacks: CallbackList,
) -> Epochs | None:
    """The ``Epochs`` of a Trainer with ``count`` epochs (checked by ``check``); ``None``: none."""
    return None if count is None else Epochs(data, count, data_from, callbacks)


def _length(data: Any) -> int | None:
    """``len(data)`` (the batches per epoch), or ``None`` when it has none (a generator, a
    ``tf.data.Dataset`` of unknown length)."""
    try:
        return len(data)
    except (TypeError, ValueError):
        return None


class _Lookahead(Iterator[Any]):
    """An iterator that holds its next item, so it knows it ended as its last item is taken."""

    def __init__(self, iterator: Iterator[Any]) -> None:
        self._iterator = iterator
        self.taken = 0
        self._next = next(iterator, END)

    @property
    def ended(self) -> bool:
        return self._next is END

    def __next__(self) -> Any:
        if self._next is END:
            raise StopIteration
        item, self._next = self._next, next(self._iterator, END)
        self.taken += 1
        return item


class Epochs:
    """The Trainer's position in its epochs; also the ``EpochClock`` epoch schedules read.

    ``data_from(data, position)`` is the iterator of one pass from batch ``position`` on (the
    strategy's, see ``DataAware``); ``callbacks`` get the epoch hooks.
    """

    def __init__(
        self,
        data: Any,
        count: int,
        data_from: Callable[[Any, int], Iterator[Any]],
        callbacks: CallbackList,
    ) -> None:
        self.count = count
        self._data = data
        self._data_from = data_from
        self._callbacks = callbacks
        self._length = _length(data)
        self.epoch = 1
        self.position = 0  # the batches this epoch's steps took
        self.start = 0  # the step after which this epoch began
        self.begun = False  # on_epoch_begin ran for this epoch
        self.ended = False  # its last step ran; on_epoch_end has not yet
        self.cursor: BatchCursor | None = None
        self._ahead: _Lookahead | None = None
        self._opened_at = 0  # the position the cursor started at
        self._last_end: tuple[int, int] | None = None  # (step, epoch) of the latest end
        self._first_length: int | None = None

    def __bool__(self) -> Literal[True]:  # so ``epochs and epochs.epoch`` reads as ``int | None``
        return True

    # -- the clock ------------------------------------------------------------------------------
    def length(self) -> int | None:
        """The current epoch's number of batches, when known."""
        if self._length is not None:
            return self._length
        if self._ahead is not None and self._ahead.ended:
            return self._opened_at + self._ahead.taken
        return None

    def ending_at(self, step: int) -> int | None:
        if self._last_end is not None and step == self._last_end[0]:
            return self._last_end[1]
        end = self.next_end(step - 1)
        return end[1] if end is not None and end[0] == step else None

    def next_end(self, after: int) -> tuple[int, int] | None:
        length = self.length()
        if length is None or self.ended or self.start + length <= after:
            return None
        return self.start + length, self.epoch

    # -- the Trainer's side -----------------------------------------------------------------------
    def ready(self, trainer: Trainer) -> Stop | None:
        """Before a step or a fused call: end a finished epoch, begin the next one (its hook, its
        cursor); a ``Stop`` once every epoch is done."""
        if self.ended:
            self.close(trainer)  # a run restored from a checkpoint taken at an epoch's last step
            if trainer.stop_requested is not None:
                return None
        if self.epoch > self.count:
            return Stop(
                f"data exhausted after {self.count} epochs ({trainer.step} steps)", "exhausted"
            )
        if not self.begun:
            self.begun = True
            self.start = trainer.step - self.position
            self._callbacks.on_epoch_begin(trainer, self.epoch)
        if self.cursor is None:
            self._open()
        return None

    def _open(self) -> None:
        iterator: Iterator[Any]
        if isinstance(self._data, Batches):
            iterator = itertools.islice(self._data.epoch(self.epoch - 1), self.position, None)
        else:
            iterator = self._data_from(self._data, self.position)
        self._opened_at = self.position
        if self._length is None:
            iterator = self._ahead = _Lookahead(iterator)
            if self._ahead.ended and not self.position:
                self._empty()
        self.cursor = BatchCursor(iterator)

    def budget(self, budget: int | None) -> int | None:
        """``budget`` (the steps a call may do), cut to the batches left in this epoch."""
        length = self.length()
        if length is None:
            return budget
        left = length - self.position
        return left if budget is None else min(budget, left)

    def took(self, steps: int, last_step: int) -> bool:
        """Count ``steps`` finished steps, the last ``last_step``; whether the epoch just ended."""
        self.position += steps
        length = self.length()
        if length is not None and self.position >= length:
            self._end_at(last_step)
        return self.ended

    def _end_at(self, step: int) -> None:
        self.ended = True
        self._last_end = (step, self.epoch)
        if self._first_length is None:
            self._first_length = self.position

    def close(self, trainer: Trainer) -> None:
        """The epoch's last step ran: ``on_epoch_end``, then the next epoch waits to begin."""
        epoch = self.epoch
        self.epoch, self.position, self.start = epoch + 1, 0, trainer.step
        self.begun = self.ended = False
        self.cursor = self._ahead = None
        self._callbacks.on_epoch_end(trainer, epoch)

    def ran_out(self, trainer: Trainer) -> None:
        """The epoch's cursor had no batch left before its known end (``len(data)`` said more):
        the epoch ends here."""
        if self.cursor is None:  # the call's last step ended the epoch: nothing left to do
            return
        if not self.position:
            self._empty()
        log.warning(
            "epoch %d ended after %d batches, though len(data) is %s",
            self.epoch,
            self.position,
            self._length,
        )
        self._end_at(trainer.step)
        self.close(trainer)

    def _empty(self) -> None:
        first = "" if self._first_length is None else f", though epoch 1 had {self._first_length}"
        raise ValueError(
            f"data yielded no batch in epoch {self.epoch}{first}: iter(data) must start a new "
            "pass each epoch (a list, sl.batches(...), a tf.data.Dataset), not go on with a used "
            "iterator"
        )

    # -- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The position to save: epoch, batches taken in it, whether its hooks ran."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "begun": self.begun,
            "ended": self.ended,
        }

    def restore(self, state: dict[str, Any], step: int) -> None:
        """Take back a ``state()`` saved at step ``step``."""
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.begun, self.ended = bool(state["begun"]), bool(state["ended"])
        self.start = step - self.position
        self.cursor = self._ahead = None
        self._last_end = (step, self.epoch) if self.ended else None

    def describe(self) -> str:
        return f"epochs={self.count}"


def ran_out(trainer: Trainer, epochs: Epochs | None) -> Stop | None:
    """The data ran out: the run's ``Stop`` for one pass, else ``None`` (the next epoch begins)."""
    if epochs is None:
        return Stop(f"data exhausted after {trainer.step} steps", "exhausted")
    epochs.ran_out(trainer)
    return None


def attach(callbacks: Sequence[Callback], epochs: Epochs | None) -> None:
    """Give every epoch schedule among ``callbacks`` (in any attribute, also inside ``Every``
    and composites) the Trainer's clock; a ``ValueError`` when the Trainer has no epochs."""
    if not LIVE_EPOCH_SCHEDULES:  # none exists, so none is among the callbacks
        return
    for index, callback in enumerate(callbacks):
        for schedule in _epoch_schedules(callback, set()):
            if epochs is None:
                raise ValueError(
                    f"callbacks[{index}] {callback!r} acts {schedule!r}, but this Trainer has no "
                    "epochs; pass Trainer(..., data=..., epochs=n)"
                )
            schedule.attach(epochs)


#: Values that hold no schedule, skipped without a look (most of a criterion's fields).
_ATOMS = frozenset({int, float, bool, str, bytes, type(None)})


def _epoch_schedules(value: Any, seen: set[int]) -> Iterator[EpochSchedule]:
    if type(value) in _ATOMS or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, EpochSchedule):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _epoch_schedules(item, seen)
    elif isinstance(value, Callback):
        names = field_names(type(value))
        if names is None:
            names = tuple(getattr(value, "__dict__", {}))
        for name in {"schedule", *names}:
            yield from _epoch_schedules(getattr(value, name, None), seen)
