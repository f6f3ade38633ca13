"""The TensorFlow tests: all of them skip where TensorFlow is not installed (the core's own run,
``make test-core``); the ``tf`` and ``keras`` modules are imported once for the session."""

import pytest

pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once for the whole session."""
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def keras(tf):
    """Keras (3), imported once for the whole session."""
    import keras

    return keras
