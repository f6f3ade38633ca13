"""``TFStep``, the base of the TensorFlow strategies: arguments, compiling, loss checks.

A TensorFlow strategy writes ``_update(*batch)``, the graph-compatible body of one step returning
its ``StepOutput``; ``TFStep`` runs it eagerly or as a ``tf.function`` (called through
``steploop.tf._flatcall``), fuses K steps into one compiled call (``steploop.tf.fused``), and
relays a mistake found while tracing to the caller as the error steploop raised. The rest is the
core's, shared with every framework (see ``docs/architecture.md``): the loss contract, the
checks, ``on_nonfinite``, the fused loop, variables and restore by name.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from steploop import _validate, checks, variable_record
from steploop.criteria_program import CriteriaProgram
from steploop.nonfinite import NonFinite, ReportsNonFinite
from steploop.outputs import Arrays, CallsLoss, LossContract, evaluation
from steploop.python_loop import fused_or_plain, run_steps_in_python
from steploop.relay import ErrorRelay
from steploop.strategy import BatchCursor, FusedResult, StepOutput, StepStrategy, batches_from
from steploop.tf import _apply, checkpointing, fused
from steploop.tf._flatcall import ConcreteCalls
from steploop.tf.naming import variable_name

log = logging.getLogger("steploop")


def _is_variable(value: Any) -> bool:
    return isinstance(value, (tf.Variable, keras.Variable))


def check_eager(owner: str) -> None:
    """Refuse a step taken while TensorFlow builds a graph (a Trainer inside a ``tf.function``)."""
    if not tf.executing_eagerly():
        raise RuntimeError(
            f"{owner}: a Trainer runs its own compiled steps and must be called from eager "
            "Python, not inside a tf.function; call trainer.run() outside it (for speed, keep "
            "the strategy's compile=True, the default, and fuse steps with "
            "Trainer(steps_per_call=K))"
        )


def _shape(tensor: tf.Tensor) -> tuple[int | None, ...] | None:
    return None if tensor.shape.rank is None else tuple(tensor.shape)


#: TensorFlow's tensors as the loss contract checks them.
ARRAYS = Arrays(
    tf.convert_to_tensor,
    lambda t: t.dtype.is_floating,
    lambda t: t.dtype.is_integer,
    lambda t: t.dtype.name,
    _shape,
    "tf.reduce_mean",
)


class TFStep(checkpointing.ByName, ReportsNonFinite, CallsLoss, StepStrategy):
    """Base of the TensorFlow strategies (internal): checks, names, compiling."""

    _name_of = staticmethod(variable_name)
    _to_numpy = staticmethod(lambda variable: variable.numpy())
    _assign = staticmethod(lambda variable, value: variable.assign(value))

    _fn_label = "loss"
    _returns = "a scalar loss tensor"
    #: The hint when the loss returns targets (``None``: targets are reported), see ``outputs``.
    _targets: str | None = "this strategy computes one gradient"
    _dict_only = False

    def __init__(
        self,
        loss: Callable[..., Any],
        optimizer: Any,
        var_list: Any = None,
        *,
        watch_accessed_variables: bool = True,
        compile: bool = True,
        jit_compile: bool | str = "auto",
        on_nonfinite: str = "apply",
    ) -> None:
        owner = type(self).__name__
        self._fn = _validate.callable_(
            f"{owner}: {self._fn_label}", loss, f"a function returning {self._returns}"
        )
        self._optimizer = checks.optimizer(
            owner,
            optimizer,
            "apply_gradients",
            "keras.optimizers.SGD(learning_rate=0.01)",
            lambda kind: (
                f"keras.optimizers.{kind.__name__}"
                if getattr(keras.optimizers, kind.__name__, None) is kind
                else kind.__name__
            ),
            _is_variable,
        )
        kind = "a tf.Variable or keras.Variable"
        self._var_list = checks.var_list(owner, var_list, _is_variable, kind, variable_name)
        checks.compiling(
            owner, compile, jit_compile, watch_accessed_variables=watch_accessed_variables
        )
        self._policy = NonFinite.of(owner, on_nonfinite)
        checks.rollback(owner, on_nonfinite, optimizer, "a Keras 3 optimizer")
        if not watch_accessed_variables and self._var_list is None:
            raise ValueError(
                f"{owner}: watch_accessed_variables=False watches only var_list, "
                "and var_list is None: nothing would be differentiated"
            )
        self._contract = LossContract(
            owner, self._fn_label, targets=self._targets, dict_only=self._dict_only, arrays=ARRAYS
        )
        self._watch_accessed = watch_accessed_variables
        self._compile = compile
        #: XLA or not; ``None`` until the first step decides ``jit_compile="auto"``
        self._jit: bool | None = None if jit_compile == "auto" and compile else jit_compile is True
        self._specs: dict[str, Any] | None = None
        relay = ErrorRelay()  # a check's error while tracing reaches step's caller as is
        self._traced, self._checking, self._fail = relay.call, relay.checking, relay.fail
        self._calls = ConcreteCalls(self._traced)
        self._fused = fused.FusedCalls(self._calls)
        self._loops = self._fused.loops
        self._function: Callable[..., Any] | None = None
        self._measure: Callable[..., Any] | None = None
        if self._var_list is not None:
            self._set_variables(self._var_list)

    # -- StepStrategy -----------------------------------------------------------------------
    @property
    def optimizer(self) -> Any:
        return self._optimizer

    @property
    def compiled(self) -> bool:
        return self._compile

    @property
    def jit_compiled(self) -> bool | None:
        """Whether steps run under XLA (``None``: ``"auto"``, until the first step decides)."""
        return self._jit

    def step(self, batch: Any = None) -> StepOutput:
        check_eager(type(self).__name__)
        arguments = self._arguments(batch, self._as_batch)
        if self._pending_restore is not None:
            self._restore_pending(arguments)
        if not self._compile:
            return self._traced(self._update, *arguments)
        if self._function is None and self._jit is None:
            output = self._first_call(arguments)
        else:
            self._function = self._function or self._compiled(bool(arguments), bool(self._jit))
            output = self._calls.invoke(self._function, arguments)
        if self._specs is None:
            self._specs = fused.spec_of(output)
        return output

    def _compiled(self, takes_batch: bool, jit: bool) -> Callable[..., Any]:
        """The compiled step: a plain function of a fixed arity (no bound method, no ``*args``)
        and, without data, no retracing policy."""

        def update() -> StepOutput:
            return self._update()

        def update_on(batch: Any) -> StepOutput:
            return self._update(batch)

        step = update_on if takes_batch else update
        return tf.function(step, reduce_retracing=takes_batch, jit_compile=jit)

    def _first_call(self, arguments: tuple[Any, ...]) -> StepOutput:
        """``jit_compile="auto"``: the first step under XLA, and XLA for good if it compiles;
        else a plain graph for good, said in one ``steploop`` log line. A step that does not
        compile changed nothing (XLA runs all or nothing), so the plain step is the first."""
        self._function = self._compiled(bool(arguments), jit=True)
        try:
            output = self._calls.invoke(self._function, arguments)
        except tf.errors.OpError as error:
            if "XLA" not in str(error) and "jit" not in str(error).lower():
                raise
            first = re.sub(r"\[[^\]]*\]", "", str(error).strip().splitlines()[0])[:300]
            log.info(
                "%s: the step does not compile with XLA (%s); it runs as a plain graph, "
                "jit_compile=False",
                type(self).__name__,
                first,
            )
            self._jit, self._function = False, self._compiled(bool(arguments), jit=False)
            return self._calls.invoke(self._function, arguments)
        self._jit = True
        return output

    def _as_batch(self, batch: Any) -> Any:
        """``batch`` with every part a tensor (tensors, arrays, numbers, nested in tuples, lists
        and dicts), or a clear error: a ragged or non-numeric part fails here, naming the data."""
        leaves = tf.nest.flatten(batch)
        if all(isinstance(leaf, tf.Tensor) for leaf in leaves):
            return batch
        owner = type(self).__name__
        return tf.nest.map_structure(
            lambda leaf: checks.batch_part(owner, leaf, tf.convert_to_tensor), batch
        )

    # -- fused steps ------------------------------------------------------------------------
    def prepare_data(self, data: Any) -> Any:
        """A ``tf.data.Dataset`` gets a prefetch, so the next batches are ready before the step."""
        if isinstance(data, tf.data.Dataset):
            return data.prefetch(tf.data.AUTOTUNE)
        return data

    def data_from(self, data: Any, position: int) -> Any:
        """A ``tf.data.Dataset`` skips the consumed batches inside the pipeline."""
        if position and isinstance(data, tf.data.Dataset):
            return iter(data.skip(position))
        return batches_from(data, position)

    @property
    def ready_to_fuse(self) -> bool:
        """Eager strategies fuse in a Python loop; compiled ones after one plain step (which builds
        the variables and the optimizer's slots, and tells the outputs' dtypes and shapes)."""
        return not self._compile or self._specs is not None

    @property
    def steps_in_python(self) -> bool:
        """Whether its fused calls are the core's Python loop (``compile=False``): ``"auto"``
        then takes one step a call (``steploop.autofuse``)."""
        return not self._compile

    def run_steps(
        self,
        count: int,
        first_step: int,
        stopper: CriteriaProgram,
        feed: BatchCursor | None,
        keep_gradients: bool | str,
    ) -> FusedResult:
        """Run up to ``count`` steps in one compiled call (see ``steploop.tf.fused``)."""
        check_eager(type(self).__name__)
        if not self._compile or self._specs is None:
            return run_steps_in_python(self, count, first_step, stopper, feed, keep_gradients)
        if self._fused.loop is None:
            jit = bool(self._jit)
            self._fused.loop = fused.Loop(self._update, self._specs, jit, self._graph_stop)
        return fused_or_plain(self, self._fused, count, first_step, stopper, feed, keep_gradients)

    # -- for subclasses ---------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The Keras optimizer's learning rate for the next step (``LearningRateControl``)."""
        return float(np.asarray(self.optimizer.learning_rate))

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        rate = self.optimizer.learning_rate
        if not hasattr(rate, "assign"):
            raise TypeError(
                f"{type(self).__name__}.learning_rate: the optimizer's learning rate is "
                f"{type(rate).__name__}, not a variable (a LearningRateSchedule?); pass a "
                "number to the optimizer to set it from a callback"
            )
        rate.assign(_validate.number("learning_rate", value, positive=True))

    def evaluate(self, *batch: Any) -> dict[str, float]:
        """The loss and its ``"values"`` on ``batch`` as host floats, with no tape and no update
        (``Evaluates``): a cached ``tf.function`` unless ``compile=False``."""
        check_eager(type(self).__name__)
        if self._measure is None:

            def measure(*parts: Any) -> Any:
                return self._split(self._call(*parts))[:2]

            compiled = tf.function(measure, reduce_retracing=True, jit_compile=bool(self._jit))
            self._measure = compiled if self._compile else measure
        loss, values = self._traced(self._measure, *map(self._as_batch, batch))
        return evaluation(type(self).__name__, loss, values)

    def _update(self, *batch: Any) -> StepOutput:
        """One step's graph-compatible body (variables updated), returning its output."""
        raise NotImplementedError

    def _call(self, *batch: Any) -> Any:
        return self._fn(*batch)

    def _checked_loss(self, value: Any) -> tf.Tensor:
        """``value`` as a floating scalar tensor, or a clear error naming what is wrong."""
        with self._checking():
            return self._contract.number(value, "loss")

    def _split(self, value: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """What the loss returned as ``(loss, values, targets)``, checked by the loss contract."""
        with self._checking():
            return self._contract.checked(value)

    def _resolve(self, tape: tf.GradientTape) -> tuple[Any, ...]:
        """The variables to update: ``var_list``, or those the tape watched."""
        if self._var_list is not None:
            return self._var_list
        watched = tuple(v for v in tape.watched_variables() if getattr(v, "trainable", True))
        if not watched:
            owner = type(self).__name__
            raise self._fail(variable_record.no_variables(owner, self._fn_label, "optimise"))
        return self._adopt(watched)

    def _checked_gradients(self, gradients: Sequence[Any], variables: Sequence[Any]) -> None:
        """Raise naming every variable the loss does not depend on."""
        if any(g is None for g in gradients):
            with self._checking():
                self._contract.check_gradients(self._unique_names(variables), gradients, "var_list")

    def _apply(
        self, gradients: Sequence[Any], variables: Sequence[Any], loss: Any, *others: Any
    ) -> tuple[Any, ...]:
        """Check ``gradients`` and apply them to ``variables`` under ``on_nonfinite``; return
        ``(gradients, loss, *others, code)``, pinned (see ``steploop.tf._apply.apply``)."""
        self._checked_gradients(gradients, variables)
        order = self._canonical(variables)  # slots in name order (see steploop.tf.checkpointing)
        return _apply.apply(
            self._policy, self._optimizer, gradients, variables, order, loss, *others
        )

    def _watch(self, tape: tf.GradientTape) -> None:
        if self._var_list is not None:
            for variable in self._var_list:
                tape.watch(
                    getattr(variable, "value", variable)
                    if isinstance(variable, keras.Variable)
                    else variable
                )

    def __repr__(self) -> str:
        names = "watched" if self._names is None else list(self._names)
        return (
            f"{type(self).__name__}(optimizer={type(self._optimizer).__name__}, "
            f"var_list={names}, compile={self._compile}"
            + {True: ", jit_compile=True)", False: ")", None: ', jit_compile="auto")'}[self._jit]
        )
