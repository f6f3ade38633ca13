"""``MinimizeStep``: the ``optimizer.minimize(loss, var_list)`` step, on any Keras optimizer.

Keras 3 optimizers lost ``minimize``; this strategy gives its meaning back (a tape, then
``apply_gradients``, every update waiting for all gradients: ``steploop.tf._apply``) and calls the
optimizer's own ``minimize`` where one exists (``tf_keras``). It reports the loss, no gradients.
"""

from __future__ import annotations

from typing import Any, ClassVar

import tensorflow as tf

from steploop.strategy import StepOutput
from steploop.tf._base import TFStep


class MinimizeStep(TFStep):
    """One ``minimize`` step of ``loss`` (a function returning a scalar tensor) over ``var_list``.

    >>> import keras, tensorflow as tf
    >>> x = tf.Variable(0.0, name="x")
    >>> step = MinimizeStep(lambda: (x - 4.0) ** 2, [x], keras.optimizers.SGD(0.1))
    >>> float(step.step().loss), round(float(x.numpy()), 6)
    (16.0, 0.8)
    """

    reports_gradients: ClassVar[bool] = False

    def __init__(
        self,
        loss: Any,
        var_list: Any,
        optimizer: Any,
        *,
        compile: bool = True,
        jit_compile: bool | str = "auto",
        on_nonfinite: str = "apply",
    ) -> None:
        if var_list is None:
            raise TypeError("MinimizeStep: var_list is required, as for optimizer.minimize")
        super().__init__(
            loss,
            optimizer,
            var_list,
            compile=compile,
            jit_compile=jit_compile,
            on_nonfinite=on_nonfinite,
        )
        self._own_minimize = callable(getattr(optimizer, "minimize", None))
        if self._own_minimize and on_nonfinite != "apply":
            raise ValueError(
                f"MinimizeStep: on_nonfinite={on_nonfinite!r} checks the gradients before the "
                f"update, but {type(optimizer).__name__}.minimize computes and applies them in "
                "one call; use TapeStep, or a Keras 3 optimizer"
            )
        self._probed = False

    @property
    def uses_own_minimize(self) -> bool:
        """True when the optimizer's own ``minimize`` does the update."""
        return self._own_minimize

    def _update(self, *batch: Any) -> StepOutput:
        variables = self._var_list
        assert variables is not None
        if not self._own_minimize:
            with tf.GradientTape() as tape:
                loss = self._checked_loss(self._call(*batch))
            _, loss, code = self._apply(tape.gradient(loss, variables), variables, loss)
            return StepOutput(loss=loss, values=self._policy.with_code({}, code))
        if not self._probed:  # once: name a variable the loss ignores, as the tape path does
            with tf.GradientTape() as tape:
                probe = self._checked_loss(self._call(*batch))
            self._checked_gradients(tape.gradient(probe, variables), variables)
            self._probed = True
        captured = []

        def loss_fn() -> tf.Tensor:
            value = self._checked_loss(self._call(*batch))
            captured.append(value)
            return value

        ordered = [variables[i] for i in self._canonical(variables)]  # see checkpointing
        self._optimizer.minimize(loss_fn, var_list=ordered)
        return StepOutput(loss=captured[0])
