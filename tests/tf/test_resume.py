"""A run SIGKILLed at any step and resumed from its last checkpoint ends exactly like a run never
interrupted: same stop step and reason, same history, same variables bit for bit."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Steps of each uninterrupted run (the quadratic converges at 70; the Keras models' data, 32
#: batches, runs out at 32). The ``*_nolist`` models give no var_list (see ``resume_worker``).
LENGTH = {"quadratic": 70, "keras": 32, "keras_nolist": 32, "persistent_nolist": 32}


def worker(model, directory, kill_at=None):
    out = os.path.join(directory, "out.json")
    command = [sys.executable, "-m", "tests.tf.resume_worker", "--model", model]
    command += ["--dir", os.path.join(directory, "ckpt"), "--out", out]
    if kill_at is not None:
        command += ["--kill-at", str(kill_at)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if kill_at is not None:
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        return None
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out, encoding="utf-8") as file:
        return json.load(file)


@pytest.fixture(scope="module")
def uninterrupted():
    results = {}
    for model in LENGTH:
        results[model] = worker(model, tempfile.mkdtemp())
        assert results[model]["steps"] == LENGTH[model]
    return results


@pytest.mark.parametrize("model", sorted(LENGTH))
def test_killed_runs_resume_exactly(model, uninterrupted):
    @settings(max_examples=2 if model.endswith("nolist") else 3, deadline=None)
    @given(st.integers(min_value=1, max_value=LENGTH[model] - 1))
    def check(kill_at):
        directory = tempfile.mkdtemp()
        worker(model, directory, kill_at=kill_at)
        resumed = worker(model, directory)
        reference = uninterrupted[model]
        every = 7 if model == "quadratic" else 5
        assert reference["variables"]
        # Checkpoint fires after the other callbacks: the killed step's own save never ran
        assert resumed["restored"] == (((kill_at - 1) // every) * every or None)
        for key in ("steps", "status", "reason", "variables", "history"):
            assert resumed[key] == reference[key], key

    check()
