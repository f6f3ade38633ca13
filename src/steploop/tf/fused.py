"""The compiled multi-step loop behind ``run_steps`` of the TensorFlow strategies.

One ``tf.function`` (XLA-compiled with ``jit_compile=True``) runs a ``tf.while_loop`` of up to K
steps of the body ``steploop.loop_body`` states for every framework; here are TensorFlow's
mechanics: the loop, the ``TensorArray``s of K rows the outputs are written into, a ``tf.data``
iterator pulled inside the graph, and the call. Nothing crosses to the host until it returns.

With a ``tf.data`` iterator under XLA the loop itself runs as a plain graph (XLA cannot pull from
an iterator) and only the step body is XLA-compiled, as Keras does for ``steps_per_execution``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import tensorflow as tf

from steploop import loop_body
from steploop.criteria_program import CriteriaProgram
from steploop.loop_body import ITERATOR, NO_DATA, STACKED
from steploop.strategy import StepOutput
from steploop.tf._flatcall import ConcreteCalls
from steploop.tf.ops import TF_OPS


def spec_of(output: StepOutput) -> dict[str, Any]:
    """The dtypes and shapes of a step's outputs (taken from a plain step)."""

    def spec(tensor: Any) -> tf.TensorSpec:
        return tf.TensorSpec.from_tensor(tf.convert_to_tensor(tensor))

    trees = loop_body.parts(output).items()
    return {k: None if t is None else tf.nest.map_structure(spec, t) for k, t in trees}


def _dense(tree: Any) -> Any:
    """``tree`` with every gradient a dense tensor (an ``IndexedSlices`` converted)."""
    return tf.nest.map_structure(tf.convert_to_tensor, tree)


def _zeros(spec: tf.TensorSpec) -> tf.Tensor:
    return tf.zeros(spec.shape, spec.dtype)


@attrs.frozen
class Loop:
    """What a fused loop runs: the step ``body``, its outputs' ``specs``, XLA or not, and the
    strategy's own in-graph stop (``extra_stop``, see ``loop_body.after_step``)."""

    body: Callable[..., StepOutput]
    specs: dict[str, Any]
    jit_compile: bool
    extra_stop: Callable[[StepOutput], Any] | None


