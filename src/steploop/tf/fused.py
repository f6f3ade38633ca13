"""The compiled multi-step loop behind ``run_steps`` of the TensorFlow strategies.

One ``tf.function`` (XLA-compiled with ``jit_compile=True``) runs a ``tf.while_loop`` of up to K
steps. Each iteration takes a batch (from a ``tf.data`` iterator inside the graph, from batches
stacked on the host, or none), runs the strategy's step body, evaluates the stopping program with
``TF_OPS`` and writes the step's loss, values and (when asked) gradients into ``TensorArray``s of
K rows. The loop ends after K steps, at the first step where the program fires, or when the
iterator has no batch left; nothing crosses to the host until the call returns.

With a ``tf.data`` iterator under XLA the loop itself runs as a plain graph (XLA cannot pull from
an iterator) and only the step body is XLA-compiled, as Keras does for ``steps_per_execution``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import tensorflow as tf

from steploop import chunks
from steploop.fused import Quantities, Stopper
from steploop.strategy import Chunk, Feed, StepOutput
from steploop.tf._flatcall import ConcreteCalls
from steploop.tf.ops import TF_OPS

#: Where a fused call takes its batches from.
NO_DATA, ITERATOR, STACKED = "none", "iterator", "stacked"


def spec_of(output: StepOutput) -> dict[str, Any]:
    """The dtypes and shapes of a step's outputs (taken from a plain step)."""

    def spec(tree: Any) -> Any:
        if tree is None:
            return None
        return tf.nest.map_structure(
            lambda t: tf.TensorSpec.from_tensor(tf.convert_to_tensor(t)), tree
        )

    return {
        "loss": spec(output.loss),
        "values": spec(dict(output.values)),
        "gradients": spec(None if output.gradients is None else dict(output.gradients)),
        "target_gradients": spec(
            None
            if output.target_gradients is None
            else {key: dict(value) for key, value in output.target_gradients.items()}
        ),
    }


def build_loop(
    body: Callable[..., StepOutput],
    specs: dict[str, Any],
    count: int,
    stopper: Stopper,
    keep_gradients: bool,
    mode: str,
    jit_compile: bool,
    extra_stop: Callable[[StepOutput], Any] | None = None,
) -> Callable[..., Any]:
    """A ``tf.function(first_step, limit, state_vector[, data])`` running up to ``count`` steps
    of ``body`` (one step's graph, returning a ``StepOutput``). It returns ``control`` (steps
    done, stopped, exhausted, then each leaf's verdict, as int32), the leaves' states as one
    float64 vector, and the stacked outputs."""
    step_body = body
    if jit_compile and mode == ITERATOR:
        step_body = tf.function(body, jit_compile=True)
    kept = ["loss", "values"]
    if keep_gradients:
        kept += [key for key in ("gradients", "target_gradients") if specs[key] is not None]

    def arrays() -> dict[str, Any]:
        return {
            key: tf.nest.map_structure(
                lambda spec: tf.TensorArray(spec.dtype, size=count, element_shape=spec.shape),
                specs[key],
            )
            for key in kept
        }

    def write(tensor_arrays: dict[str, Any], index: tf.Tensor, output: StepOutput) -> Any:
        parts = {
            "loss": output.loss,
            "values": dict(output.values),
            "gradients": dict(output.gradients or {}),
            "target_gradients": {
                key: dict(value) for key, value in (output.target_gradients or {}).items()
            },
        }
        return {
            key: tf.nest.map_structure(
                lambda ta, value: ta.write(index, value), tensor_arrays[key], parts[key]
            )
            for key in kept
        }

    sizes = [len(state) for state in stopper.initial()]

    def unpack(vector: tf.Tensor) -> tuple[tuple[tf.Tensor, ...], ...]:
        states, start = [], 0
        for size in sizes:
            states.append(tuple(vector[start + j] for j in range(size)))
            start += size
        return tuple(states)

    def loop(first_step: tf.Tensor, limit: tf.Tensor, state_vector: tf.Tensor, data: Any) -> Any:
        states = unpack(state_vector)
        mets = tuple(tf.constant(False) for _ in stopper.leaves)

        def one_step(i: Any, states: Any, mets: Any, tensor_arrays: Any, batch: tuple) -> Any:
            output = step_body(*batch)
            quantities = Quantities(
                step=first_step + tf.cast(i, tf.int64),
                loss=tf.cast(output.loss, tf.float64),
                values=dict(output.values),
                gradients=dict(output.gradients or {}),
            )
            stop: Any = tf.constant(False)
            if stopper:
                stop, states, mets = stopper.evaluate(TF_OPS, states, quantities)
                states = tf.nest.map_structure(lambda v: tf.cast(v, tf.float64), states)
                mets = tuple(tf.convert_to_tensor(met, tf.bool) for met in mets)
            stop = tf.convert_to_tensor(stop, tf.bool)
            own = None if extra_stop is None else extra_stop(output)
            if own is not None:  # the strategy's own stop (a non-finite step, say)
                stop = tf.logical_or(stop, own)
            return i + 1, stop, tf.constant(False), states, mets, write(tensor_arrays, i, output)

        def cond(i: Any, stopped: Any, exhausted: Any, *rest: Any) -> Any:
            return tf.logical_and(i < limit, tf.logical_not(tf.logical_or(stopped, exhausted)))

        def step(i: Any, stopped: Any, exhausted: Any, states: Any, mets: Any, tas: Any) -> Any:
            if mode == ITERATOR:
                optional = data.get_next_as_optional()
                return tf.cond(
                    optional.has_value(),
                    lambda: one_step(i, states, mets, tas, (optional.get_value(),)),
                    lambda: (i, tf.constant(False), tf.constant(True), states, mets, tas),
                )
            if mode == STACKED:
                batch = tf.nest.map_structure(lambda t: t[i], data)
                return one_step(i, states, mets, tas, (batch,))
            return one_step(i, states, mets, tas, ())

        start = (tf.constant(0), tf.constant(False), tf.constant(False), states, mets, arrays())
        i, stopped, exhausted, states, mets, tensor_arrays = tf.while_loop(
            cond, step, start, maximum_iterations=count
        )
        stacked = {
            key: tf.nest.map_structure(lambda ta: ta.stack(), tensor_arrays[key]) for key in kept
        }
        # two small vectors instead of many scalars: each output costs a copy to the host
        flags = [i, tf.cast(stopped, tf.int32), tf.cast(exhausted, tf.int32)]
        control = tf.stack(flags + [tf.cast(met, tf.int32) for met in mets])
        flat_states = [value for state in states for value in state]
        state_vector = tf.stack(flat_states) if flat_states else tf.zeros([0], tf.float64)
        return control, state_vector, stacked

    def run_without_data(first_step: tf.Tensor, limit: tf.Tensor, state_vector: tf.Tensor) -> Any:
        return loop(first_step, limit, state_vector, None)

    def run_with_data(
        first_step: tf.Tensor, limit: tf.Tensor, state_vector: tf.Tensor, data: Any
    ) -> Any:
        return loop(first_step, limit, state_vector, data)

    run = run_without_data if mode == NO_DATA else run_with_data
    return tf.function(run, jit_compile=jit_compile and mode != ITERATOR, reduce_retracing=True)


