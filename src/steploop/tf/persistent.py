"""``PersistentTapeStep``: one persistent tape, the gradients of several targets, released on time.

``forward`` returns a dict of named tensors. ``"loss"`` drives the update; every other entry is a
target whose gradients (with respect to the same variables) are reported in
``StepRecord.target_gradients``: the article's ``grad_z`` and ``grad_y`` from one tape. An
optional ``"values"`` entry holds named numbers to report, not differentiate (as for
``TapeStep``).

Eagerly (``compile=False``) the tape stays open while the step's callbacks run (a callback may
ask for more gradients with ``gradient(...)``); the Trainer's ``Release`` hook drops it after the
last callback, and on error. Compiled, the tape lives and dies inside the step.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from steploop.outputs import step_output
from steploop.strategy import StepOutput
from steploop.tf._base import TFStep


class PersistentTapeStep(TFStep):
    """One step with a persistent tape: update on ``"loss"``, report every target's gradients.

    >>> import keras, tensorflow as tf
    >>> x = tf.Variable(0.0, name="x")
    >>> def forward():
    ...     z = x - 4.0
    ...     return {"loss": z ** 2, "z": z}
    >>> out = PersistentTapeStep(forward, keras.optimizers.SGD(0.1)).step()
    >>> float(out.gradients["x"]), float(out.target_gradients["z"]["x"])
    (-8.0, 1.0)
    """

    reports_gradients: ClassVar[bool] = True
    _fn_label = "forward"
    _returns = "a dict of named tensors with a 'loss' entry"
    _targets = None
    _dict_only = True

    def __init__(self, forward: Any, optimizer: Any, var_list: Any = None, **options: Any) -> None:
        """``options``: ``watch_accessed_variables``, ``compile``, ``jit_compile`` and
        ``on_nonfinite``, as for ``TapeStep``."""
        super().__init__(forward, optimizer, var_list, **options)
        self._tape: tf.GradientTape | None = None
        self._outputs: dict[str, tf.Tensor] | None = None

    @property
    def tape(self) -> tf.GradientTape | None:
        """The open tape of the current step (eager only), or ``None`` once released."""
        return self._tape

    def _update(self, *batch: Any) -> StepOutput:
        self.release()
        tape = tf.GradientTape(persistent=True, watch_accessed_variables=self._watch_accessed)
        try:
            with tape:
                self._watch(tape)
                loss, values, outputs = self._split(self._call(*batch))
                outputs["loss"] = loss
            variables = self._resolve(tape)
            gradients = tape.gradient(outputs["loss"], variables)
            target_gradients = {
                key: tuple(
                    tape.gradient(
                        outputs[key], variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
                    )
                )
                for key in outputs
                if key != "loss"
            }
            gradients, loss, target_gradients, values, code = self._apply(
                gradients, variables, outputs["loss"], target_gradients, values
            )
            values = self._policy.with_code(values, code)
        except BaseException:
            del tape  # the traceback keeps this frame alive: do not let it keep the tape
            raise
        if tf.executing_eagerly():  # kept for the step's callbacks until release()
            self._tape, self._outputs = tape, outputs
        assert self._names is not None
        return step_output(self._names, loss, gradients, target_gradients, values)

    def release(self) -> None:
        """Drop the step's tape and outputs (the Trainer calls this after the step's callbacks)."""
        self._tape = None
        self._outputs = None

    def gradient(self, target: Any, sources: Any = None) -> dict[str, np.ndarray]:
        """Ask the current step's open tape for more gradients (eager mode, inside callbacks).

        ``target`` is the name of an entry ``forward`` returned; ``sources`` are variables
        (default: the step's variables). Returns NumPy arrays keyed by variable name.
        """
        if self._tape is None or self._outputs is None:
            why = (
                "compiled steps keep no tape after the step; pass compile=False"
                if self._compile
                else "the tape is released after each step's callbacks"
            )
            raise RuntimeError(f"PersistentTapeStep.gradient: no open tape ({why})")
        if target not in self._outputs:
            raise ValueError(
                f"PersistentTapeStep.gradient: target {target!r} is not among forward's outputs "
                f"{sorted(self._outputs)}"
            )
        variables = self._variables if sources is None else tuple(sources)
        assert variables is not None
        grads = self._tape.gradient(
            self._outputs[target], variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        return dict(zip(self._unique_names(variables), (g.numpy() for g in grads), strict=True))
