"""A JAX run SIGKILLed at any step and resumed from its last checkpoint in a new process ends
exactly like a run never interrupted: same steps, status and reason, same history, same
parameters bit for bit (Adam's moments restored with them)."""

import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.resume import ROOT, spawn

#: Steps of each uninterrupted run (the quadratic converges at 61; the data, 40 batches, runs out
#: at 40) and the checkpoint interval of each (see ``resume_worker``).
LENGTH = {"quadratic": 61, "data": 40}
EVERY = {"quadratic": 7, "data": 5}


def worker(model, directory, kill_at=None):
    # the worker imports this checkout's steploop; on a GPU the pytest process holds memory too,
    # so the worker allocates on demand
    paths = (os.path.join(ROOT, "src"), os.environ.get("PYTHONPATH"))
    path = os.pathsep.join(p for p in paths if p)
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONPATH": path}
    return spawn("tests.jax.resume_worker", model, directory, kill_at, env, timeout=120)


@pytest.fixture(scope="module")
def uninterrupted():
    results = {}
    for model in LENGTH:
        results[model] = worker(model, tempfile.mkdtemp())
        assert results[model]["steps"] == LENGTH[model]
        assert results[model]["restored"] is None
    return results


def test_the_uninterrupted_runs_stop_as_designed(uninterrupted):
    """The quadratic converges (LossBelow), the fused data run exhausts its 40 batches."""
    assert uninterrupted["quadratic"]["status"] == "converged"
    assert uninterrupted["quadratic"]["reason"].startswith("LossBelow(1e-06)")
    assert uninterrupted["data"]["status"] == "exhausted"
    assert set(uninterrupted["data"]["variables"]) == {"b", "w"}


@pytest.mark.parametrize("model", sorted(LENGTH))
def test_killed_runs_resume_exactly(model, uninterrupted):
    """SIGKILL at a hypothesis-chosen step, resume in a new process: the same end as one run."""

    @settings(max_examples=3 if model == "quadratic" else 2, deadline=None)
    @given(st.integers(min_value=1, max_value=LENGTH[model] - 1))
    def check(kill_at):
        directory = tempfile.mkdtemp()
        worker(model, directory, kill_at=kill_at)
        resumed = worker(model, directory)
        reference = uninterrupted[model]
        every = EVERY[model]
        # Checkpoint fires after the other callbacks: the killed step's own save never ran
        assert resumed["restored"] == (((kill_at - 1) // every) * every or None)
        for key in ("steps", "status", "reason", "variables", "history"):
            assert resumed[key] == reference[key], key

    check()
