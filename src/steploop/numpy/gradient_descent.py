"""``GradientDescent``: ``params -= learning_rate * grad`` with a loss-and-gradient function.

It uses the same core pieces as the TensorFlow strategies: the loss contract
(``steploop.outputs``: ``"loss"``, ``"values"``, targets), ``on_nonfinite``
(``steploop.nonfinite``, with its ``HOST_GUARD``; NumPy supplies only the saved parameters),
and fused calls through the core default ``steploop.python_loop.run_steps_in_python``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from steploop import _validate, checkpoint
from steploop.named_variables import check_weights
from steploop.nonfinite import HOST_GUARD, NonFinite, ReportsNonFinite
from steploop.outputs import LossContract, evaluation, step_output
from steploop.strategy import StepOutput, StepStrategy


def _not_finite(value: Any) -> bool:
    return not bool(np.all(np.isfinite(value)))


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as a numeric NumPy array, or ``None``."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return None
    return array if array.dtype.kind in "biuf" else None


class _Saved:
    """The parameters before a ``rollback`` step."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self._params = params
        self._saved = dict(params)  # the arrays are replaced, never changed in place

    def not_finite(self) -> bool:
        return any(_not_finite(value) for value in self._params.values())

    def put_back(self) -> None:
        self._params.update(self._saved)


class GradientDescent(ReportsNonFinite, StepStrategy):
    """Gradient descent on NumPy parameters.

    ``loss_and_grad(params)`` (or ``loss_and_grad(params, batch)`` with data) returns
    ``(loss, gradient)``. ``params`` is one array (passed as is, and named ``name``) or a mapping
    of names to arrays (passed as a dict; the gradient is then a dict with the same keys).

    As for every strategy (see ``steploop.outputs``), the loss may be a dict: ``"loss"``, an
    optional ``"values"`` dict of numbers to record in the history, and further targets. With
    targets, the gradient is a dict of gradients by target, ``"loss"`` among them, and each
    further target's gradient is reported in ``StepOutput.target_gradients``.
    ``on_nonfinite`` is ``"apply"``, ``"skip"``, ``"stop"`` or ``"rollback"`` (see
    ``steploop.nonfinite``).

    >>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.25)
    >>> float(gd.step().loss), float(gd.params["x"])
    (16.0, 2.0)
    >>> def f(x):
    ...     outputs = {"loss": (x - 4) ** 2, "z": x, "values": {"x": x}}
    ...     return outputs, {"loss": 2 * (x - 4), "z": 1.0}
    >>> out = GradientDescent(f, 0.0, learning_rate=0.25).step()
    >>> float(out.values["x"]), float(out.target_gradients["z"]["x"])
    (0.0, 1.0)
    """

    reports_gradients: ClassVar[bool] = True
    _names: tuple[str, ...]

    def __init__(
        self,
        loss_and_grad: Callable[..., tuple[Any, Any]],
        params: Any,
        *,
        learning_rate: float,
        name: str = "x",
        on_nonfinite: str = "apply",
    ) -> None:
        self.loss_and_grad = _validate.callable_(
            "loss_and_grad", loss_and_grad, "a function returning (loss, gradient)"
        )
        self.learning_rate = learning_rate
        self._policy = NonFinite.of("GradientDescent", on_nonfinite)
        self._contract = LossContract(
            "GradientDescent", "loss_and_grad", targets=None, array="array"
        )
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
        self._names = tuple(self.params)

    @property
    def learning_rate(self) -> float:
        """The step size of the next step (``LearningRateControl``)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._learning_rate = _validate.number("learning_rate", value, positive=True)

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of the parameters by name (``WeightsCopyable``)."""
        return {key: value.copy() for key, value in self.params.items()}

    def set_weights(self, weights: Any) -> None:
        """Set the parameters to a copy ``get_weights`` returned (``WeightsCopyable``)."""
        check_weights(type(self).__name__, weights, self._names)
        self.params.update({key: np.array(value, copy=True) for key, value in weights.items()})

    def evaluate(self, *batch: Any) -> dict[str, float]:
        """The loss and its ``"values"`` at the current parameters, as host floats, without an
        update (``Evaluates``; the gradient ``loss_and_grad`` returns is not used).

        >>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 1.0, learning_rate=0.1)
        >>> gd.evaluate(), float(gd.params["x"])
        ({'loss': 9.0}, 1.0)
        """
        value, _ = self._call(*batch)
        parts = self._contract.split(value)
        return evaluation(type(self).__name__, parts.loss, self._contract.values(parts, _numeric))

    def _call(self, *batch: Any) -> tuple[Any, Any]:
        result = self.loss_and_grad(self._argument(), *batch)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(
                f"loss_and_grad must return a (loss, gradient) pair, got {type(result).__name__}"
            )
        return result

    def step(self, batch: Any = None) -> StepOutput:
        value, gradient = self._call() if batch is None else self._call(batch)
        parts = self._contract.split(value)
        values = self._contract.values(parts, _numeric)
        others = {}
        if parts.targets:  # then a gradient per target, "loss" among them
            if not isinstance(gradient, Mapping) or set(gradient) != {"loss", *parts.targets}:
                raise ValueError(
                    "loss_and_grad returned targets besides 'loss', so its gradient must be a "
                    f"dict with a gradient for each of {sorted(['loss', *parts.targets])}, got "
                    f"{sorted(gradient) if isinstance(gradient, Mapping) else gradient!r}"
                )
            gradient, others = gradient["loss"], {key: gradient[key] for key in parts.targets}
        gradients = self._checked(gradient, "gradient")
        target_gradients = {
            key: self._checked(g, f"gradient of {key!r}") for key, g in others.items()
        }
        rate = self.learning_rate

        def update() -> None:
            for key, grad in zip(self._names, gradients, strict=True):
                self.params[key] = self.params[key] - rate * grad

        flags = (
            [_not_finite(parts.loss), *map(_not_finite, gradients)] if self._policy.reports else []
        )
        code = self._policy.guard(HOST_GUARD, flags, update, lambda: _Saved(self.params))
        return step_output(
            self._names,
            parts.loss,
            gradients,
            target_gradients if parts.targets else None,
            self._policy.with_code(values, code),
        )

    def _checked(self, gradient: Any, what: str) -> list[np.ndarray]:
        """``gradient`` (one array, or a dict like ``params``) as arrays in ``params`` order."""
        gradients = {self._names[0]: gradient} if self._single else gradient
        if not isinstance(gradients, Mapping) or set(gradients) != set(self.params):
            raise ValueError(
                f"loss_and_grad must return gradients for {sorted(self.params)}, "
                f"got {sorted(gradients) if isinstance(gradients, Mapping) else gradients!r}"
            )
        self._contract.check_gradients(self._names, [gradients[k] for k in self._names], "params")
        checked = []
        for key, value in self.params.items():
            grad = np.asarray(gradients[key], dtype=np.float64)
            if grad.shape != value.shape:
                raise ValueError(
                    f"{what} of {key!r} has shape {grad.shape}, the parameter has {value.shape}"
                    if what == "gradient"
                    else f"{what} for {key!r} has shape {grad.shape}, the parameter has "
                    f"{value.shape}"
                )
            checked.append(grad)
        return checked

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
