"""The benchmark script runs (tiny sizes); every steploop contender does the 70 steps."""

import importlib.util
import pathlib

import pytest

pytest.importorskip("tensorflow")  # bench.py imports tensorflow and keras at the top

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
