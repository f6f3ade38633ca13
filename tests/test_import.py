"""The core imports no framework."""

import subprocess
import sys


def test_import_steploop_does_not_import_tensorflow():
    """Neither TensorFlow (nor any framework, nor the optional tqdm) comes with the core."""
    code = (
        "import sys, steploop, steploop.numpy;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras', 'torch', 'jax', 'tqdm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_exported():
    import steploop

    for name in steploop.__all__:
        assert hasattr(steploop, name), name