def build_loop(
    loop: Loop, count: int, stopper: CriteriaProgram, keep_gradients: bool | str, mode: str
) -> Callable[..., Any]:
    """A ``tf.function(first_step, limit, state_vector[, data])`` running up to ``count`` steps
    of ``loop.body``. It returns its ``loop_body.numbers`` as one float64 vector and the stacked
    outputs (with the last step's alone of those ``loop_body.kept`` carries)."""
    step_body = loop.body
    if loop.jit_compile and mode == ITERATOR:
        step_body = tf.function(loop.body, jit_compile=True)
    reported = [key for key, spec in loop.specs.items() if spec is not None]
    stacked_keys, last_keys = loop_body.kept(reported, keep_gradients)
    layout = loop_body.States.of(stopper)

    def array(spec: tf.TensorSpec) -> tf.TensorArray:
        return tf.TensorArray(spec.dtype, size=count, element_shape=spec.shape)

    def run(first_step: tf.Tensor, limit: tf.Tensor, state_vector: tf.Tensor, data: Any) -> Any:
        def one_step(i: Any, states: Any, arrays: Any, batch: tuple[Any, ...]) -> Any:
            output = step_body(*batch)
            step = first_step + tf.cast(i, tf.int64)
            stop, states, verdicts = loop_body.after_step(
                TF_OPS, stopper, step, output, states, loop.extra_stop
            )
            written = loop_body.parts(output, absent={})
            arrays = {
                key: tf.nest.map_structure(lambda a, v: a.write(i, v), arrays[key], written[key])
                for key in stacked_keys
            }
            arrays.update({key: _dense(written[key]) for key in last_keys})
            return i + 1, stop, tf.constant(False), states, verdicts, arrays

        def cond(i: Any, stopped: Any, exhausted: Any, *rest: Any) -> Any:
            return tf.logical_and(i < limit, tf.logical_not(tf.logical_or(stopped, exhausted)))

        def step(
            i: Any, stopped: Any, exhausted: Any, states: Any, verdicts: Any, arrays: Any
        ) -> Any:
            if mode == ITERATOR:
                optional = data.get_next_as_optional()
                return tf.cond(
                    optional.has_value(),
                    lambda: one_step(i, states, arrays, (optional.get_value(),)),
                    lambda: (i, tf.constant(False), tf.constant(True), states, verdicts, arrays),
                )
            batch = (tf.nest.map_structure(lambda t: t[i], data),) if mode == STACKED else ()
            return one_step(i, states, arrays, batch)

        arrays = {key: tf.nest.map_structure(array, loop.specs[key]) for key in stacked_keys}
        arrays.update({key: tf.nest.map_structure(_zeros, loop.specs[key]) for key in last_keys})
        verdicts = tuple(tf.constant(False) for _ in stopper.leaves)
        flags = (tf.constant(0), tf.constant(False), tf.constant(False))
        start = (*flags, layout.unpack(state_vector), verdicts, arrays)
        i, stopped, exhausted, states, verdicts, arrays = tf.while_loop(
            cond, step, start, maximum_iterations=count
        )
        stacked = {k: tf.nest.map_structure(lambda a: a.stack(), arrays[k]) for k in stacked_keys}
        stacked.update({key: arrays[key] for key in last_keys})
        control = loop_body.control(i, stopped, exhausted, verdicts)
        numbers = loop_body.numbers(control, layout.flat(states))
        return tf.stack([tf.cast(n, tf.float64) for n in numbers]), stacked

    def run_without_data(first_step: tf.Tensor, limit: tf.Tensor, state_vector: tf.Tensor) -> Any:
        return run(first_step, limit, state_vector, None)

    def run_with_data(
        first_step: tf.Tensor, limit: tf.Tensor, state_vector: tf.Tensor, data: Any
    ) -> Any:
        return run(first_step, limit, state_vector, data)

    function = run_without_data if mode == NO_DATA else run_with_data
    xla = loop.jit_compile and mode != ITERATOR
    return tf.function(function, jit_compile=xla, reduce_retracing=True)


class FusedCalls(loop_body.CompiledLoops):
    """The compiled loops of one strategy and their calls (``loop_body.CompiledLoops``), once
    ``loop`` is set (after the strategy's first plain step)."""

    def __init__(self, calls: ConcreteCalls) -> None:
        super().__init__()
        self._calls = calls
        self.loop: Loop | None = None
        self._constants: dict[Any, tf.Tensor] = {}

    def native(self, iterator: Any) -> bool:
        return isinstance(iterator, tf.data.Iterator)

    def build(
        self, count: int, stopper: CriteriaProgram, keep_gradients: bool | str, mode: str
    ) -> Any:
        assert self.loop is not None
        return build_loop(self.loop, count, stopper, keep_gradients, mode)

    def call(
        self, function: Any, key: Any, first_step: int, source: Any, flat: list[float], feed: Any
    ) -> tuple[list[float], Any]:
        arguments = [
            self._constant(first_step, tf.int64),
            self._constant(source.limit, tf.int32),
            tf.constant(flat, tf.float64) if flat else self._constant((), tf.float64),
        ]
        if source.mode == ITERATOR:
            arguments.append(feed.iterator)
        elif source.mode == STACKED:
            rows = source.rows(key[0])  # one input shape for every call of this loop
            arguments.append(tf.nest.map_structure(lambda *ts: tf.stack(ts), *rows))
        # without data the arguments' shapes and dtypes are fixed by the loop's key
        known = "fixed" if source.mode == NO_DATA else None
        numbers, stacked = self._calls.invoke(function, tuple(arguments), key, known)
        return numbers.numpy().tolist(), stacked

    def _constant(self, value: Any, dtype: tf.DType) -> tf.Tensor:
        """A cached constant tensor (chunk lengths, first steps and the empty state repeat)."""
        key = (value, dtype)
        tensor = self._constants.get(key)
        if tensor is None:
            if len(self._constants) > 256:  # first steps of many chunks: keep the cache small
                self._constants.clear()
            tensor = self._constants[key] = tf.constant(value, dtype)
        return tensor
