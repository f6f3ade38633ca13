"""Shared test set-up: quiet TensorFlow, hypothesis profiles (the ``tf`` and ``keras`` fixtures
live in ``tests/tf/conftest.py``), and what a mutation run (``make mutate``, which sets
``STEPLOOP_MUTATION=1``) changes: the ``mutation`` profile, a 20 s limit per test, and tests
that start a subprocess skip there (the subprocess imports the unmutated code, so it could not
catch a mutant)."""

import os
import subprocess

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from hypothesis import HealthCheck, settings

MUTATION_RUN = bool(os.environ.get("STEPLOOP_MUTATION"))

settings.register_profile(
    "default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=400)
# a mutation run runs the covering tests once per mutant: fewer examples, the same ones each time
settings.register_profile(
    "mutation", parent=settings.get_profile("default"), max_examples=10, derandomize=True
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "mutation" if MUTATION_RUN else "default")
)


#: A mutation run's limit per test (seconds): every core test takes well under a second there, so a
#: mutant that makes a loop endless is caught in seconds, not after the suite's 300 s.
MUTATION_TIMEOUT = 20


def pytest_collection_modifyitems(items):
    if MUTATION_RUN:
        for item in items:
            item.add_marker(pytest.mark.timeout(MUTATION_TIMEOUT))


@pytest.fixture(scope="session", autouse=True)
def _no_subprocess_in_a_mutation_run():
    """In a mutation run, a test that starts a subprocess skips when it does."""
    if not MUTATION_RUN:
        yield
        return
    original = subprocess.Popen.__init__

    def skip(*args, **kwargs):
        pytest.skip("a subprocess imports the unmutated code: skipped in a mutation run")

    subprocess.Popen.__init__ = skip
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original
