"""The benchmark scripts run (tiny sizes); every steploop contender does the 70 steps; the default
rows pass no speed argument; results.json, the chart and the callgrind parser work on small
synthetic inputs (no timing is asserted anywhere).

``bench.py`` needs tensorflow and keras, ``bench_jax.py`` and ``gpu.py`` jax and optax: each
test skips where its framework is missing; the results and callgrind tests need neither."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench.py"
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import timing, results, overhead


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
    text, numbers, rows = bench.quadratic_tables(rounds=1, quick=True)
    assert "| `tfp.math.minimize` | - | not installed | - |" in text
    to_tolerance = text.split("\n\n")[0].splitlines()[2:]
    steps = {row.split(" | ")[0].lstrip("| "): row.split(" | ")[1] for row in to_tolerance}
    ours = {name: count for name, count in steps.items() if name.startswith("steploop")}
    assert len(ours) == 3 and set(ours.values()) == {"70"}, steps
    assert steps["hand XLA fused loop"] == steps["the article's eager loop"] == "70"
    assert numbers["default_ratio"].spread.median > 0 and numbers["fused_ratio"].spread.low > 0
    assert bench.DEFAULT in steps and {row["table"] for row in rows} == {
        "quadratic to tolerance",
        "quadratic per step",
    }


def test_default_rows_pass_no_speed_arguments(monkeypatch):
    """The TensorFlow default row builds ``TapeStep`` and the ``Trainer`` with no keyword at all;
    a tuned row passes its own."""
    bench = load_bench()
    calls = []

    def spy(name, real):
        def build(*args, **kwargs):
            calls.append((name, kwargs))
            return real(*args, **kwargs)

        return build

    monkeypatch.setattr(bench, "TapeStep", spy("TapeStep", bench.TapeStep))
    monkeypatch.setattr(bench.sl, "Trainer", spy("Trainer", bench.sl.Trainer))
    assert bench.steploop_run(5, 0.0)() == 5
    assert calls == [("TapeStep", {}), ("Trainer", {})]
    calls.clear()
    bench.steploop_run(5, 0.0, steps_per_call=5, jit_compile=True)()
    assert calls == [("TapeStep", {"jit_compile": True}), ("Trainer", {"steps_per_call": 5})]


def test_trainer_overhead_table():
    bench = load_bench()
    text, five, rows = bench.overhead(rounds=1, quick=True)
    assert "| five criteria |" in text and "| bare Python loop" in text
    assert five.median > 0 and len(rows) == 4


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
    assert minimise in (["69", "69"], ["-"]), steps  # twice: direct and jitted; "-": not installed
    assert numbers["default_vs_hand"] > 0 and numbers["fused_vs_hand_fused"] > 0
    if minimise != ["-"]:
        keys = ("default_vs_optimistix", "fused_vs_optimistix", "fused_vs_optimistix_jit")
        assert all(numbers[key] > 0 for key in keys), numbers


def test_jax_mlp_table_runs():
    bench = load_bench_jax()
    text, numbers = bench.mlp_tables(rounds=1, quick=True)
    assert len(text.splitlines()) == 2 + 5
    assert "| steploop tuned (`steps_per_call=8`) |" in text
    assert "| steploop default (no speed arguments) |" in text
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


def test_ratios_are_per_round_with_their_spread():
    """A ratio is the median of the per-round ratios with their min-max, not a ratio of medians."""
    import timing

    times = {"ours": [1.0, 2.0, 4.0], "hand": [2.0, 2.0, 2.0]}
    speed = timing.ratio(times, "ours", "hand")
    assert speed.per_round == (2.0, 1.0, 0.5)
    assert (speed.spread.median, speed.spread.low, speed.spread.high) == (1.0, 0.5, 2.0)
    assert speed.format() == "1.00x (0.50-2.00)"
    per_step = timing.ratio(times, "ours", "hand", "time", per={"ours": 2, "hand": 1})
    assert per_step.per_round == (0.25, 0.5, 1.0)
    assert per_step.as_speed().per_round == (4.0, 2.0, 1.0)


def test_results_json_round_trip_and_chart(tmp_path):
    """``save`` replaces one section and keeps the others; ``load`` reads it back; the charted
    ratios come out as speed ratios; the chart is a PNG (where matplotlib is installed)."""
    import results
    import timing

    path = tmp_path / "results.json"
    times = {"steploop default": [2.0, 4.0], "hand": [4.0, 4.0]}
    ratios = [timing.ratio(times, "steploop default", "hand", "time")]
    row = results.row("t", "steploop default", times["steploop default"], 7, ratios, {"hand": "A"})
    results.save("tensorflow", "a machine", 2, True, [row], path)
    results.save("jax", "a machine", 2, False, [], path)
    data = results.load(path)
    assert data["schema"] == results.SCHEMA and set(data["sections"]) == {"tensorflow", "jax"}
    section = data["sections"]["tensorflow"]
    assert section["quick"] is True and section["rounds"] == 2 and section["date"]
    saved = section["rows"][0]
    assert saved["seconds"] == {"median": 3.0, "low": 2.0, "high": 4.0} and saved["steps"] == 7
    assert saved["ratios"][0]["kind"] == "time" and saved["ratios"][0]["per_round"] == [0.5, 1.0]
    [(label, speed, quick)] = results.chart_entries(data)
    assert label == "A" and quick and (speed.low, speed.high) == (1.0, 2.0)
    results.save("tensorflow", "another", 3, False, [], path)  # replaces its section only
    assert results.load(path)["sections"]["tensorflow"]["machine"] == "another"
    assert "jax" in results.load(path)["sections"]
    data["sections"]["tensorflow"] = section
    drawn = results.draw(data, tmp_path / "chart.png")
    if drawn is not None:
        assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path.write_text('{"schema": 0, "sections": {}}')
    with pytest.raises(ValueError, match="expected schema 1, received 0"):
        results.load(path)


CALLGRIND_OUT = """# callgrind format
version: 1
creator: callgrind-3.22.0
cmd:  python callgrind.py --program bare --count 2000
events: Ir
fl=(1) ???
fn=(1) 0x0000000000001234
0 17
totals: 904052842
summary: 904052842
"""


def test_callgrind_parser_and_report():
    """The total Ir comes from ``summary:`` (else ``totals:``); instructions per step are the
    difference quotient, so start-up cancels."""
    import callgrind

    assert callgrind.parse_total(CALLGRIND_OUT) == 904052842
    assert callgrind.parse_total("events: Ir\ntotals: 12 3\n") == 12
    with pytest.raises(ValueError, match="'summary:' or 'totals:'"):
        callgrind.parse_total("events: Ir\n")
    assert callgrind.per_step((2000, 1_000_000), (4000, 1_200_000)) == 100.0
    text = callgrind.report(
        {"bare": {2000: 1_000_000, 4000: 1_020_000}, "trainer": {2000: 2_000_000, 4000: 2_200_000}}
    )
    assert "| 10 |" in text and "| 100 |" in text and "10.0x" in text


def test_overhead_programs_do_every_step():
    """Both programs callgrind measures run all their steps (neither stops early)."""
    import overhead

    assert overhead.bare_loop(50) == 50
    assert overhead.trainer_run(50) == 50
