"""steploop's ``OptaxStep`` side by side with the JAX loops people write by hand, in one process.

What it measures:

* **The quadratic, time to tolerance**: SGD(0.1) on ``(x - 4)**2`` from x = 0 until the loss is
  below 1e-12 (70 steps), at most 1000 steps: steploop default (a jitted step a call), steploop
  fused (``steps_per_call=1000``), a hand jitted optax step in a Python ``for`` with the
  tolerance checked on the host each step, a hand ``lax.while_loop`` that checks it inside, and
  ``optimistix.minimise`` with ``OptaxMinimiser(optax.sgd(0.1), rtol, atol)`` (it stops on
  Cauchy tolerances, not on a loss; ``rtol = atol = 5e-8`` is the loosest that ends below 1e-12).
* **The MLP**: 784-256-256-10, batch 128, Adam(1e-3), softmax cross-entropy on synthetic data
  (32 device batches, cycled), steps per second: steploop default, steploop fused
  (``steps_per_call=32``), a hand jitted step loop (no host read; blocked at the end), the same
  reading the loss each step (what a criterion needs), and a hand fused loop (``lax.scan`` over K
  batches stacked per call, as steploop stacks them).

How: every contender is built once and warmed up (traced, compiled), then all are timed in
interleaved rounds so that a noisy moment hurts them alike (short runs ``repeat`` times in a row
within a round, their median counting). Tables give the median time of each, and each ratio as the
median over rounds of the per-round ratio with its min-max spread. Prints Markdown; ``--quick``
for a smoke run; ``--rounds N``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import steploop as sl
from steploop.jax import OptaxStep

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing
from timing import table

try:
    import optimistix as optx
except ImportError:  # reported in the table
    optx = None

TOL = 1e-12
LR = 0.1
#: ``optimistix`` stops when successive x and f differ by less than ``atol + rtol * |.|``; this
#: is the loosest ``rtol = atol`` at which its final loss is below ``TOL`` (69 steps).
OPTX_TOL = 5e-8


# -- timing and tables ----------------------------------------------------------------------------
def timed_rounds(
    contenders: dict[str, Callable[[], object]], rounds: int, repeat: int = 1
) -> dict[str, list[float]]:
    """Seconds of one call of each contender, one entry per interleaved round (see ``timing``)."""
    return timing.rounds(contenders, rounds, repeat)


def speedup(times: dict[str, list[float]], name: str, against: str) -> tuple[float, float, float]:
    """How many times faster ``name`` is than ``against``: the median of the per-round ratios,
    and their min and max."""
    ratios = [b / a for a, b in zip(times[name], times[against], strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def spread(ratio: tuple[float, float, float]) -> str:
    median, low, high = ratio
    return f"{median:.2f}x ({low:.2f}-{high:.2f})"


def block(tree: Any) -> Any:
    return jax.block_until_ready(tree)


# -- the quadratic: the article's (x - 4)**2 with SGD(0.1) ---------------------------------------
def quadratic_loss(params: Any) -> Any:
    return (params["x"] - 4.0) ** 2


def start() -> dict[str, Any]:
    return {"x": jnp.array(0.0)}


def hand_step_loop(max_steps: int, tol: float) -> Callable[[], int]:
    opt = optax.sgd(LR)

    @jax.jit
    def step(params: Any, state: Any) -> Any:
        loss, grads = jax.value_and_grad(quadratic_loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    def run() -> int:
        params = start()
        state = opt.init(params)
        for i in range(1, max_steps + 1):
            params, state, loss = step(params, state)
            if float(loss) < tol:
                return i
        return max_steps

    return run


def hand_fused_loop(max_steps: int, tol: float) -> Callable[[], int]:
    opt = optax.sgd(LR)

    @jax.jit
    def loop(params: Any, state: Any) -> Any:
        def cond(carry: Any) -> Any:
            i, done = carry[0], carry[1]
            return (i < max_steps) & ~done

        def body(carry: Any) -> Any:
            i, _, params, state = carry
            loss, grads = jax.value_and_grad(quadratic_loss)(params)
            updates, state = opt.update(grads, state, params)
            return i + 1, loss < tol, optax.apply_updates(params, updates), state

        return lax.while_loop(cond, body, (jnp.int32(0), jnp.array(False), params, state))

    def run() -> int:
        params = start()
        return int(loop(params, opt.init(params))[0])

    return run


def optimistix_minimise(max_steps: int) -> Callable[[], int] | None:
    if optx is None:
        return None
    solver = optx.OptaxMinimiser(optax.sgd(LR), rtol=OPTX_TOL, atol=OPTX_TOL)

    @jax.jit
    def minimise(y0: Any) -> Any:
        solution = optx.minimise(
            lambda y, args: quadratic_loss(y), solver, y0, max_steps=max_steps, throw=False
        )
        return solution.stats["num_steps"], solution.value

    def run() -> int:
        steps, value = minimise(start())
        block(value)
        return int(steps)

    return run


def steploop_run(max_steps: int, tol: float, steps_per_call: int = 1) -> Callable[[], int]:
    opt = optax.sgd(LR)
    strategy = OptaxStep(quadratic_loss, start(), opt)

    def run() -> int:
        strategy.params = start()
        strategy.opt_state = opt.init(strategy.params)
        criteria = [sl.LossBelow(tol) | sl.MaxSteps(max_steps)]
        return sl.Trainer(strategy, criteria, steps_per_call=steps_per_call).run().steps

    return run


def quadratic_tables(rounds: int, quick: bool) -> tuple[str, dict[str, float]]:
    del quick  # 70 steps: the same work either way
    hand = "hand jitted step loop (Python `for`, tolerance on the host)"
    fused_hand = "hand `lax.while_loop` (tolerance inside)"
    default = "steploop default (`OptaxStep`, 1 step a call)"
    fused = "steploop fused (`steps_per_call=1000`)"
    minimise = f"`optimistix.minimise` (`OptaxMinimiser`, rtol = atol = {OPTX_TOL:g})"
    to_tol: dict[str, Callable[[], int]] = {
        hand: hand_step_loop(1000, TOL),
        fused_hand: hand_fused_loop(1000, TOL),
        default: steploop_run(1000, TOL),
        fused: steploop_run(1000, TOL, steps_per_call=1000),
    }
    optimistix_run = optimistix_minimise(1000)
    if optimistix_run is not None:
        to_tol[minimise] = optimistix_run
    steps = {name: run() for name, run in to_tol.items()}
    times = timed_rounds(to_tol, rounds, repeat=10)  # type: ignore[arg-type]
    rows = []
    for name in to_tol:
        rows.append(
            [
                name,
                str(steps[name]),
                f"{statistics.median(times[name]) * 1e6:,.0f}",
                spread(speedup(times, name, hand)),
            ]
        )
    if optimistix_run is None:
        rows.append(["`optimistix.minimise`", "-", "not installed", "-"])
    text = table(
        [
            "contender (x from 0 to loss < 1e-12, SGD(0.1))",
            "steps",
            "µs per run",
            "speed vs hand step loop (spread)",
        ],
        rows,
    )
    numbers = {
        "steps_default": steps[default],
        "steps_fused": steps[fused],
        "default_vs_hand": speedup(times, default, hand)[0],
        "fused_vs_hand_fused": speedup(times, fused, fused_hand)[0],
        "fused_vs_optimistix": (
            speedup(times, fused, minimise)[0] if optimistix_run else float("nan")
        ),
        "fused_vs_optimistix_min": (
            speedup(times, fused, minimise)[1] if optimistix_run else float("nan")
        ),
    }
    return text, numbers


# -- the MLP: 784-256-256-10, batch 128, Adam ------------------------------------------------------
def mlp_params(sizes: tuple[int, ...], dtype: Any = jnp.float32) -> list[dict[str, Any]]:
    keys = jax.random.split(jax.random.key(0), len(sizes) - 1)
    return [
        {
            "kernel": (jax.random.normal(key, (n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype),
            "bias": jnp.zeros(n_out, dtype),
        }
        for key, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
    ]


def mlp_loss(params: list[dict[str, Any]], batch: tuple[Any, Any]) -> Any:
    x, y = batch
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["kernel"] + layer["bias"])
    logits = (x @ params[-1]["kernel"] + params[-1]["bias"]).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def mlp_batches(count: int, batch: int, width: int, classes: int, dtype: Any) -> list[Any]:
    """``count`` synthetic batches on the device (features ``dtype``, int32 labels)."""
    rng = np.random.default_rng(0)
    return [
        (
            jnp.asarray(rng.normal(size=(batch, width)).astype(np.float32), dtype),
            jnp.asarray(rng.integers(0, classes, size=batch).astype(np.int32)),
        )
        for _ in range(count)
    ]


def mlp_contenders(
    sizes: tuple[int, ...], batch: int, steps: int, per_call: int, dtype: Any = jnp.float32
) -> dict[str, Callable[[], None]]:
    """The MLP contenders, each running ``steps`` Adam steps over the cycled batches."""
    data = mlp_batches(32, batch, sizes[0], sizes[-1], dtype)
    feed = list(itertools.islice(itertools.cycle(data), steps))

    def hand(read_loss: bool) -> Callable[[], None]:
        opt = optax.adam(1e-3)
        params = mlp_params(sizes, dtype)
        state = [params, opt.init(params)]

        @jax.jit
        def step(params: Any, opt_state: Any, batch: Any) -> Any:
            loss, grads = jax.value_and_grad(mlp_loss)(params, batch)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        def run() -> None:
            params, opt_state = state
            for batch in feed:
                params, opt_state, loss = step(params, opt_state, batch)
                if read_loss and not np.isfinite(float(loss)):
                    raise FloatingPointError("loss")
            state[:] = block((params, opt_state))

        return run

    def hand_fused() -> Callable[[], None]:
        opt = optax.adam(1e-3)
        params = mlp_params(sizes, dtype)
        state = [params, opt.init(params)]

        @jax.jit
        def loop(params: Any, opt_state: Any, stacked: Any) -> Any:
            def body(carry: Any, batch: Any) -> Any:
                params, opt_state = carry
                loss, grads = jax.value_and_grad(mlp_loss)(params, batch)
                updates, opt_state = opt.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), loss

            (params, opt_state), losses = lax.scan(body, (params, opt_state), stacked)
            return params, opt_state, losses

        def run() -> None:
            params, opt_state = state
            for first in range(0, steps, per_call):
                chunk = feed[first : first + per_call]
                stacked = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *chunk)
                params, opt_state, losses = loop(params, opt_state, stacked)
                if not np.all(np.isfinite(np.asarray(losses))):
                    raise FloatingPointError("loss")
            state[:] = block((params, opt_state))

        return run

    def ours(steps_per_call: int) -> Callable[[], None]:
        strategy = OptaxStep(mlp_loss, mlp_params(sizes, dtype), optax.adam(1e-3))

        def run() -> None:
            trainer = sl.Trainer(
                strategy, [sl.StopOnNaN()], data=feed, steps_per_call=steps_per_call
            )
            assert trainer.run().steps == steps
            block(strategy.params)

        return run

    return {
        "hand jitted step loop": hand(read_loss=False),
        "hand jitted step loop, loss read each step": hand(read_loss=True),
        f"hand fused loop (`lax.scan`, K={per_call})": hand_fused(),
        "steploop default": ours(1),
        f"steploop fused (`steps_per_call={per_call}`)": ours(per_call),
    }


def mlp_table(
    contenders: dict[str, Callable[[], None]], steps: int, rounds: int, title: str
) -> tuple[str, dict[str, float]]:
    times = timed_rounds(contenders, rounds)  # type: ignore[arg-type]
    names = list(contenders)
    hand, fused_hand = names[0], names[2]
    default, fused = names[3], names[4]
    rows = [
        [
            name,
            f"{steps / statistics.median(times[name]):,.0f}",
            spread(speedup(times, name, hand)),
            spread(speedup(times, name, fused_hand)),
        ]
        for name in names
    ]
    text = table([title, "steps/s", "vs hand step loop", "vs hand fused loop"], rows)
    numbers = {
        "default_vs_hand": speedup(times, default, hand)[0],
        "default_vs_hand_read": speedup(times, default, names[1])[0],
        "fused_vs_hand_fused": speedup(times, fused, fused_hand)[0],
    }
    return text, numbers


def mlp_tables(rounds: int, quick: bool) -> tuple[str, dict[str, float]]:
    steps, per_call = (32, 8) if quick else (256, 32)
    sizes = (784, 64, 64, 10) if quick else (784, 256, 256, 10)
    batch = 32 if quick else 128
    title = f"contender (MLP {'-'.join(map(str, sizes))}, batch {batch}, Adam)"
    return mlp_table(mlp_contenders(sizes, batch, steps, per_call), steps, rounds, title)


def machine() -> str:
    device = jax.devices()[0]
    return (
        f"{timing.machine()}, JAX {jax.__version__} on {device.platform} "
        f"({device.device_kind}), optax {optax.__version__}, "
        f"optimistix {optx.__version__ if optx else 'not installed'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 7)
    print(f"Machine: {machine()}; medians of {rounds} interleaved rounds.\n")
    quadratic, q = quadratic_tables(rounds, args.quick)
    print("### The quadratic\n\n" + quadratic + "\n")
    mlp, m = mlp_tables(rounds, args.quick)
    print("### The MLP\n\n" + mlp + "\n")
    targets = [
        (
            "time to tolerance: steploop fused beats optimistix.minimise",
            f"{q['fused_vs_optimistix']:.2f}x (worst round {q['fused_vs_optimistix_min']:.2f}x)",
            q["fused_vs_optimistix"] > 1,
        ),
        (
            "MLP: steploop default >= 0.95x hand jitted step loop",
            f"{m['default_vs_hand']:.2f}x (vs the loop reading the loss: "
            f"{m['default_vs_hand_read']:.2f}x)",
            m["default_vs_hand"] >= 0.95,
        ),
        (
            "MLP: steploop fused >= 0.95x hand fused loop",
            f"{m['fused_vs_hand_fused']:.2f}x",
            m["fused_vs_hand_fused"] >= 0.95,
        ),
    ]
    rows = [[name, value, "met" if ok else "**missed**"] for name, value, ok in targets]
    print("### Targets\n\n" + table(["target", "measured (median of rounds)", ""], rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
