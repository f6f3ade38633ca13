"""The article's three loops in JAX, with ``OptaxStep``: SGD(0.1) on ``(x - 4)**2`` from x = 0.

(a) jitted steps (the default) until ``LossBelow(1e-12) | MaxSteps(1000)``: 70 steps,
    x = 3.9999993 in float32, as with TensorFlow;
(b) the same loop eager (``jit=False``): each step runs op by op, same numbers;
(c) the persistent-tape counterpart: the loss returns ``{"loss": z**2, "z": z}`` with
    ``z = x - 4``, and every step also reports the gradient of the target ``z`` by x
    (``target_gradients["z"]["x"]``, 1.0) - JAX needs no tape, one ``jax.vjp`` serves both; then
    the same run fused, 64 steps in one jitted ``lax.while_loop``, which stops at the same step
    with the same history and x, bit for bit.
"""

import jax.numpy as jnp
import numpy as np
import optax

import steploop as sl
from steploop.jax import OptaxStep


class TargetGradients(sl.Callback):
    """Keeps every step's gradient of the target ``z`` by x. A callback reads gradients by default
    (``reads_gradients = True``), so a fused call returns every step's, not only the last's."""

    def __init__(self):
        self.grad_z = []

    def on_step_end(self, trainer, record):
        if record.target_gradients:
            self.grad_z.append(float(record.target_gradients["z"]["x"]))


def article(loss, *, jit=True, steps_per_call=1):
    step = OptaxStep(loss, {"x": jnp.array(0.0)}, optax.sgd(0.1), jit=jit)
    grads = TargetGradients()
    criteria = [sl.LossBelow(1e-12) | sl.MaxSteps(1000), grads]
    trainer = sl.Trainer(step, criteria, steps_per_call=steps_per_call)
    return trainer, trainer.run(), step, grads


def squared(p):
    return (p["x"] - 4.0) ** 2


def with_target(p):
    z = p["x"] - 4.0
    return {"loss": z**2, "z": z}


# (a) jitted steps
trainer, result, step, _ = article(squared)
print(f"(a) jitted: {result.steps} steps, x = {float(step.params['x']):.7f}, {result.status}")
print(f"    stop reason: {result.stop_reason}")
print(f"    step 10: loss = {trainer.history['loss'][9]:.6g}")

# (b) eager
eager, eager_result, eager_step, _ = article(squared, jit=False)
print(
    f"(b) eager (jit=False): {eager_result.steps} steps, "
    f"x = {float(eager_step.params['x']):.7f}, {eager_result.status}"
)
gap = np.max(np.abs(eager.history["loss"] - trainer.history["loss"]))
print(f"    largest loss gap to (a): {gap:.1g} (float32 rounding: XLA fuses the jitted step)")

# (c) the persistent-tape counterpart: a target's gradient reported with the loss's
tape, tape_result, tape_step, tape_grads = article(with_target)
print(
    f"(c) loss and target z: {tape_result.steps} steps, x = {float(tape_step.params['x']):.7f}, "
    f"grad_z = {tape_grads.grad_z[-1]:g}, "
    f"grad_loss = {float(tape.last_record.gradients['x']):.3g}"
)
print(f"    grad_z = 1 at all {len(tape_grads.grad_z)} steps: {set(tape_grads.grad_z) == {1.0}}")
fused, fused_result, fused_step, fused_grads = article(with_target, steps_per_call=64)
print(
    f"    fused (steps_per_call=64): {fused_result.steps} steps, "
    f"x = {float(fused_step.params['x']):.7f}, grad_z = {fused_grads.grad_z[-1]:g}"
)
same = (
    fused_result.steps == tape_result.steps
    and fused_result.stop_reason == tape_result.stop_reason
    and np.asarray(fused_step.params["x"]).tobytes() == np.asarray(tape_step.params["x"]).tobytes()
    and fused.history["loss"].tobytes() == tape.history["loss"].tobytes()
    and fused_grads.grad_z == tape_grads.grad_z
)
print(f"    fused = step by step (stop step, reason, history, grad_z, x bit for bit): {same}")