@attrs.frozen
class Loop:
    """What a fused loop runs: the step ``body``, its outputs' ``specs``, XLA or not, and the
    strategy's own in-graph stop (``extra_stop``, see ``build_loop``)."""

    body: Callable[..., StepOutput]
    specs: dict[str, Any]
    jit_compile: bool
    extra_stop: Callable[[StepOutput], Any] | None


class FusedCalls:
    """The compiled loops of one strategy, by kind, and the calls that run them."""

    def __init__(self, calls: ConcreteCalls) -> None:
        self._calls = calls
        self.loops: dict[Any, Any] = {}
        self._constants: dict[Any, tf.Tensor] = {}

    def run(
        self,
        loop: Loop,
        count: int,
        first_step: int,
        stopper: Stopper,
        feed: Feed | None,
        keep_gradients: bool,
    ) -> Chunk | None:
        """Up to ``count`` steps in one compiled call; ``None`` when ``feed``'s next batch
        cannot be stacked (the caller then takes one plain step)."""
        data: Any = None
        batches: list[Any] = []
        ended = False
        if feed is None:
            mode = NO_DATA
        elif isinstance(feed.iterator, tf.data.Iterator) and not feed.has_pending:
            mode, data = ITERATOR, feed.iterator
        else:
            mode = STACKED
            batches, ended = chunks.pull_uniform(feed, count)
            if not batches:
                return chunks.empty() if ended else None
            data = tf.nest.map_structure(lambda *leaves: tf.stack(leaves), *batches)
        key = (count, stopper.key(), keep_gradients, mode)
        function = self.loops.get(key)
        if function is None:
            function = self.loops[key] = build_loop(
                loop.body,
                loop.specs,
                count,
                stopper,
                keep_gradients,
                mode,
                loop.jit_compile,
                loop.extra_stop,
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
        known = "fixed" if mode == NO_DATA else None
        control, state_vector, stacked = self._calls.invoke(function, tuple(arguments), key, known)
        return chunks.assemble(
            control.numpy().tolist(),
            state_vector.numpy().tolist() if flat else (),
            initial,
            stacked,
            batches,
            feed,
            ended,
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
