"""The JAX checks for a GPU machine, in one script: a bigger MLP benchmark, then the JAX tests.

Needs JAX with CUDA, optax, pytest and hypothesis (no TensorFlow, no network). Run from the
repository root: ``python benchmarks/gpu.py``.

1. The MLP of ``bench_jax.py`` made bigger: 784-4096-4096-10, batch 1024, Adam(1e-3), synthetic
   data already on the device, in float32 and in bfloat16 (parameters and features; the logits
   are cast to float32 for the loss). Contenders: the hand jitted step loop (with and without a
   host read of the loss each step), the hand fused loop (``lax.scan`` over K = 32 stacked
   batches), steploop default (``OptaxStep``, a step a call) and steploop fused
   (``steps_per_call=32``). Timed as in ``bench_jax.py``: built and warmed up once, then
   interleaved rounds; steps/s are medians, ratios the median of per-round ratios with their
   min-max spread.
2. ``pytest tests/jax -q`` in a subprocess (``--tests`` to choose other paths, ``--no-tests`` to
   skip), with ``src`` on the path and GPU memory allocated on demand, so that this process and the
   tests' own subprocesses share the card.

Prints the device name and Markdown tables; exits non-zero when the tests fail. ``--quick`` runs
tiny sizes on the CPU (a smoke run of the script itself).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--tests", nargs="*", default=["tests/jax"], help="paths for pytest")
    parser.add_argument("--no-tests", action="store_true", help="only the benchmark")
    return parser.parse_args()


def run_tests(paths: list[str]) -> tuple[int, str, float]:
    """``pytest -q paths`` from the repository root: its exit code, last line and seconds."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    lines = done.stdout.strip().splitlines() or ["(no output)"]
    if done.returncode != 0:
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
    return done.returncode, lines[-1], seconds


def main() -> int:
    args = arguments()
    # before JAX is imported: allocate GPU memory on demand (the tests start processes of their
    # own); --quick runs on the CPU whatever the machine has
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.quick:
        os.environ["JAX_PLATFORMS"] = "cpu"
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_jax
    import jax
    import jax.numpy as jnp

    rounds = args.rounds or (2 if args.quick else 5)
    if args.quick:
        sizes, batch, steps, per_call = (64, 128, 128, 10), 64, 16, 4
    else:
        sizes, batch, steps, per_call = (784, 4096, 4096, 10), 1024, 256, 32
    device = jax.devices()[0]
    print(f"Device: {device.device_kind} ({device.platform}, {len(jax.devices())} device(s))")
    print(f"Machine: {bench_jax.machine()}; medians of {rounds} interleaved rounds.\n")
    targets = []
    for dtype in (jnp.float32, jnp.bfloat16):
        name = jnp.dtype(dtype).name
        title = f"contender (MLP {'-'.join(map(str, sizes))}, batch {batch}, Adam, {name})"
        contenders = bench_jax.mlp_contenders(sizes, batch, steps, per_call, dtype)
        text, numbers = bench_jax.mlp_table(contenders, steps, rounds, title)
        print(f"### MLP, {name}\n\n{text}\n")
        targets += [
            (f"{name}: steploop default >= 0.95x hand step loop", numbers["default_vs_hand"]),
            (f"{name}: steploop fused >= 0.95x hand fused loop", numbers["fused_vs_hand_fused"]),
        ]
    rows = [
        [name, f"{value:.2f}x", "met" if value >= 0.95 else "**missed**"] for name, value in targets
    ]
    print("### Targets\n\n" + bench_jax.table(["target", "measured", ""], rows) + "\n")
    sys.stdout.flush()
    if args.no_tests:
        return 0
    code, summary, seconds = run_tests(args.tests)
    print(f"### Tests\n\n`pytest -q {' '.join(args.tests)}`: {summary} ({seconds:.0f} s wall)")
    return code


if __name__ == "__main__":
    sys.exit(main())
