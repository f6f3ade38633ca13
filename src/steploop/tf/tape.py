"""``TapeStep``: ``tf.GradientTape`` + ``apply_gradients``, with the gradients reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import tensorflow as tf

from steploop.strategy import StepOutput
from steploop.tf._base import TFStep


class TapeStep(TFStep):
    """One step: record ``loss`` on a gradient tape, apply its gradients, report them.

    Without ``var_list`` the variables are those the tape watched (every trainable variable the
    loss read). ``watch_accessed_variables=False`` watches only ``var_list``. ``loss`` returns a
    scalar tensor, or a dict with ``"loss"`` and optionally ``"values"``, a dict of named numbers
    to report in ``StepRecord.values`` and the history without differentiating them (accuracy,
    say). Targets besides the loss need one tape for several gradients: ``PersistentTapeStep``.

    >>> import keras, tensorflow as tf
    >>> x = tf.Variable(0.0, name="x")
    >>> step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1))
    >>> {name: float(g) for name, g in step.step().gradients.items()}
    {'x': -8.0}
    """

    reports_gradients: ClassVar[bool] = True

    def _loss_of(self, value: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        values: dict[str, tf.Tensor] = {}
        if isinstance(value, Mapping):
            extra = sorted(str(key) for key in value if key not in ("loss", "values"))
            if extra:
                raise self._fail(
                    ValueError(
                        f"TapeStep: loss returned targets {extra} besides 'loss'; a non-persistent "
                        "tape gives one gradient: use PersistentTapeStep for several targets"
                    )
                )
            if "loss" not in value:
                raise self._fail(ValueError("TapeStep: loss returned a dict without 'loss'"))
            values = self._values_of(value)
            value = value["loss"]
        return self._checked_loss(value), values

    def _update(self, *batch: Any) -> Any:
        with tf.GradientTape(watch_accessed_variables=self._watch_accessed) as tape:
            self._watch(tape)
            loss, values = self._loss_of(self._call(*batch))
        variables = self._resolve(tape)
        gradients, loss, values, code = self._apply(
            tape.gradient(loss, variables), variables, loss, values
        )
        return gradients, loss, self._with_code(values, code)

    def _output(self, result: Any) -> StepOutput:
        gradients, loss, values = result
        assert self._names is not None
        return StepOutput(
            loss=loss, gradients=dict(zip(self._names, gradients, strict=True)), values=values
        )
