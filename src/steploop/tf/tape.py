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
    loss read). ``watch_accessed_variables=False`` watches only ``var_list``. ``loss`` may return
    a scalar tensor or a dict whose only entry is ``"loss"``; targets besides it need one tape for
    several gradients: ``PersistentTapeStep``.

    >>> import keras, tensorflow as tf
    >>> x = tf.Variable(0.0, name="x")
    >>> step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1))
    >>> {name: float(g) for name, g in step.step().gradients.items()}
    {'x': -8.0}
    """

    reports_gradients: ClassVar[bool] = True

    def __init__(
        self,
        loss: Any,
        optimizer: Any,
        var_list: Any = None,
        *,
        watch_accessed_variables: bool = True,
        compile: bool = True,
    ) -> None:
        super().__init__(
            loss,
            optimizer,
            var_list,
            watch_accessed_variables=watch_accessed_variables,
            compile=compile,
        )

    def _loss_of(self, value: Any) -> tf.Tensor:
        if isinstance(value, Mapping):
            extra = sorted(str(key) for key in value if key != "loss")
            if extra:
                raise self._fail(
                    ValueError(
                        f"TapeStep: loss returned targets {extra} besides 'loss'; a non-persistent "
                        "tape gives one gradient: use PersistentTapeStep for several targets"
                    )
                )
            if "loss" not in value:
                raise self._fail(ValueError("TapeStep: loss returned a dict without 'loss'"))
            value = value["loss"]
        return self._checked_loss(value)

    def _update(self, *batch: Any) -> Any:
        with tf.GradientTape(watch_accessed_variables=self._watch_accessed) as tape:
            self._watch(tape)
            loss = self._loss_of(self._call(*batch))
        variables = self._resolve(tape)
        gradients, loss = self._apply(tape.gradient(loss, variables), variables, loss)
        return loss, gradients

    def _output(self, result: Any) -> StepOutput:
        loss, gradients = result
        assert self._names is not None
        return StepOutput(loss=loss, gradients=dict(zip(self._names, gradients, strict=True)))
