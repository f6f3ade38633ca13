"""``OptaxStep``: one optax update of a pytree of JAX arrays, as a steploop strategy.

Contract
--------
* ``OptaxStep(loss, params, optimizer, *, jit=True, on_nonfinite="apply")``: ``loss(params)``
  (or ``loss(params, batch)`` when the Trainer has data) returns a scalar, or the loss dict of
  every strategy (``steploop.outputs``: ``"loss"``, ``"values"``, further targets whose
  gradients are reported in ``StepOutput.target_gradients``); ``params`` is a pytree of
  floating-point arrays; ``optimizer`` an ``optax.GradientTransformation``.
* Inside, a step is a pure function ``(params, opt_state, *batch) -> (params, opt_state, output)``
  (``jax.jit``-compiled unless ``jit=False``); outside, ``step.params`` and ``step.opt_state``
  hold the current state. Nothing is donated: arrays the user passed or read stay valid.
* Variables and gradients are named by their pytree path joined with ``/`` (``layers/0/kernel``),
  made unique by ``steploop.outputs.unique``; a bare array is named ``params``.
* Dtypes are the user's: float32 parameters stay float32 (no global ``jax_enable_x64``). The
  Trainer's criteria compare in float64 on the host; a fused call (``steploop.jax.fused``)
  evaluates them in float64 inside its loop while the step itself is traced as a plain step is.
* ``on_nonfinite`` is a ``steploop.nonfinite`` policy, carried out functionally
  (``steploop.jax._guard``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import optax

from steploop import _validate, checks
from steploop.criteria_program import CriteriaProgram
from steploop.jax import _guard, checkpointing, fused
from steploop.nonfinite import NonFinite, ReportsNonFinite
from steploop.outputs import Arrays, CallsLoss, LossContract, evaluation, step_output
from steploop.python_loop import fused_or_plain, run_steps_in_python
from steploop.strategy import BatchCursor, FusedResult, StepOutput, StepStrategy

OWNER = "OptaxStep"


#: JAX's arrays as the loss contract checks them.
ARRAYS = Arrays(
    jnp.asarray,
    lambda a: jnp.issubdtype(a.dtype, jnp.floating),
    lambda a: jnp.issubdtype(a.dtype, jnp.integer),
    lambda a: a.dtype.name,
    lambda a: a.shape,
    "jnp.mean",
)


def path_names(tree: Any) -> tuple[str, ...]:
    """The names of ``tree``'s leaves: their paths joined by ``/``, made unique.

    >>> path_names({"layers": [{"kernel": 0.0, "bias": 0.0}], "scale": 1.0})
    ('layers/0/bias', 'layers/0/kernel', 'scale')
    """
    return tuple(checkpointing.named_leaves(tree))


def _checked_params(params: Any) -> Any:
    """``params`` as a pytree of JAX arrays (copies), or an error naming the bad leaf."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ValueError(
            f"{OWNER}: params holds no array; give a pytree (dict, list, tuple) of "
            "floating-point arrays"
        )
    for path, leaf in leaves:
        where = f"params{jax.tree_util.keystr(path)}"
        if isinstance(leaf, (bool, np.bool_, str, bytes)) or leaf is None:
            raise TypeError(f"{OWNER}: {where} must be a floating-point array, got {leaf!r}")
        array = ARRAYS.numeric(leaf)
        if array is None:
            raise TypeError(
                f"{OWNER}: {where} must be a floating-point array, got {type(leaf).__name__}"
            )
        if not ARRAYS.floating(array):
            raise TypeError(
                f"{OWNER}: {where} must be a floating-point array, got dtype {array.dtype.name}; "
                "pass e.g. jnp.asarray(value, jnp.float32)"
            )
    # copies, strongly typed: jnp.array(0.0) is float32 as its dtype says, in every step
    return jax.tree_util.tree_map(lambda leaf: jnp.array(leaf, dtype=jnp.result_type(leaf)), params)


def _check_optimizer(optimizer: Any) -> Any:
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if isinstance(optimizer, type) or (callable(optimizer) and not hasattr(optimizer, "init")):
        got = getattr(optimizer, "__name__", type(optimizer).__name__)
        raise TypeError(
            f"{OWNER}: optimizer must be an optax.GradientTransformation, got {got}; call it, "
            "e.g. optax.sgd(learning_rate=0.1)"
        )
    got = f"the string {optimizer!r}" if isinstance(optimizer, str) else type(optimizer).__name__
    raise TypeError(
        f"{OWNER}: optimizer must be an optax.GradientTransformation such as "
        f"optax.sgd(learning_rate=0.1), got {got}"
    )


def _holds_rate(state: Any) -> bool:
    hyperparams = getattr(state, "hyperparams", None)
    return isinstance(hyperparams, dict) and "learning_rate" in hyperparams


def _rate_of(state: Any) -> Any:
    """The ``learning_rate`` an ``optax.inject_hyperparams`` state holds, in ``state`` or in a
    part of a chain's state (a tuple); ``None`` when there is none."""
    if _holds_rate(state):
        return state.hyperparams["learning_rate"]
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        return next((r for r in map(_rate_of, state) if r is not None), None)
    return None


