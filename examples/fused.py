"""Fused steps: the article's loop, 1000 steps a call under XLA, stopping at exactly step 70.

``steps_per_call=1000`` runs up to 1000 steps inside one XLA-compiled call; ``LossBelow`` and
``MaxSteps`` are evaluated inside that call, so it really exits at step 70 (``tfp.math.minimize``
would run all its ``num_steps``). The run is compared with a step-by-step run: same stop step,
same history, same x, bit for bit. A ``PrintLogger`` that prints variables needs them live, so the
Trainer ends a chunk at every step it prints.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep


def article(steps_per_call, jit_compile, callbacks=()):
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    criteria = [sl.LossBelow(1e-12) | sl.MaxSteps(1000), *callbacks]
    trainer = sl.Trainer(step, criteria, steps_per_call=steps_per_call)
    return trainer, trainer.run(), x


plain, plain_result, plain_x = article(1, True)
fused, fused_result, fused_x = article(1000, True)
print(f"step by step + XLA: {plain_result.steps} steps, x = {plain_x.numpy():.7f}")
print(f"fused + XLA:        {fused_result.steps} steps, x = {fused_x.numpy():.7f}")
print(f"fused stop reason: {fused_result.stop_reason}")
same = (
    plain_result.steps == fused_result.steps
    and plain_x.numpy().tobytes() == fused_x.numpy().tobytes()
    and plain.history == fused.history
)
print(f"same stop step, history and x (bit for bit): {same}")


def time_runs(steps_per_call, jit_compile, repeats=20):
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1), jit_compile=jit_compile)
    times = []
    for _ in range(repeats + 1):  # the first run traces and compiles
        x.assign(0.0)
        start = time.perf_counter()
        criteria = [sl.LossBelow(1e-12) | sl.MaxSteps(1000)]
        sl.Trainer(step, criteria, steps_per_call=steps_per_call).run()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


slow, fast = time_runs(1, False), time_runs(1000, True)
print(f"time to tolerance: {slow * 1e3:.1f} ms step by step, {fast * 1e3:.2f} ms fused + XLA")
print(f"fused + XLA is faster: {fast < slow}")

print("a PrintLogger(every=20) reads x at steps 20, 40, 60, so chunks end there:")
article(1000, True, [sl.PrintLogger(every=20, gradients=False)])
