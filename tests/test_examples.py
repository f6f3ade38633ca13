"""Every example runs and prints what it demonstrates; the article's numbers it prints (70 steps,
x = 3.9999993, the losses and gradients along the way) are checked against the loop redone here
by hand, not against the example's own comparisons."""

import decimal
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def article_rows():
    """The article's loop redone in float32 NumPy: SGD(0.1) on (x-4)**2 from x = 0, stopping at
    the first step whose loss (taken before its update) is below 1e-12. One row per step:
    ``(step, loss, gradient, x after the update)``."""
    x, lr, rows = np.float32(0.0), np.float32(0.1), []
    for step in range(1, 1001):
        loss, grad = (x - np.float32(4.0)) ** 2, np.float32(2.0) * (x - np.float32(4.0))
        x = x - lr * grad
        rows.append((step, float(loss), float(grad), float(x)))
        if loss < 1e-12:
            break
    return rows


ROWS = article_rows()
LAST = ROWS[-1]
STEPS, LAST_LOSS, LAST_GRAD, X = LAST


def test_the_hand_loop_agrees_with_the_closed_form():
    """In exact arithmetic x_k = 4 - 4 * 0.8**k and the loss before update k is 16 * 0.64**(k-1):
    below 1e-12 first at k = 70, with x = 3.9999993 after it."""
    closed_form_steps = math.floor(math.log(1e-12 / 16) / math.log(0.64)) + 2
    assert STEPS == closed_form_steps == 70
    assert abs(X - (4 - 4 * 0.8**STEPS)) < 1e-6
    assert f"{X:.7f}" == "3.9999993"


def _row(step):
    return ROWS[step - 1]


# Text each example must print (its own claims: a bit-for-bit comparison it made, a status).
TEXT = {
    "minimize.py": ["keras.optimizers.SGD has minimize: False", "status = converged"],
    "gradient_tape.py": ["status = converged"],
    "persistent_tape.py": ["is released now"],
    "fused.py": ["same stop step, history and x (bit for bit): True"],
    "resume.py": [
        "first process killed by signal 9 (SIGKILL is 9)",
        "restored step 10, then 30 steps in all: exhausted",
        "same stop step as an uninterrupted run: True",
        "same history: True",
        "same weights (bit for bit): True",
    ],
    "custom_strategy.py": ["custom strategy: ", "status = converged"],
    "keras_mlp.py": [
        "keras mlp: 256 steps (exhausted: data exhausted after 256 steps)",
        "256 rows in mlp.csv (step,loss,accuracy)",
    ],
    # its numbers are checked against a hand-written loop in tests/tf/test_keras_workflow.py
    "keras_workflow.py": ["converged after epoch", "best weights restored", "best epoch"],
    "jax_article.py": [
        "grad_z = 1 at all 70 steps: True",
        "fused = step by step (stop step, reason, history, grad_z, x bit for bit): True",
    ],
    # its numbers are checked against a hand-written loop in tests/jax/test_equinox.py
    "jax_equinox.py": [
        "variables (pytree paths of the MLP): layers/0/weight, layers/0/bias,",
        "params bit for bit: True",
    ],
}

#: What each example imports beyond the core (it is skipped where one is missing); the others
#: import tensorflow and keras.
NEEDS = {"jax_article.py": ("jax", "optax"), "jax_equinox.py": ("jax", "optax", "equinox")}

LOSS = r"LossBelow\(1e-12\): loss (\S+) < 1e-12 at step (\d+)"

# Numbers each example prints, as (pattern, values computed here): matched to the printed
# precision.
NUMBERS = {
    "minimize.py": [
        (r"converged: " + LOSS, (LAST_LOSS, STEPS)),
        (
            r"minimize: (\d+) steps, x = (\S+), optimizer iterations = (\d+)",
            (STEPS, X, STEPS),
        ),
    ],
    "gradient_tape.py": [
        (r"step 10: loss=(\S+) x=(\S+) grad\[x\]=(\S+)", (_row(10)[1], _row(10)[3], _row(10)[2])),
        (r"gradient tape: (\d+) steps, x = (\S+), last gradient = (\S+),", (STEPS, X, LAST_GRAD)),
        (r"one loss per step: (\d+) entries, first (\S+), last (\S+)", (STEPS, 16.0, LAST_LOSS)),
    ],
    "persistent_tape.py": [
        (
            r"persistent tape: (\d+) steps, x = (\S+), grad_z = (\S+), grad_y = (\S+)",
            (STEPS, X, 1.0, LAST_GRAD),
        ),
        (r"the tape was open in (\d+) of (\d+) step callbacks", (STEPS, STEPS)),
    ],
    "fused.py": [
        (r"step by step \+ XLA: (\d+) steps, x = (\S+)", (STEPS, X)),
        (r"fused \+ XLA: +(\d+) steps, x = (\S+)", (STEPS, X)),
        (r"fused stop reason: " + LOSS, (LAST_LOSS, STEPS)),
        (r"step 40: loss=(\S+) x=(\S+)", (_row(40)[1], _row(40)[3])),
    ],
    "jax_article.py": [
        (r"\(a\) jitted: (\d+) steps, x = (\S+), converged", (STEPS, X)),
        (r"stop reason: " + LOSS, (LAST_LOSS, STEPS)),
        (r"step 10: loss = (\S+)", (_row(10)[1],)),
        (r"\(b\) eager \(jit=False\): (\d+) steps, x = (\S+), converged", (STEPS, X)),
        (
            r"\(c\) loss and target z: (\d+) steps, x = (\S+), grad_z = (\S+), grad_loss = (\S+)",
            (STEPS, X, 1.0, LAST_GRAD),
        ),
        (r"fused \(steps_per_call=64\): (\d+) steps, x = (\S+), grad_z = (\S+)", (STEPS, X, 1.0)),
    ],
}


def assert_printed(printed, expected, line):
    """``printed`` (text) is ``expected``: exactly for an int, else to its last printed digit."""
    if isinstance(expected, int):
        assert int(printed) == expected, (printed, expected, line)
        return
    unit = 10.0 ** decimal.Decimal(printed).as_tuple().exponent
    assert abs(float(printed) - expected) <= unit, (printed, expected, line)


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(TEXT)


@pytest.mark.parametrize("name", sorted(TEXT))
def test_example_runs_and_prints(name):
    for module in NEEDS.get(name, ("tensorflow", "keras")):
        pytest.importorskip(module)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(  # within the 300 s per-test timeout, so this error comes first
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for expected in TEXT[name]:
        assert expected in out.stdout, (expected, out.stdout)
    for pattern, values in NUMBERS.get(name, []):
        found = re.search(pattern, out.stdout)
        assert found, (pattern, out.stdout)
        assert len(found.groups()) == len(values)
        for printed, value in zip(found.groups(), values, strict=True):
            assert_printed(printed, value, found.group(0))
