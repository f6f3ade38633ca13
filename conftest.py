"""Collection set-up for the whole repository (``testpaths`` holds ``tests`` and ``src``).

Without TensorFlow the doctests of ``steploop.tf`` cannot even be imported, so they are not
collected; ``tests/tf/conftest.py`` skips the TensorFlow tests the same way. The same holds for
JAX (and optax): ``steploop.jax`` and ``tests/jax/``.
"""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("tensorflow") is None:
    collect_ignore_glob.append("src/steploop/tf/*")
if importlib.util.find_spec("jax") is None or importlib.util.find_spec("optax") is None:
    collect_ignore_glob.append("src/steploop/jax/*")