def _with_rate(state: Any, rate: float) -> Any:
    """``state`` with the first ``learning_rate`` hyperparameter set to ``rate`` (its dtype)."""
    if _holds_rate(state):
        old = state.hyperparams["learning_rate"]
        new = jnp.asarray(rate, dtype=jnp.result_type(old))
        return state._replace(hyperparams={**state.hyperparams, "learning_rate": new})
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        index = next(i for i, part in enumerate(state) if _rate_of(part) is not None)
        return (*state[:index], _with_rate(state[index], rate), *state[index + 1 :])
    raise AssertionError("no learning_rate in the state")


class OptaxStep(ReportsNonFinite, CallsLoss, StepStrategy):
    """An optax update of ``params`` by the gradient of ``loss``.

    >>> import jax.numpy as jnp, optax
    >>> step = OptaxStep(lambda p: (p["x"] - 4.0) ** 2, {"x": jnp.array(0.0)}, optax.sgd(0.25))
    >>> out = step.step()
    >>> float(out.loss), float(out.gradients["x"]), float(step.params["x"])
    (16.0, -8.0, 2.0)
    """

    reports_gradients: ClassVar[bool] = True
    _names: tuple[str, ...]
    _leading = ("params",)

    def __init__(
        self,
        loss: Callable[..., Any],
        params: Any,
        optimizer: Any,
        *,
        jit: bool = True,
        on_nonfinite: str = "apply",
    ) -> None:
        self._fn = _validate.callable_(
            f"{OWNER}: loss", loss, "a function of params returning a scalar loss"
        )
        self._optimizer = _check_optimizer(optimizer)
        checks.flags(OWNER, jit=jit)
        self._jit = jit
        self._policy = NonFinite.of(OWNER, on_nonfinite)
        self._contract = LossContract(OWNER, "loss", targets=None, array="array", arrays=ARRAYS)
        self.params = _checked_params(params)
        self._names = path_names(self.params)
        # strongly typed as the params are (a weak leaf would compile the fused loop once more)
        self.opt_state = fused.strong(self._optimizer.init(self.params))
        self._function: Callable[..., Any] = jax.jit(self._update) if jit else self._update
        self._fused = fused.FusedCalls(self)
        self._measure: Callable[..., Any] = jax.jit(self._evaluation) if jit else self._evaluation

    @property
    def optimizer(self) -> Any:
        return self._optimizer

    @property
    def jitted(self) -> bool:
        return self._jit

    # -- StepStrategy -------------------------------------------------------------------------
    def step(self, batch: Any = None) -> StepOutput:
        arguments = self._arguments(batch, self.as_batch)
        self.params, self.opt_state, trees = self._function(self.params, self.opt_state, *arguments)
        return fused.output(trees)

    def evaluate(self, *batch: Any) -> dict[str, float]:
        """The loss and its ``"values"`` on ``batch`` as host floats (``Evaluates``): the loss
        alone, jit-compiled unless ``jit=False``; the params and the optimiser state stay."""
        loss, values = self._measure(self.params, *(self.as_batch(part) for part in batch))
        return evaluation(OWNER, loss, values)

    def as_batch(self, batch: Any) -> Any:
        """``batch`` with every leaf a JAX array, or an error naming the bad part."""
        return jax.tree_util.tree_map(
            lambda leaf: checks.batch_part(OWNER, leaf, jnp.asarray), batch
        )

    def variables(self) -> Mapping[str, np.ndarray]:
        leaves = jax.tree_util.tree_leaves(self.params)
        return {name: np.array(leaf) for name, leaf in zip(self._names, leaves, strict=True)}

    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (``LearningRateControl``), held in the optimiser's
        state by ``optax.inject_hyperparams`` (alone or in a chain); without one, a ``TypeError``
        saying how to make the optimiser."""
        rate = _rate_of(self.opt_state)
        if rate is None:
            raise TypeError(
                f"{OWNER}.learning_rate: the optimiser's state holds no learning rate; make the "
                "optimiser with optax.inject_hyperparams, e.g. "
                "optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)"
            )
        return float(rate)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.learning_rate  # noqa: B018 (the TypeError above where there is none)
        rate = _validate.number("learning_rate", value, positive=True)
        self.opt_state = _with_rate(self.opt_state, rate)

    # -- checkpoints (steploop.jax.checkpointing) -------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """A host copy of the parameters by name (``WeightsCopyable``): what ``variables()``
        returns, each leaf copied to a NumPy array under its ``/``-joined pytree path."""
        leaves = jax.tree_util.tree_leaves(self.params)
        return {
            name: np.array(leaf, copy=True) for name, leaf in zip(self._names, leaves, strict=True)
        }

    def set_weights(self, weights: Any) -> None:
        """Set the parameters to a copy ``get_weights`` returned (``WeightsCopyable``), by name,
        bit for bit: the pytree is rebuilt with the params' structure and dtypes; a name missing
        or extra, or a shape that differs, is a ``ValueError`` naming it."""
        from steploop.named_variables import check_weights

        check_weights(OWNER, weights, self._names)
        current = jax.tree_util.tree_leaves(self.params)
        leaves = []
        for name, leaf in zip(self._names, current, strict=True):
            value = np.asarray(weights[name])
            if value.shape != leaf.shape:
                raise ValueError(
                    f"{OWNER}.set_weights: weights[{name!r}] has shape {value.shape}; the "
                    f"parameter has {leaf.shape}"
                )
            if value.dtype.kind == "V" and value.dtype.itemsize == leaf.dtype.itemsize:
                value = value.view(leaf.dtype)  # bfloat16 read back from an .npz: its bytes
            leaves.append(jnp.asarray(value, dtype=leaf.dtype))
        structure = jax.tree_util.tree_structure(self.params)
        self.params = jax.tree_util.tree_unflatten(structure, leaves)

    def save(self, prefix: str) -> None:
        """Write the parameters and the optimiser state by pytree path under ``prefix``."""
        checkpointing.save(prefix, self.params, self.opt_state, type(self._optimizer).__name__)

    def restore(self, prefix: str) -> None:
        """Read the parameters and the optimiser state back by pytree path; a variable missing,
        extra, renamed, reshaped or re-typed is a ``ValueError`` naming it."""
        self.params, self.opt_state = checkpointing.restore(
            f"{OWNER}.restore", prefix, self.params, self.opt_state
        )

    # -- fused calls (steploop.jax.fused) ----------------------------------------------------
    @property
    def ready_to_fuse(self) -> bool:
        """Always: a JAX step builds no state at its first call."""
        return True

    @property
    def steps_in_python(self) -> bool:
        """Whether its fused calls are the core's Python loop (``jit=False``): ``"auto"`` then
        takes one step a call (``steploop.autofuse``)."""
        return not self._jit

    def run_steps(
        self,
        count: int,
        first_step: int,
        stopper: CriteriaProgram,
        feed: BatchCursor | None,
        keep_gradients: bool | str,
    ) -> FusedResult:
        """Up to ``count`` steps in one jitted ``lax.while_loop`` (see ``steploop.jax.fused``);
        with ``jit=False``, ``count`` plain steps in Python."""
        if not self._jit:
            return run_steps_in_python(self, count, first_step, stopper, feed, keep_gradients)
        return fused_or_plain(self, self._fused, count, first_step, stopper, feed, keep_gradients)

    # -- the pure step ------------------------------------------------------------------------
    def _update(self, params: Any, opt_state: Any, *batch: Any) -> tuple[Any, Any, dict[str, Any]]:
        """One step as a pure function: the new state and the step's outputs as plain trees."""

        def objective(p: Any) -> tuple[dict[str, Any], Any]:
            loss, values, targets = self._contract.checked(self._fn(p, *batch))
            scalars = {"loss": loss, **{key: jnp.sum(t) for key, t in targets.items()}}
            return scalars, values

        scalars, pullback, values = jax.vjp(objective, params, has_aux=True)

        def gradient(key: str) -> list[Any]:
            unit = {
                k: jnp.ones_like(v) if k == key else jnp.zeros_like(v) for k, v in scalars.items()
            }
            return jax.tree_util.tree_leaves(pullback(unit)[0])

        gradients = gradient("loss")
        targets = {key: gradient(key) for key in scalars if key != "loss"}
        holder = _guard.Holder((params, opt_state))
        grads_tree = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), gradients)

        def apply(state: Any) -> Any:
            updates, new_opt = self._optimizer.update(grads_tree, state[1], state[0])
            return optax.apply_updates(state[0], updates), new_opt

        flags = []
        if self._policy.reports:
            flags = [_guard.not_finite(scalars["loss"]), *map(_guard.not_finite, gradients)]
        code = self._policy.guard(
            _guard.JAX_GUARD, flags, _guard.Action(holder, apply), lambda: _guard.Saved(holder)
        )
        output = step_output(
            self._names,
            scalars["loss"],
            gradients,
            targets,
            self._policy.with_code(values, code),
        )
        new_params, new_opt_state = holder.state
        return (
            new_params,
            new_opt_state,
            {
                "loss": output.loss,
                "values": dict(output.values),
                "gradients": dict(output.gradients or {}),
                "target_gradients": {
                    k: dict(v) for k, v in (output.target_gradients or {}).items()
                },
            },
        )

    def _evaluation(self, params: Any, *batch: Any) -> tuple[Any, dict[str, Any]]:
        """The loss and the values at ``params``, as a pure function (no gradient)."""
        return self._contract.checked(self._fn(params, *batch))[:2]

    def __repr__(self) -> str:
        return (
            f"OptaxStep(params={list(self._names)}, jit={self._jit}, "
            f"on_nonfinite={self._policy.policy!r})"
        )
