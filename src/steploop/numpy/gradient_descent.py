"""``GradientDescent``: ``params -= learning_rate * grad`` with a loss-and-gradient function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from steploop import _validate, checkpoint
from steploop.strategy import StepOutput, StepStrategy


class GradientDescent(StepStrategy):
    """Gradient descent on NumPy parameters.

    ``loss_and_grad(params)`` (or ``loss_and_grad(params, batch)`` with data) returns
    ``(loss, gradient)``. ``params`` is one array (passed as is, and named ``name``) or a mapping
    of names to arrays (passed as a dict; the gradient is then a dict with the same keys).

    >>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.25)
    >>> float(gd.step().loss), float(gd.params["x"])
    (16.0, 2.0)
    """

    reports_gradients: ClassVar[bool] = True

    def __init__(
        self,
        loss_and_grad: Callable[..., tuple[Any, Any]],
        params: Any,
        *,
        learning_rate: float,
        name: str = "x",
    ) -> None:
        self.loss_and_grad = _validate.callable_(
            "loss_and_grad", loss_and_grad, "a function returning (loss, gradient)"
        )
        self.learning_rate = _validate.number("learning_rate", learning_rate, positive=True)
        self._single = not isinstance(params, Mapping)
        if self._single:
            if not isinstance(name, str) or not name:
                raise TypeError(f"name must be a non-empty str, got {name!r}")
            params = {name: params}
        if not params:
            raise ValueError("params must hold at least one array, got an empty mapping")
        self.params: dict[str, np.ndarray] = {}
        for key, value in params.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"params names must be non-empty str, got {key!r}")
            if isinstance(value, (bool, np.bool_, str, bytes)):
                raise TypeError(f"params[{key!r}] must be numeric, got {value!r}")
            try:
                array = np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(
                    f"params[{key!r}] must be numeric, got {type(value).__name__}"
                ) from None
            if not np.all(np.isfinite(array)):
                raise ValueError(f"params[{key!r}] must be finite, got {array}")
            self.params[key] = array

    def step(self, batch: Any = None) -> StepOutput:
        arguments = (self._argument(),) if batch is None else (self._argument(), batch)
        result = self.loss_and_grad(*arguments)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(
                f"loss_and_grad must return a (loss, gradient) pair, got {type(result).__name__}"
            )
        loss, gradient = result
        gradients = {next(iter(self.params)): gradient} if self._single else gradient
        if not isinstance(gradients, Mapping) or set(gradients) != set(self.params):
            raise ValueError(
                f"loss_and_grad must return gradients for {sorted(self.params)}, "
                f"got {sorted(gradients) if isinstance(gradients, Mapping) else gradients!r}"
            )
        reported = {}
        for key, value in self.params.items():
            grad = np.asarray(gradients[key], dtype=np.float64)
            if grad.shape != value.shape:
                raise ValueError(
                    f"gradient of {key!r} has shape {grad.shape}, the parameter has {value.shape}"
                )
            reported[key] = grad
            self.params[key] = value - self.learning_rate * grad
        return StepOutput(loss=loss, gradients=reported)

    def _argument(self) -> Any:
        if self._single:
            return next(iter(self.params.values())).copy()
        return {key: value.copy() for key, value in self.params.items()}

    def variables(self) -> Mapping[str, np.ndarray]:
        return {key: value.copy() for key, value in self.params.items()}

    def save(self, prefix: str) -> None:
        """Write the parameters, by name, to ``prefix.params.npz`` (atomically)."""
        checkpoint.atomic_write(
            f"{prefix}.params.npz",
            lambda file: np.savez(file, **self.params),  # type: ignore[arg-type]
        )

    def restore(self, prefix: str) -> None:
        """Read the parameters back by name (in any order of ``params``); a parameter missing,
        extra, renamed or reshaped since the save is a ``ValueError`` naming it."""
        with np.load(f"{prefix}.params.npz") as saved:
            stored = {key: saved[key] for key in saved.files}
        checkpoint.check_variables(
            "GradientDescent.restore",
            prefix,
            {key: (value.shape, value.dtype.name) for key, value in stored.items()},
            {key: (value.shape, value.dtype.name) for key, value in self.params.items()},
        )
        for key in self.params:
            self.params[key] = np.array(stored[key], dtype=np.float64)

    def check(self, takes_batch: bool) -> None:
        """Check ``loss_and_grad`` takes params (and a batch when the Trainer has data)."""
        how = "(params, batch), since the Trainer has data" if takes_batch else "(params)"
        _validate.accepts("loss_and_grad", self.loss_and_grad, 1 + takes_batch, how)

    def __repr__(self) -> str:
        return f"GradientDescent(learning_rate={self.learning_rate:g}, params={list(self.params)})"
