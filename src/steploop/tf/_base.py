"""Shared machinery of the TensorFlow strategies: argument checks, compiling, loss checks.

A TensorFlow strategy writes ``_update(*batch)``, the graph-compatible body of one step, and
``_output(result)``, which turns what ``_update`` returned into a ``StepOutput``. ``TFStep`` runs
``_update`` eagerly or as a ``tf.function`` (``compile=True``), and makes sure a mistake found
while tracing reaches the caller as the clear ``TypeError``/``ValueError`` steploop raised, not
wrapped in TensorFlow's traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from steploop import _validate
from steploop.fused import Stopper
from steploop.strategy import END, Chunk, Feed, StepOutput, StepStrategy
from steploop.tf import checkpointing, fused
from steploop.tf._checks import check_eager, check_optimizer, check_var_list
from steploop.tf.naming import unique_names


def _as_tensor(value: Any) -> tf.Tensor | None:
    """``value`` as a tensor, or ``None`` for text, ``None`` and what TensorFlow cannot convert."""
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        return tf.convert_to_tensor(value)
    except (TypeError, ValueError):
        return None


def pin(*trees: Any) -> Any:
    """Return ``trees`` (nested tensors) so that nothing using the result runs before every one
    of their tensors exists; in eager mode they are returned as they are (see ``TFStep._apply``).
    """
    if tf.executing_eagerly():
        return trees
    tensors = [t for t in tf.nest.flatten(trees) if t is not None]
    with tf.control_dependencies(tensors):
        return tf.nest.map_structure(lambda t: None if t is None else tf.identity(t), trees)


#: Put first in the tensors list by ``_signature`` when the arguments cannot be called flat.
_NOT_FLAT: Any = object()


def _signature(arguments: Any, tensors: list[Any] | None) -> Any:
    """A hashable signature of arguments made of tensors (and nested tuples and dicts of them, a
    ``tf.data`` iterator, plain numbers), or ``None`` when they hold anything else.

    In the same walk, the tensors are appended to ``tensors`` in order (the flat inputs of a
    concrete function); an argument that is not a tensor or a tuple or list of them (a dict, an
    iterator, a number) clears it, and the structured call is taken instead.
    """
    parts: list[Any] = []
    for argument in arguments:
        if isinstance(argument, tf.Tensor):
            parts.append((tuple(argument.shape), argument.dtype))
            if tensors is not None:
                tensors.append(argument)
            continue
        if isinstance(argument, (tuple, list)):
            inner = _signature(argument, tensors)
            if inner is None:
                return None
            parts.append((type(argument), inner))
            continue
        if tensors is not None:
            tensors.clear()
            tensors.append(_NOT_FLAT)
        if isinstance(argument, Mapping):
            inner = _signature(tuple(argument.values()), None)
            if inner is None:
                return None
            parts.append((type(argument), tuple(argument), inner))
        elif isinstance(argument, tf.data.Iterator):
            parts.append(("iterator", repr(argument.element_spec)))
        elif isinstance(argument, (float, int)) and not isinstance(argument, bool):
            parts.append((type(argument), argument))
        else:
            return None
    return tuple(parts)


#: Whether concrete functions are called flat (see ``_call_flat``); switched off for good if this
#: TensorFlow's ConcreteFunction does not take flat calls.
_FLAT_CALLS = True


def _call_flat(concrete: Any, tensors: list[tf.Tensor], arguments: tuple[Any, ...]) -> Any:
    """Call ``concrete`` with its flat input tensors, as its structured call ends up doing, without
    binding the arguments to its signature again (half of the cost of a small call). The concrete
    function was traced for exactly these shapes and dtypes (see ``_signature``)."""
    global _FLAT_CALLS
    try:
        flat_call = concrete._call_flat
        captured = concrete.captured_inputs
    except AttributeError:
        _FLAT_CALLS = False
        return concrete(*arguments)
    return flat_call(tensors, captured)


#: What a TensorFlow strategy does with a step whose loss or gradients are not finite: ``apply``
#: the update anyway (the default, as a hand loop would); ``skip`` it; ``stop`` the run before it
#: is applied, naming the step and the quantity; or ``rollback``: apply it and, if anything (the
#: loss, a gradient, or the variables and optimiser state after the update) is not finite, put
#: the variables and the optimiser back as they were before the step. Except for ``apply``, each
#: step reports ``values["nonfinite"]``: 0, or which quantity was not finite (see
#: ``TFStep.nonfinite_quantity``).
NONFINITE_POLICIES = ("apply", "skip", "stop", "rollback")


def _not_finite(tensor: Any) -> tf.Tensor:
    values = tensor.values if isinstance(tensor, tf.IndexedSlices) else tensor
    return tf.logical_not(tf.reduce_all(tf.math.is_finite(values)))


def _read(variable: Any) -> tf.Tensor:
    """The value of a ``tf.Variable`` or ``keras.Variable`` as a tensor."""
    return tf.convert_to_tensor(
        variable.value if isinstance(variable, keras.Variable) else variable
    )


def _when(condition: Any, action: Callable[[], None]) -> None:
    """Run ``action`` (stateful, no result) only where ``condition`` holds (eager or graph)."""
    if tf.executing_eagerly():
        if bool(condition):
            action()
        return

    def act() -> tf.Tensor:
        action()
        return tf.constant(True)

    tf.cond(condition, act, lambda: tf.constant(False))


class TFStep(StepStrategy):
    """Base of the TensorFlow strategies (internal): checks, names, compiling."""

    _fn_label = "loss"
    _returns = "a scalar loss tensor"

    def __init__(
        self,
        loss: Callable[..., Any],
        optimizer: Any,
        var_list: Any = None,
        *,
        watch_accessed_variables: bool = True,
        compile: bool = True,
        jit_compile: bool = False,
        on_nonfinite: str = "apply",
    ) -> None:
        owner = type(self).__name__
        self._fn = _validate.callable_(
            f"{owner}: {self._fn_label}", loss, f"a function returning {self._returns}"
        )
        self._optimizer = check_optimizer(owner, optimizer)
        self._var_list = check_var_list(owner, var_list)
        for flag, value in (
            ("watch_accessed_variables", watch_accessed_variables),
            ("compile", compile),
            ("jit_compile", jit_compile),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{owner}: {flag} must be a bool, got {type(value).__name__}")
        if on_nonfinite not in NONFINITE_POLICIES:
            raise ValueError(
                f"{owner}: on_nonfinite must be one of {list(NONFINITE_POLICIES)}, "
                f"got {on_nonfinite!r}"
            )
        if on_nonfinite == "rollback" and not isinstance(
            getattr(optimizer, "variables", None), (list, tuple)
        ):
            raise ValueError(
                f"{owner}: on_nonfinite='rollback' needs an optimizer whose state is a list "
                f"`variables` (a Keras 3 optimizer); {type(optimizer).__name__} has none"
            )
        self._nonfinite = on_nonfinite
        if jit_compile and not compile:
            raise ValueError(
                f"{owner}: jit_compile=True compiles the step with XLA, which needs compile=True"
            )
        if not watch_accessed_variables and self._var_list is None:
            raise ValueError(
                f"{owner}: watch_accessed_variables=False watches only var_list, "
                "and var_list is None: nothing would be differentiated"
            )
        self._watch_accessed = watch_accessed_variables
        self._compile = compile
        self._jit = jit_compile
        self._specs: dict[str, Any] | None = None
        self._loops: dict[Any, Any] = {}
        self._concretes: dict[Any, Any] = {}
        self._constants: dict[Any, tf.Tensor] = {}
        self._takes_batch: bool | None = None
        self._function: Callable[..., Any] | None = None
        self._variables: tuple[Any, ...] | None = None
        self._names: tuple[str, ...] | None = None
        self._order: tuple[int, ...] = ()  # the variables' positions sorted by name
        if self._var_list is not None:
            self._set_variables(self._var_list)
        self._pending_error: Exception | None = None
        #: A restore waiting for the variables (found at the first step): (prefix, record)
        self._pending_restore: tuple[str, dict[str, Any]] | None = None

    def _set_variables(self, variables: tuple[Any, ...]) -> None:
        self._variables, self._names = variables, unique_names(variables)
        self._order = checkpointing.canonical_order(self._names)

    # -- StepStrategy -----------------------------------------------------------------------
    @property
    def optimizer(self) -> Any:
        return self._optimizer

    @property
    def compiled(self) -> bool:
        return self._compile

    @property
    def jit_compiled(self) -> bool:
        return self._jit

    def check(self, takes_batch: bool) -> None:
        if self._takes_batch == takes_batch:  # checked when an earlier Trainer was built
            return
        if takes_batch:
            how = f"{self._fn_label}(batch), since the Trainer has data"
        else:
            how = f"{self._fn_label}() (no data was given to the Trainer)"
        _validate.accepts(
            f"{type(self).__name__}: {self._fn_label}", self._fn, int(takes_batch), how
        )
        self._takes_batch = takes_batch

    def step(self, batch: Any = None) -> StepOutput:
        check_eager(type(self).__name__)
        takes_batch = self._takes_batch if self._takes_batch is not None else batch is not None
        arguments = (self._as_batch(batch),) if takes_batch else ()
        if self._pending_restore is not None:
            self._restore_pending(arguments)
        if self._compile:
            if self._function is None:
                # a plain function of a fixed arity (no bound method, no *args) and, without
                # data, no retracing policy
                def update() -> Any:
                    return self._update()

                def update_on(batch: Any) -> Any:
                    return self._update(batch)

                self._function = tf.function(
                    update_on if arguments else update,
                    reduce_retracing=bool(arguments),
                    jit_compile=self._jit,
                )
            result = self._invoke(self._function, arguments)
        else:
            result = self._traced(self._update, *arguments)
        output = self._output(result)
        if self._specs is None and self._compile:
            self._specs = fused.spec_of(output)
        return output

    def _as_batch(self, batch: Any) -> Any:
        """``batch`` with every part a tensor (tensors, arrays, numbers, nested in tuples, lists
        and dicts), or a clear error: a ragged or non-numeric part fails here, naming the data."""
        leaves = tf.nest.flatten(batch)
        if all(isinstance(leaf, tf.Tensor) for leaf in leaves):
            return batch
        owner = type(self).__name__

        def convert(leaf: Any) -> Any:
            if isinstance(leaf, tf.Tensor):
                return leaf
            if leaf is None or isinstance(leaf, (str, bytes)):
                raise TypeError(
                    f"{owner}: a batch from data has a part {leaf!r}; batches hold tensors, "
                    "arrays or numbers (in tuples, lists or dicts)"
                )
            try:
                return tf.convert_to_tensor(leaf)
            except (TypeError, ValueError) as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise TypeError(
                    f"{owner}: a batch from data has a part that is not a tensor or a rectangular "
                    f"numeric array ({type(leaf).__name__}: {first})"
                ) from None

        return tf.nest.map_structure(convert, batch)

    def _invoke(
        self, function: Any, arguments: tuple[Any, ...], key: Any = None, signature: Any = None
    ) -> Any:
        """Call the ``tf.function`` ``function`` through its concrete function for these
        arguments' signature, cached: the same graph as ``function(*arguments)``, without
        tf.function's per-call dispatch (about 50 µs a call on 2 cores)."""
        tensors: list[Any] = []
        if signature is None:  # else the caller knows it (a fused loop without data)
            signature = _signature(arguments, tensors)
            if signature is None:
                return self._traced(function, *arguments)
        else:
            tensors = list(arguments)  # plain tensors, by the caller's word
        cache_key = (id(function), key, signature)
        concrete = self._concretes.get(cache_key)
        if concrete is None:
            concrete = self._traced(function.get_concrete_function, *arguments)
            self._concretes[cache_key] = concrete
        if _FLAT_CALLS and not (tensors and tensors[0] is _NOT_FLAT):
            return _call_flat(concrete, tensors, arguments)
        return self._traced(concrete, *arguments)

    def _traced(self, function: Callable[..., Any], *arguments: Any) -> Any:
        """Call ``function``; an error steploop raised while tracing reaches the caller as is."""
        try:
            return function(*arguments)
        except Exception:
            error, self._pending_error = self._pending_error, None
            if error is not None:
                raise error from None
            raise

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
        return super().data_from(data, position)

    @property
    def ready_to_fuse(self) -> bool:
        """Eager strategies fuse in a Python loop; compiled ones after one plain step (which builds
        the variables and the optimizer's slots, and tells the outputs' dtypes and shapes)."""
        return not self._compile or self._specs is not None

    def run_steps(
        self,
        count: int,
        first_step: int,
        stopper: Stopper,
        feed: Feed | None,
        keep_gradients: bool,
    ) -> Chunk:
        """Run up to ``count`` steps in one compiled call (see ``steploop.tf.fused``)."""
        check_eager(type(self).__name__)
        if not self._compile or self._specs is None:
            return super().run_steps(count, first_step, stopper, feed, keep_gradients)
        data: Any = None
        batches: list[Any] = []
        ended = False
        if feed is None:
            mode = fused.NO_DATA
        elif isinstance(feed.iterator, tf.data.Iterator) and not feed.has_pending:
            mode, data = fused.ITERATOR, feed.iterator
        else:
            mode = fused.STACKED
            batches, ended = self._pull_batches(feed, count)
            if not batches:
                if ended:
                    return Chunk(steps=0, output=StepOutput(loss=np.zeros(0)), exhausted=True)
                return super().run_steps(1, first_step, stopper, feed, keep_gradients)
            data = tf.nest.map_structure(lambda *leaves: tf.stack(leaves), *batches)
        key = (count, stopper.key(), keep_gradients, mode)
        loop = self._loops.get(key)
        if loop is None:

            def body(*batch: Any) -> StepOutput:
                return self._output(self._update(*batch))

            loop = self._loops[key] = fused.build_loop(
                body, self._specs, count, stopper, keep_gradients, mode, self._jit, self._graph_stop
            )
        initial = stopper.initial()
        flat = [v for state in initial for v in state]
        arguments = [
            self._constant(first_step, tf.int64),
            self._constant(len(batches) if batches else count, tf.int32),
            tf.constant(flat, tf.float64) if flat else self._constant((), tf.float64),
        ]
        if data is not None:
            arguments.append(data)
        # without data the arguments' shapes and dtypes are fixed by the loop's key
        known = "fixed" if mode == fused.NO_DATA else None
        control, state_vector, stacked = self._invoke(loop, tuple(arguments), key, known)
        control = control.numpy().tolist()
        steps, stopped, exhausted, mets = control[0], control[1], control[2], control[3:]
        values = iter(state_vector.numpy().tolist()) if flat else iter(())
        states = tuple(tuple(next(values) for _ in state) for state in initial)
        for batch in reversed(batches[steps:]):  # pulled but not used: next call's first batches
            feed.put_back(batch)  # type: ignore[union-attr]
        return Chunk(
            steps=steps,
            output=StepOutput(
                loss=stacked["loss"],
                gradients=stacked.get("gradients"),
                target_gradients=stacked.get("target_gradients"),
                values=stacked["values"],
            ),
            states=states,
            mets=tuple(bool(met) for met in mets),
            stopped=bool(stopped),
            exhausted=bool(exhausted) or (ended and steps == len(batches)),
        )

    def _constant(self, value: Any, dtype: tf.DType) -> tf.Tensor:
        """A cached constant tensor (chunk lengths, first steps and the empty state repeat)."""
        key = (value, dtype)
        tensor = self._constants.get(key)
        if tensor is None:
            if len(self._constants) > 256:  # first steps of many chunks: keep the cache small
                self._constants.clear()
            tensor = self._constants[key] = tf.constant(value, dtype)
        return tensor

    def _pull_batches(self, feed: Feed, count: int) -> tuple[list[Any], bool]:
        """Up to ``count`` host batches of one structure, dtype and shape (a batch that differs is
        put back for the next call); returns them and whether the data ended."""
        batches: list[Any] = []
        signature = None
        while len(batches) < count:
            batch = feed.next()
            if batch is END:
                return batches, True
            this: str | None = None  # None: not numeric; the plain step says what is wrong
            try:
                flat = [np.asarray(leaf) for leaf in tf.nest.flatten(batch)]
                if all(a.dtype.kind in "biufc" for a in flat):
                    shapes = [(a.shape, a.dtype) for a in flat]
                    this = repr((tf.nest.map_structure(lambda _: 0, batch), shapes))
            except (TypeError, ValueError):
                pass
            if this is None or (batches and this != signature):
                feed.put_back(batch)
                return batches, False
            signature = this
            batches.append(batch)
        return batches, False

    # -- checkpoints (by name: see steploop.tf.checkpointing) -----------------------------------
    def save(self, prefix: str) -> None:
        """Write the variables by name, the optimizer's state and a record of the variables'
        names, shapes and dtypes under ``prefix``."""
        if self._pending_restore is not None:  # nothing changed since that checkpoint was read
            checkpointing.copy(self._pending_restore[0], prefix)
            return
        if self._variables is None:
            raise ValueError(
                f"{type(self).__name__}.save: the variables are not known yet (they are those "
                "the loss reads, found at the first step); take a step first or pass var_list"
            )
        assert self._names is not None
        checkpointing.save(prefix, self._names, self._variables, self._optimizer)

    def restore(self, prefix: str) -> None:
        """Read the variables back by name (any ``var_list`` order) and the optimizer's state.

        A variable missing, extra, renamed, reshaped or re-typed is a ``ValueError`` naming it.
        Without ``var_list`` the variables are those the loss reads: a loss without a batch is
        traced now to find them; one that takes a batch is traced at the first step, whose
        batch it needs, and the values are read then, before that step computes anything.
        """
        owner = f"{type(self).__name__}.restore"
        record = checkpointing.read_record(owner, prefix)
        if self._variables is None:
            if self._takes_batch is not False:
                self._pending_restore = (prefix, record)
                return
            self._discover(())
        self._pending_restore = None
        assert self._variables is not None and self._names is not None
        checkpointing.restore(owner, prefix, record, self._names, self._variables, self._optimizer)

    def _restore_pending(self, arguments: tuple[Any, ...]) -> None:
        """Carry out the restore that waited for the first step's batch (``arguments``)."""
        assert self._pending_restore is not None
        prefix, record = self._pending_restore
        if self._variables is None:
            self._discover(arguments)
        assert self._variables is not None and self._names is not None
        owner = f"{type(self).__name__}.restore"
        checkpointing.restore(owner, prefix, record, self._names, self._variables, self._optimizer)
        self._pending_restore = None

    def _discover(self, arguments: tuple[Any, ...]) -> None:
        """Find the variables the loss reads (``checkpointing.find_variables``), or fail."""
        found = checkpointing.find_variables(self._call, arguments, self._compile, self._traced)
        if not found:
            raise ValueError(
                f"{type(self).__name__}: the {self._fn_label} read no trainable variable, so "
                "there is nothing to restore or optimise; pass var_list or use the variables in it"
            )
        self._set_variables(found)

    def variables(self) -> Mapping[str, np.ndarray]:
        if self._variables is None:
            return {}
        assert self._names is not None
        return {name: v.numpy() for name, v in zip(self._names, self._variables, strict=True)}

    # -- for subclasses ---------------------------------------------------------------------
    def _update(self, *batch: Any) -> Any:
        raise NotImplementedError

    def _output(self, result: Any) -> StepOutput:
        raise NotImplementedError

    def _fail(self, error: Exception) -> Exception:
        """Remember ``error`` so ``step`` re-raises it as is; return it to be raised here."""
        self._pending_error = error
        return error

    def _call(self, *batch: Any) -> Any:
        return self._fn(*batch)

    def _float_tensor(self, value: Any, what: str) -> tf.Tensor:
        """``value`` as a floating-point tensor, or a clear error naming ``what`` it was for."""
        owner = f"{type(self).__name__}: {self._fn_label}"
        tensor = _as_tensor(value)
        if tensor is None:
            shown = (
                repr(value)
                if isinstance(value, (str, bytes)) or value is None
                else (type(value).__name__)
            )
            raise self._fail(
                TypeError(f"{owner} must return a numeric tensor for {what!r}, got {shown}")
            )
        if not tensor.dtype.is_floating:
            raise self._fail(
                TypeError(
                    f"{owner} must return a floating-point tensor for {what!r}, "
                    f"got {tensor.dtype.name}"
                )
            )
        return tensor

    def _values_of(self, outputs: Mapping[Any, Any]) -> dict[str, tf.Tensor]:
        """The ``"values"`` entry of a loss's dict: named numeric tensors to report, not to
        differentiate (accuracy, say); they reach ``StepRecord.values`` and the history."""
        values = outputs.get("values", {})
        owner = f"{type(self).__name__}: {self._fn_label}"
        if not isinstance(values, Mapping):
            raise self._fail(
                TypeError(
                    f"{owner}'s 'values' entry must be a dict of named tensors, "
                    f"got {type(values).__name__}"
                )
            )
        checked = {}
        for key, value in values.items():
            if not isinstance(key, str):
                raise self._fail(TypeError(f"{owner}'s 'values' keys must be str, got {key!r}"))
            tensor = _as_tensor(value)
            if tensor is None or not (tensor.dtype.is_floating or tensor.dtype.is_integer):
                raise self._fail(
                    TypeError(
                        f"{owner}'s value {key!r} must be a number or numeric tensor, "
                        f"got {type(value).__name__}"
                    )
                )
            checked[key] = tensor
        return checked

    def _checked_loss(self, value: Any) -> tf.Tensor:
        """``value`` as a floating scalar tensor, or a clear error naming what is wrong."""
        tensor = self._float_tensor(value, "loss")
        if tensor.shape.rank is not None and tensor.shape.rank != 0:
            raise self._fail(
                ValueError(
                    f"{type(self).__name__}: {self._fn_label} must return a scalar for 'loss', "
                    f"got a tensor of shape {tuple(tensor.shape)}; reduce it, e.g. with "
                    "tf.reduce_mean"
                )
            )
        return tensor

    def _resolve(self, tape: tf.GradientTape) -> tuple[Any, ...]:
        """The variables to update: ``var_list``, or those the tape watched."""
        if self._var_list is not None:
            return self._var_list
        watched = tuple(v for v in tape.watched_variables() if getattr(v, "trainable", True))
        if not watched:
            raise self._fail(
                ValueError(
                    f"{type(self).__name__}: the {self._fn_label} read no trainable variable, so "
                    "there is nothing to optimise; pass var_list or use the variables in it"
                )
            )
        if (
            self._variables is None
            or len(watched) != len(self._variables)
            or any(a is not b for a, b in zip(watched, self._variables, strict=True))
        ):
            self._set_variables(watched)
        assert self._variables is not None
        return self._variables

    def _checked_gradients(self, gradients: Sequence[Any], variables: Sequence[Any]) -> None:
        """Raise naming every variable the loss does not depend on."""
        if all(g is not None for g in gradients):
            return
        names = unique_names(variables)
        missing = [name for name, g in zip(names, gradients, strict=True) if g is None]
        raise self._fail(
            ValueError(
                f"{type(self).__name__}: the loss does not depend on variable(s) {missing} "
                "(their gradient is None); remove them from var_list or use them in the loss"
            )
        )

    def _apply(
        self, gradients: Sequence[Any], variables: Sequence[Any], loss: Any, *others: Any
    ) -> tuple[Any, ...]:
        """Check ``gradients``, apply them to ``variables`` as the ``on_nonfinite`` policy says;
        return ``(gradients, loss, *others, code)``, pinned, where ``code`` says which quantity
        was not finite (``None`` under the policy ``apply``).

        Inside a ``tf.function`` a gradient can be the very read of another variable (the
        gradient of ``a * b`` with respect to ``b`` is ``a``), and TensorFlow may run the update
        of ``a`` before that read: the step would then use, and report, a value that differs from
        the eager step, at random. ``pin`` makes every update wait until all the step's
        gradients and outputs exist, so a compiled step equals an eager one.
        """
        self._checked_gradients(gradients, variables)
        gradients, loss, *others = pin(tuple(gradients), loss, *others)
        optimizer = self._optimizer
        order = self._canonical(variables)  # slots in name order (see steploop.tf.checkpointing)

        def update() -> None:
            optimizer.apply_gradients([(gradients[i], variables[i]) for i in order])

        if self._nonfinite == "apply":
            update()
            return (gradients, loss, *others, None)
        if not getattr(optimizer, "built", True):  # slots must exist outside a conditional
            optimizer.build([variables[i] for i in order])
        flags = [_not_finite(loss), *(_not_finite(g) for g in gradients)]
        bad = tf.reduce_any(tf.stack(flags))
        code = tf.where(
            bad, tf.argmax(tf.cast(tf.stack(flags), tf.int32), output_type=tf.int32) + 1, 0
        )
        if self._nonfinite in ("skip", "stop"):
            _when(tf.logical_not(bad), update)
            return (gradients, loss, *others, code)
        state = [*variables, *optimizer.variables]
        saved = pin(*[tf.identity(_read(v)) for v in state])
        update()
        floating = [v for v in state if tf.as_dtype(v.dtype).is_floating]  # not the counter
        after = tf.reduce_any(tf.stack([_not_finite(_read(v)) for v in floating]))

        def put_back() -> None:
            for variable, value in zip(state, saved, strict=True):
                variable.assign(value)

        _when(tf.logical_or(bad, after), put_back)
        code = tf.where(tf.logical_and(tf.logical_not(bad), after), -1, code)
        return (gradients, loss, *others, code)

    def _canonical(self, variables: Sequence[Any]) -> tuple[int, ...]:
        """Positions of ``variables`` sorted by name (cached for the strategy's variables)."""
        if variables is self._variables:
            return self._order
        return checkpointing.canonical_order(unique_names(variables))

    def _with_code(self, values: dict[str, Any], code: Any) -> dict[str, Any]:
        return values if code is None else {**values, "nonfinite": code}

    def nonfinite_quantity(self, code: int) -> str:
        """What a ``values["nonfinite"]`` code means: 1 the loss, 2.. a gradient, -1 the update."""
        if code == 1:
            return "loss"
        if code == -1:
            return "variables or optimizer state after the update (rolled back)"
        names = self._names or ()
        index = code - 2
        return f"gradient of {names[index]!r}" if 0 <= index < len(names) else f"quantity {code}"

    def stop_after(self, step: int, values: Mapping[str, Any]) -> str | None:
        """Under ``on_nonfinite='stop'``: why the run must stop after ``step``, or ``None``."""
        if self._nonfinite != "stop":
            return None
        code = int(values.get("nonfinite", 0))
        if code == 0:
            return None
        return (
            f"non-finite {self.nonfinite_quantity(code)} at step {step}; its update was not "
            "applied, the variables are those of the step before"
        )

    def _graph_stop(self, output: StepOutput) -> Any:
        """The in-graph form of ``stop_after`` for fused loops (``None``: never stops)."""
        if self._nonfinite != "stop":
            return None
        return tf.not_equal(output.values["nonfinite"], 0)

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
            + (", jit_compile=True)" if self._jit else ")")
        )
