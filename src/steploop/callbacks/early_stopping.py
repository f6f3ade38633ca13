"""``EarlyStopping``: stop when a monitored quantity stops improving (Keras' callback, with its
documented baseline semantics, a warm-up and the best weights restored at the stop).

Its condition is stated once, as ``test(ops, state, q)``, a pure function of an explicit state;
see ``steploop.callbacks.stopping`` for the contract and ``EarlyStopping`` for the rules.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from steploop import _validate
from steploop.callbacks.monitor import auto_mode
from steploop.callbacks.stopping import StoppingCriterion, _fmt
from steploop.capabilities import WeightsCopyable, has
from steploop.criteria_program import Quantities
from steploop.ops import HOST

if TYPE_CHECKING:
    from steploop.records import StepRecord, Stop
    from steploop.trainer import Trainer

log = logging.getLogger("steploop")
WEIGHTS = "weights/"  # the prefix of the copy's variables among its arrays


def _baseline(value: Any) -> float | None:
    return None if value is None else _validate.number("EarlyStopping baseline", value)


@attrs.define(repr=False)
class EarlyStopping(StoppingCriterion):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` steps.

    ``monitor`` is ``"loss"`` or the name of a value the strategy reports. ``mode`` says which
    way is better: ``"min"``, ``"max"``, or ``"auto"`` (the default): ``"max"`` when the name
    contains ``acc``, ``auc``, ``precision``, ``recall`` or ``f1`` (case-insensitive), else
    ``"min"``. As in Keras, a step improves when it beats the best so far by more than
    ``min_delta``; the run stops once ``patience`` steps in a row did not.

    ``start_from=s``: steps before step ``s`` are a warm-up; they neither improve nor count.

    ``baseline=b``: the value must beat ``b`` (by more than ``min_delta``) before any step counts
    as an improvement. A run that never beats it stops after ``patience`` steps, even when it
    keeps improving below the baseline (what Keras' documentation promises; Keras' code lets
    such a run go on while it improves); from the first step that beats it, ordinary patience.

    ``restore_best_weights=True``: when this criterion stops the run, the strategy's variables
    are set to those of the best step (the optimiser's state is not). It needs a strategy with
    ``get_weights``/``set_weights`` (``steploop.capabilities.WeightsCopyable``; refused when the
    Trainer is built otherwise) and copies the variables to the host at each improving step.
    To copy them at the step itself, it needs live state at every step: with
    ``steps_per_call=K`` the Trainer does plain steps, so the option costs what fusion would save;
    the stop step and the restored variables are those of a step-by-step run. It must be a
    Trainer callback of its own (not a part of ``|``/``&``) when ``steps_per_call > 1``. A
    ``Checkpoint`` saves the copy with the run (``get_arrays``: the step and each variable by
    name, in ``ckpt-N.arrays.npz``) and a resume takes it back, so a run killed after its best
    step and resumed restores that step's variables bit for bit, as an uninterrupted one does.
    From a checkpoint without the copy (written before copies were saved), the copy starts
    again at the next improving step; a stop before one keeps the stop step's variables, with a
    warning, and its reason says they were not restored.

    ``monitor="val_loss"`` (or another name an ``Evaluate`` publishes): the ``Evaluate`` must
    be listed before this criterion (else a ``ValueError`` naming both when the Trainer is
    built); the criterion then checks only at the evaluated steps, so ``patience`` counts
    evaluations, as Keras' counts epochs. It is checked on the host, exactly: fused calls end
    at the evaluated steps anyway (``steploop.callbacks.monitor``).

    The test stays a pure function of the state ``(best, best step, steps without improvement,
    baseline beaten)``, evaluated in fused calls like the other criteria.

    >>> EarlyStopping(patience=5)
    EarlyStopping(patience=5, min_delta=0, monitor='loss', mode='min')
    >>> EarlyStopping(3, monitor="val_accuracy", baseline=0.9).mode
    'max'
    """

    patience: int = attrs.field(
        converter=lambda value: _validate.count("EarlyStopping patience", value)
    )
    min_delta: float = attrs.field(
        default=0.0,
        converter=lambda value: _validate.number(
            "EarlyStopping min_delta", value, nonnegative=True
        ),
    )
    monitor: str = attrs.field(default="loss")
    mode: str = attrs.field(default="auto")
    baseline: float | None = attrs.field(
        default=None, converter=_baseline
    )
    start_from: int = attrs.field(
        default=0,
        converter=lambda value: _validate.count("EarlyStopping start_from", value, minimum=0),
    )
    restore_best_weights: bool = attrs.field(default=False)
    def __attrs_post_init__(self) -> None:
        self.mode = auto_mode(self.monitor, self.mode)

    def watch(self, source: Any) -> None:
        """Read ``monitor`` from ``source``, the earlier callback that publishes it (``None``:
        from the step's own values); set when the Trainer is built."""
        self.__dict__["_source"] = source

    @property
    def array_form(self) -> bool:  # type: ignore[override]
        """In the fused calls' program, unless it monitors a published quantity."""
        return self.__dict__.get("_source") is None

    @property
    def stops_at_sync(self) -> bool:  # type: ignore[override]
        return self.__dict__.get("_source") is not None

    def init(self) -> tuple[float, ...]:
        # best value, its step, steps without improvement, baseline beaten (1.0) or not (0.0)
        return (math.nan, 0.0, 0.0, 1.0 if self.baseline is None else 0.0)

    def set_state(self, state: dict[str, Any]) -> None:
        values = [float(value) for value in state["state"]]
        self.load(tuple(values + list(self.init()[len(values):])))  # older: no baseline flag

    @monitor.validator
    def _check_monitor(self, attribute: Any, value: Any) -> None:
        if not isinstance(value, str):
            raise TypeError(f"EarlyStopping monitor must be a str, got {type(value).__name__}")

    @mode.validator
    def _check_mode(self, attribute: Any, value: Any) -> None:
        if value not in ("min", "max", "auto"):
            raise ValueError(
                f"EarlyStopping mode must be 'min' or 'max' (or 'auto': from the monitored "
                f"name), got {value!r}"
            )

    @restore_best_weights.validator
    def _check_restore(self, attribute: Any, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(
                f"EarlyStopping restore_best_weights must be a bool, got {value!r} "
                f"({type(value).__name__})"
            )

    @property
    def needs_live_state(self) -> bool:  # type: ignore[override]
        return self.restore_best_weights

    def validate(self, trainer: Trainer) -> str | None:
        if self.restore_best_weights and not has(trainer.strategy, WeightsCopyable):
            return (
                f"needs a strategy with get_weights() and set_weights() "
                f"(steploop.capabilities.WeightsCopyable) to restore the best weights; "
                f"{type(trainer.strategy).__name__} has none"
            )
        return None

    def _value(self, ops: Any, q: Any) -> Any:
        """The monitored value among the step's values (``test`` reads ``"loss"`` itself)."""
        try:
            return ops.number(q.values[self.monitor])
        except KeyError:
            raise ValueError(
                f"EarlyStopping monitor={self.monitor!r} is not among the step's values "
                f"{sorted(q.values)} (or 'loss')"
            ) from None

    def _beats(self, ops: Any, value: Any, reference: Any) -> Any:
        if self.mode == "min":
            return value < reference - self.min_delta
        return -value < -reference - self.min_delta

    def test(self, ops: Any, state: tuple[Any, ...], q: Any) -> tuple[Any, tuple[Any, ...]]:
        best, best_step, wait, beaten = state
        value = q.loss if self.monitor == "loss" else self._value(ops, q)
        if ops is HOST and self.baseline is None and not self.start_from:
            # the usual settings on the host, plain floats: what the lines below compute, without
            # a namespace call each (tests/test_host_paths.py holds them equal)
            delta = self.min_delta
            if best != best or (
                value < best - delta if self.mode == "min" else -value < -best - delta
            ):
                best, best_step = value, float(q.step)
                if beaten > 0.5:  # an improvement: patience starts again
                    return False, (best, best_step, 0.0, beaten)
            wait += 1.0
            return wait >= self.patience, (best, best_step, wait, beaten)
        improved = ops.any_(ops.isnan(best), self._beats(ops, value, best))
        now_beaten = beaten
        if self.baseline is not None:  # settings are fixed: no baseline, no operations for it
            beats = self._beats(ops, value, self.baseline)
            improved = ops.any_(improved, ops.all_(beats, beaten < 0.5))  # or the first to beat
            now_beaten = ops.where(ops.any_(beats, beaten > 0.5), 1.0, 0.0)
        warm_up = self.start_from > 0  # steps count from 1: without a warm-up, every step is on
        if warm_up:
            active = q.step >= self.start_from
            improved = ops.all_(active, improved)
        counts = ops.all_(improved, now_beaten > 0.5)  # an improvement that resets patience
        best = ops.where(improved, value, best)
        best_step = ops.where(improved, ops.number(q.step), best_step)
        new_wait = ops.where(counts, 0.0, wait + 1.0)
        met = ops.all_(ops.not_(counts), new_wait >= self.patience)
        if warm_up:  # a step before start_from changes no count and meets nothing
            new_wait = ops.where(active, new_wait, wait)
            now_beaten = ops.where(active, now_beaten, beaten)
            met = ops.all_(active, met)
        return met, (best, best_step, new_wait, now_beaten)

    def check(self, trainer: Trainer, record: StepRecord) -> Stop | None:
        source = self.__dict__.get("_source")
        if source is None:
            if type(self) is EarlyStopping:  # the base's check, without super()'s cost
                stop = StoppingCriterion.check(self, trainer, record)
            else:  # a subclass: its bases in their order
                stop = super().check(trainer, record)
        else:  # a published monitor: checked at the publisher's steps only
            published = source.published_at(record.step)
            if published is None:
                return None
            q = Quantities(record.step, record.loss, {**record.values, **published})
            met, state = self.test(HOST, self.state(), q)
            self.load(state)
            stop = self._stop(self.reason(q)) if met else None
        if self.restore_best_weights:
            stop = _keep_best(self, trainer, record.step, stop)
        return stop

    def get_arrays(self) -> dict[str, np.ndarray]:
        """The copy of the best step's variables, for checkpoints: ``"step"`` and
        ``"weights/{name}"`` for each variable (none while there is no copy)."""
        kept = self.__dict__.get("_best_weights")
        if kept is None:
            return {}
        step, weights = kept
        if not isinstance(weights, Mapping):
            log.warning(
                "%r: the strategy's get_weights() returned %s, not arrays by variable name: the "
                "copy of step %d's variables is not saved with the checkpoint",
                self, type(weights).__name__, step,
            )
            return {}
        named = {f"{WEIGHTS}{name}": np.asarray(value) for name, value in weights.items()}
        return {"step": np.asarray(step, dtype=np.int64), **named}

    def set_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Take back the copy ``get_arrays`` returned (none: drop any copy kept before)."""
        if "step" not in arrays:
            self.__dict__.pop("_best_weights", None)
            return
        weights = {
            name[len(WEIGHTS):]: value for name, value in arrays.items() if name.startswith(WEIGHTS)
        }
        self.__dict__["_best_weights"] = (int(arrays["step"]), weights)

    def _start_run(self, trainer: Trainer) -> None:
        if (
            self.restore_best_weights
            and trainer.steps_per_call > 1
            and not any(c is self for c in trainer.callbacks)
        ):
            raise ValueError(
                f"{self!r} is part of a composite criterion: with restore_best_weights and "
                f"steps_per_call={trainer.steps_per_call} it must be a callback of its own "
                "(Trainer(callbacks=[early, MaxSteps(n)]), not early | MaxSteps(n))"
            )

    def reason(self, q: Any) -> str:
        best, best_step, _, beaten = self.state()
        below = "" if beaten > 0.5 else f"; baseline {self.baseline:g} never beaten"
        restored = ", best weights restored" if self.restore_best_weights else ""
        return (
            f"{self.monitor} did not improve by more than {self.min_delta:g} for "
            f"{self.patience} {'step' if self.array_form else 'evaluation'}(s) (best "
            f"{_fmt(best)} at step "
            f"{int(best_step)}, stopped at step {q.step}{below}{restored})"
        )

    def __repr__(self) -> str:
        extra = "" if self.baseline is None else f", baseline={self.baseline:g}"
        extra += f", start_from={self.start_from}" if self.start_from else ""
        extra += ", restore_best_weights=True" if self.restore_best_weights else ""
        return (
            f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta:g}, "
            f"monitor={self.monitor!r}, mode={self.mode!r}{extra})"
        )


def _keep_best(
    early: EarlyStopping, trainer: Trainer, step: int, stop: Stop | None
) -> Stop | None:
    """Copy the variables at an improving step; set them back when ``early`` stops the run.
    Returns ``stop``, its reason corrected when there was no copy to set back."""
    strategy: Any = trainer.strategy
    best_step = int(early.state()[1])
    if best_step == step:
        early.__dict__["_best_weights"] = (step, strategy.get_weights())
    if stop is None:
        return None
    kept = early.__dict__.get("_best_weights")
    if kept is not None and kept[0] == best_step:
        strategy.set_weights(kept[1])
        return stop
    log.warning(
        "%r: no copy of the variables of the best step %d (the run resumed after it); "
        "the variables stay those of step %d", early, best_step, step,
    )
    missing = f", not restored: no copy of step {best_step}'s variables after the resume"
    reason = stop.reason.replace(", best weights restored", missing)
    return attrs.evolve(stop, reason=reason)
