"""The JAX tests: all of them skip where JAX or optax is not installed (the core's own run,
``make test-core``); ``jax``, ``jnp`` and ``optax`` are imported once for the session."""

import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")


@pytest.fixture(scope="session")
def jax():
    """JAX, imported once for the whole session."""
    import jax as module

    return module


@pytest.fixture(scope="session")
def jnp(jax):
    """``jax.numpy``."""
    return jax.numpy


@pytest.fixture(scope="session")
def optax():
    """optax, imported once for the whole session."""
    import optax as module

    return module
