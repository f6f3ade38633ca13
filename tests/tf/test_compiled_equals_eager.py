"""A plain graph (compile=True, jit_compile=False) and eager steps (compile=False) give the same
steps, gradients and variables.

Losses may differ in the last bit: inside a graph TensorFlow may compute ``(x - 4) ** 2`` with
another kernel (a fused square) than eagerly; the values that drive the update do not. XLA
(``jit_compile=True``, or ``"auto"``, the default, where the step compiles) may round otherwise
and is compared with itself, fused and step by step, in tests/tf/test_fused.py.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import steploop as sl
from tests.helpers import tf_quadratic
from tests.strategies import starts, tf_learning_rates


@settings(max_examples=10)
@given(st.sampled_from(["minimize", "tape", "persistent"]), tf_learning_rates, starts)
def test_compiled_equals_eager(tf, keras, kind, lr, start):
    """Step for step, the compiled strategy equals the eager one (steps, gradients, x), and its
    losses agree to float32 rounding."""
    runs = []
    for compile in (True, False):
        x, strategy = tf_quadratic(tf, keras, kind, lr, start, compile=compile, jit_compile=False)
        trainer = sl.Trainer(strategy, callbacks=[sl.LossBelow(1e-10) | sl.MaxSteps(300)])
        gradients = [dict(r.gradients) for r in trainer.iterate()]
        runs.append((trainer.history, gradients, x.numpy()))
    (h1, g1, x1), (h2, g2, x2) = runs
    assert h1.rows == h2.rows and g1 == g2 and x1 == x2
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-6, atol=0)
