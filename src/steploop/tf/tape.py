"""``TapeStep``: ``tf.GradientTape`` + ``apply_gradients``, with the gradients reported."""

from __future__ import annotations

from typing import Any, ClassVar

import tensorflow as tf

from steploop.outputs import step_output
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

    _targets = (
        "a non-persistent tape gives one gradient: use PersistentTapeStep for several targets"
    )

    def _update(self, *batch: Any) -> StepOutput:
        with tf.GradientTape(watch_accessed_variables=self._watch_accessed) as tape:
            self._watch(tape)
            loss, values, _ = self._split(self._call(*batch))
        variables = self._resolve(tape)
        gradients, loss, values, code = self._apply(
            tape.gradient(loss, variables), variables, loss, values
        )
        assert self._names is not None
        return step_output(self._names, loss, gradients, None, self._policy.with_code(values, code))
