"""The core imports no framework."""

import subprocess
import sys
import types


def test_import_steploop_does_not_import_tensorflow():
    """Neither TensorFlow (nor any framework, nor the optional tqdm) comes with the core."""
    code = (
        "import sys, steploop, steploop.numpy;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras', 'torch', 'jax', 'jaxlib', 'optax', 'tqdm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_lists_exactly_the_public_names():
    """``__all__`` is the package's public namespace: every public object in it (submodules
    aside) is listed, nothing listed is missing, and ``import *`` gives exactly those names."""
    import steploop

    public = {
        name
        for name, value in vars(steploop).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
        # a mutation-testing run (make mutate) adds this helper to every mutated module
        and name != "MutantDict"
    }
    assert public == set(steploop.__all__)
    assert len(steploop.__all__) == len(set(steploop.__all__)), "a name listed twice"
    namespace: dict = {}
    exec("from steploop import *", namespace)
    assert set(namespace) - {"__builtins__"} == public
