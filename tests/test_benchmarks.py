"""The benchmark scripts run (tiny sizes); every steploop contender does the 70 steps.

``bench.py`` needs tensorflow and keras, ``bench_jax.py`` and ``gpu.py`` jax and optax: each
test skips where its framework is missing."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"


def load(path, *modules):
    for module in modules:
        pytest.importorskip(module)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_bench():
    return load(BENCH, "tensorflow", "keras")  # bench.py imports them at the top


def test_quadratic_tables_run_and_reach_the_tolerance_in_70_steps():
    bench = load_bench()
    bench.tfp = None  # as on a machine without tensorflow-probability (`make bench` installs it)
    text, numbers = bench.quadratic_tables(rounds=1, quick=True)
    assert "| `tfp.math.minimize` | - | not installed | - |" in text
    to_tolerance = text.split("\n\n")[0].splitlines()[2:]
    steps = {row.split(" | ")[0].lstrip("| "): row.split(" | ")[1] for row in to_tolerance}
    ours = {name: count for name, count in steps.items() if name.startswith("steploop")}
    assert len(ours) == 3 and set(ours.values()) == {"70"}, steps
    assert steps["hand XLA fused loop"] == steps["the article's eager loop"] == "70"
    assert numbers["default_ratio"] > 0 and numbers["fused_ratio"] > 0


def test_trainer_overhead_table():
    bench = load_bench()
    text, five = bench.overhead(rounds=1, quick=True)
    assert "| five criteria |" in text
    assert five > 0


def load_bench_jax():
    return load(ROOT / "benchmarks" / "bench_jax.py", "jax", "optax")


def test_jax_quadratic_table_runs_and_every_contender_reaches_the_tolerance():
    """Every JAX contender stops at step 70 (optimistix, on its Cauchy tolerances, at 69)."""
    bench = load_bench_jax()
    text, numbers = bench.quadratic_tables(rounds=1, quick=True)
    rows = text.splitlines()[2:]
    steps = {row.split(" | ")[0].lstrip("| "): row.split(" | ")[1] for row in rows}
    assert numbers["steps_default"] == numbers["steps_fused"] == 70
    assert sum(1 for name in steps if name.startswith(("hand", "steploop"))) == 4
    assert {v for k, v in steps.items() if k.startswith(("hand", "steploop"))} == {"70"}
    minimise = [v for k, v in steps.items() if "optimistix" in k]
    assert minimise in (["69"], ["-"]), steps  # "-": not installed
    assert numbers["default_vs_hand"] > 0 and numbers["fused_vs_hand_fused"] > 0


def test_jax_mlp_table_runs():
    bench = load_bench_jax()
    text, numbers = bench.mlp_tables(rounds=1, quick=True)
    assert len(text.splitlines()) == 2 + 5
    assert "| steploop fused (`steps_per_call=8`) |" in text
    assert numbers["default_vs_hand"] > 0 and numbers["fused_vs_hand_fused"] > 0


def test_gpu_script_runs_quick_on_the_cpu():
    """``gpu.py --quick``: tiny sizes on the CPU, both dtypes, then pytest on a small JAX file."""
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick", "--rounds", "1"]
    command += ["--tests", "tests/jax/test_checkpointing.py"]
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "Device: cpu (cpu, 1 device(s))" in done.stdout
    assert "### MLP, float32" in done.stdout and "### MLP, bfloat16" in done.stdout
    assert "`pytest -q tests/jax/test_checkpointing.py`: 3 passed" in done.stdout
