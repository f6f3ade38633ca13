"""Every example runs and prints what it demonstrates."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "minimize.py": [
        "keras.optimizers.SGD has minimize: False",
        "converged: LossBelow(1e-12): loss 9.09495e-13 < 1e-12 at step 70",
        "minimize: 70 steps, x = 3.9999993, optimizer iterations = 70, status = converged",
    ],
    "gradient_tape.py": [
        "step 10: loss=0.28823 x=3.570503 grad[x]=-1.07374",
        "gradient tape: 70 steps, x = 3.9999993, last gradient = -1.91e-06, status = converged",
    ],
    "persistent_tape.py": [
        "persistent tape: 70 steps, x = 3.9999993, grad_z = 1, grad_y = -1.91e-06",
        "the tape was open in 70 of 70 step callbacks and is released now",
    ],
    "fused.py": [
        "step by step + XLA: 70 steps, x = 3.9999993",
        "fused + XLA:        70 steps, x = 3.9999993",
        "fused stop reason: LossBelow(1e-12): loss 9.09495e-13 < 1e-12 at step 70",
        "same stop step, history and x (bit for bit): True",
        "step 40: loss=4.41841e-07 x=3.999468",
    ],
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
}


def test_every_example_is_covered():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints(name):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for expected in EXPECTED[name]:
        assert expected in out.stdout, (expected, out.stdout)
