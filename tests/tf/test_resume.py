"""A run SIGKILLed at any step and resumed from its last checkpoint ends exactly like a run never
interrupted: same stop step and reason, same history, same variables bit for bit."""

import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.resume import spawn

#: Steps of each uninterrupted run (the quadratic converges at 70; the Keras models' data, 32
#: batches, runs out at 32). The ``*_nolist`` models give no var_list (see ``resume_worker``).
LENGTH = {"quadratic": 70, "keras": 32, "keras_nolist": 32, "persistent_nolist": 32}


def worker(model, directory, kill_at=None):
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    return spawn("tests.tf.resume_worker", model, directory, kill_at, env, timeout=300)


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
