"""``Evaluate``: the loss and values on held-out data at scheduled steps, without an update.

Contract: after each step ``s`` of its schedule, ``Evaluate`` calls the strategy's
``evaluate(batch)`` (``steploop.capabilities.Evaluates``; ``evaluate()`` when ``data`` is
``None``) on every batch of ``data``, averages the results, and

* logs them as history columns ``<prefix>loss`` and ``<prefix><value>`` at step ``s`` (``nan``
  at the other steps);
* publishes them for the callbacks after it in the same step: ``published_at(s)``, read by a
  ``monitor="val_loss"`` of ``EarlyStopping`` or ``ReduceLROnPlateau`` listed after it (see
  ``steploop.callbacks.monitor``), and ``results``, the latest ones.

The average is weighted by batch size when every batch has one (the leading dimension of its
first leaf: ``batch[0]`` of a tuple or list, the first value of a dict), else it is the plain
mean over batches. Nothing is updated: variables, optimiser state and the Trainer's data
position stay as they were. It needs the variables of step ``s`` itself, so with
``steps_per_call=K`` fused calls end at its steps (and only there): the results equal those of
a step-by-step run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from steploop.batching import Batches
from steploop.callbacks.base import Callback
from steploop.capabilities import Evaluates, has
from steploop.outputs import evaluation
from steploop.schedule import Schedule, as_schedule, every_repr

if TYPE_CHECKING:
    from steploop.records import StepRecord
    from steploop.trainer import Trainer


def batch_size(batch: Any) -> int | None:
    """The leading dimension of ``batch``'s first leaf, or ``None`` when it has none.

    >>> import numpy as np
    >>> batch_size((np.zeros((3, 2)), np.zeros(3))), batch_size({"x": np.zeros(5)}), batch_size(2.0)
    (3, 5, None)
    """
    leaf = batch
    while isinstance(leaf, (tuple, list, Mapping)) and len(leaf):
        leaf = next(iter(leaf.values())) if isinstance(leaf, Mapping) else leaf[0]
    shape = getattr(leaf, "shape", None)
    if shape is None or len(shape) == 0 or shape[0] is None:
        return None
    return int(shape[0])


def _reiterable(data: Any) -> Any:
    if data is None:
        return None
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable):
        raise TypeError(
            f"Evaluate data must be None or a re-iterable of batches (a list, sl.batches(...), "
            f"a tf.data.Dataset), got {type(data).__name__}"
        )
    if iter(data) is data:
        raise TypeError(
            f"Evaluate data must be re-iterable, as it is read at every evaluation; got a "
            f"{type(data).__name__}, which is used up after one pass: pass a list of batches"
        )
    return data


class Evaluate(Callback):
    """Evaluate the model on ``data`` after the steps of ``every`` (a number ``n`` or a
    ``Schedule``); log and publish ``<prefix>loss`` and ``<prefix><value>`` (see the module
    docstring). ``fn`` (optional) replaces the strategy's ``evaluate``: called like it (with a
    batch, or with nothing when ``data`` is ``None``), it returns a dict of numbers with a
    ``"loss"`` entry.

    >>> import steploop as sl
    >>> from steploop.numpy import GradientDescent
    >>> gd = GradientDescent(lambda x, t: ((x - t) ** 2, 2 * (x - t)), 0.0, learning_rate=0.5)
    >>> trainer = sl.Trainer(gd, [sl.Evaluate([3.0, 5.0], every=2)], data=[4.0] * 4)
    >>> trainer.run().steps, trainer.history["val_loss"].tolist()
    (4, [nan, 1.0, nan, 1.0])
    """

    may_stop = False
    reads_gradients = False
    needs_live_state = True

    def __init__(
        self,
        data: Iterable[Any] | None = None,
        every: int | Schedule = 1,
        prefix: str = "val_",
        fn: Callable[..., Mapping[str, Any]] | None = None,
    ) -> None:
        self.data = _reiterable(data)
        self.schedule = as_schedule(every, "Evaluate every")
        if not isinstance(prefix, str) or not prefix:
            raise TypeError(f"Evaluate prefix must be a non-empty str, got {prefix!r}")
        if fn is not None and not callable(fn):
            raise TypeError(f"Evaluate fn must be None or a function, got {type(fn).__name__}")
        self.prefix = prefix
        self.fn = fn
        self._last: tuple[int, dict[str, float]] = (0, {})
        self._names: list[str] | None = None  # the names batch 0 of an evaluation gave

    def validate(self, trainer: Trainer) -> str | None:
        if self.fn is not None or has(trainer.strategy, Evaluates):
            return None
        return (
            "needs a strategy that evaluates without updating (steploop.capabilities."
            f"Evaluates), or Evaluate(fn=...); {type(trainer.strategy).__name__} has none"
        )

    # -- the publisher (steploop.callbacks.monitor) ------------------------------------------
    def provides(self, name: str) -> bool:
        """Whether ``name`` is one of its columns (it starts with ``prefix``)."""
        return name.startswith(self.prefix)

    def published_at(self, step: int) -> dict[str, float] | None:
        """Its results at ``step`` (prefixed names), or ``None`` when it did not run there."""
        return self._last[1] if self._last[0] == step and step else None

    @property
    def results(self) -> dict[str, float]:
        """The latest results, by prefixed name (empty before the first evaluation)."""
        return dict(self._last[1])

    # -- evaluating ----------------------------------------------------------------------------
    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """The averaged results on ``data`` now, by prefixed name (nothing logged)."""
        measure: Callable[..., Mapping[str, Any]] = self.fn or trainer.strategy.evaluate  # type: ignore[attr-defined]
        sizes: list[int | None] = []
        rows: list[dict[str, float]] = []
        for arguments in self._arguments():
            rows.append(self._checked(measure(*arguments), len(rows)))
            sizes.append(batch_size(arguments[0]) if arguments else None)
        if not rows:
            raise ValueError("Evaluate data has no batch to evaluate on")
        weights = [1] * len(rows) if None in sizes else [int(size or 0) for size in sizes]
        total = sum(weights)
        return {
            f"{self.prefix}{name}": sum(w * row[name] for w, row in zip(weights, rows, strict=True))
            / total
            for name in rows[0]
        }

    def _arguments(self) -> Iterator[tuple[Any, ...]]:
        if self.data is None:
            yield ()
            return
        data = self.data.epoch(0) if isinstance(self.data, Batches) else self.data
        for batch in data:
            yield (batch,)

    def _checked(self, result: Any, index: int) -> dict[str, float]:
        if self.fn is not None:
            if not isinstance(result, Mapping) or "loss" not in result:
                raise TypeError(
                    f"Evaluate fn must return a dict of numbers with a 'loss' entry, got "
                    f"{sorted(result) if isinstance(result, Mapping) else type(result).__name__}"
                )
            others = {key: value for key, value in result.items() if key != "loss"}
            result = evaluation("Evaluate fn", result["loss"], others)
        if index and self._names != sorted(result):
            raise ValueError(
                f"Evaluate: batch {index} gave the values {sorted(result)}, batch 0 gave "
                f"{self._names}; every batch must report the same values"
            )
        self._names = sorted(result)
        return dict(result)

    def on_step_end(self, trainer: Trainer, record: StepRecord) -> None:
        if not self.schedule.fires(record.step):
            return
        results = self.evaluate(trainer)
        for name, value in results.items():
            trainer.history.log(name, value)
        self._last = (record.step, results)

    def __repr__(self) -> str:
        return f"Evaluate(every={every_repr(self.schedule)}, prefix={self.prefix!r})"
