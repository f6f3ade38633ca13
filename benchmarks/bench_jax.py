"""steploop's ``OptaxStep`` side by side with the JAX loops people write by hand, in one process.

What it measures:

* **The quadratic, time to tolerance**: SGD(0.1) on ``(x - 4)**2`` from x = 0 until the loss is
  below 1e-12 (70 steps), at most 1000 steps: steploop default (no speed argument), steploop
  fused (``steps_per_call=1000``), a hand jitted optax step in a Python ``for`` with the
  tolerance checked on the host each step, a hand ``lax.while_loop`` that checks it inside, and
  ``optimistix.minimise`` with ``OptaxMinimiser(optax.sgd(0.1), rtol, atol)`` (it stops on
  Cauchy tolerances, not on a loss; ``rtol = atol = 5e-8`` is the loosest that ends below 1e-12)
  twice: called as its documentation calls it (``optx.minimise(fn, solver, y0)``, which
  compiles once through ``equinox.filter_jit`` and pays that wrapper's Python at every call),
  and inside the user's own ``jax.jit`` (one jitted call, nothing around it, as the hand
  ``lax.while_loop``).
* **The MLP**: 784-256-256-10, batch 128, Adam(1e-3), softmax cross-entropy on synthetic data
  (32 device batches, cycled), steps per second: steploop default, steploop fused
  (``steps_per_call=32``), a hand jitted step loop (no host read; blocked at the end), the same
  reading the loss each step (what a criterion needs), and a hand fused loop (``lax.scan`` over K
  batches stacked per call, as steploop stacks them).

How: every contender is built once and warmed up (traced, compiled), then all are timed in
interleaved rounds so that a noisy moment hurts them alike (short runs ``repeat`` times in a row
within a round, their median counting). Tables give the median time of each, and each ratio as the
median over rounds of the per-round ratio with its min-max spread. The "default" rows pass no
speed argument (no ``steps_per_call``); the tuned rows name theirs. Prints Markdown; ``--quick``
for a smoke run; ``--rounds N``. Writes the section ``"jax"`` of ``benchmarks/results.json`` and
redraws ``benchmarks/results.png`` (see ``results.py``; ``--no-save`` writes neither).
"""

from __future__ import annotations

import itertools
import os
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
import results
import timing
from timing import Spread, table

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


def speedup(times: dict[str, list[float]], name: str, against: str) -> timing.Ratio:
    """How many times faster ``name`` is than ``against``, round by round (``timing.Ratio``)."""
    return timing.ratio(times, name, against)


DEFAULT = "steploop default (no speed arguments)"


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


def optimistix_minimise(max_steps: int, own_jit: bool) -> Callable[[], int] | None:
    """``optimistix.minimise`` as its documentation calls it (``own_jit=False``: the function
    itself, which compiles through ``equinox.filter_jit``), or inside the user's own ``jax.jit``
    (``own_jit=True``: one jitted call with no Python around the solve, as a hand
    ``lax.while_loop``)."""
    if optx is None:
        return None
    solver = optx.OptaxMinimiser(optax.sgd(LR), rtol=OPTX_TOL, atol=OPTX_TOL)

    def objective(y: Any, args: Any) -> Any:  # one function for every call (a new one recompiles)
        return quadratic_loss(y)

    def minimise(y0: Any) -> Any:
        solution = optx.minimise(objective, solver, y0, max_steps=max_steps, throw=False)
        return solution.stats["num_steps"], solution.value

    call = jax.jit(minimise) if own_jit else minimise

    def run() -> int:
        steps, value = call(start())
        block(value)
        return int(steps)

    return run


def steploop_run(max_steps: int, tol: float, **options: int) -> Callable[[], int]:
    """Only the options given reach the ``Trainer`` (none: its defaults)."""
    opt = optax.sgd(LR)
    strategy = OptaxStep(quadratic_loss, start(), opt)

    def run() -> int:
        strategy.params = start()
        strategy.opt_state = opt.init(strategy.params)
        criteria = [sl.LossBelow(tol) | sl.MaxSteps(max_steps)]
        return sl.Trainer(strategy, criteria, **options).run().steps

    return run


def quadratic_tables(
    rounds: int, quick: bool, saved: list[dict[str, Any]] | None = None
) -> tuple[str, dict[str, Any]]:
    """The table, and its numbers: ratio medians as floats, and under ``"ratios"`` the same as
    ``timing.Ratio`` (with their spread). Rows for ``results.json`` are appended to ``saved``."""
    del quick  # 70 steps: the same work either way
    hand = "hand jitted step loop (Python `for`, tolerance on the host)"
    fused_hand = "hand `lax.while_loop` (tolerance inside)"
    default = DEFAULT
    fused = "steploop tuned (`steps_per_call=1000`)"
    settings = f"`OptaxMinimiser`, rtol = atol = {OPTX_TOL:g}"
    minimise = f"`optimistix.minimise` ({settings}), called as its docs call it"
    minimise_jit = f"`optimistix.minimise` ({settings}) inside the user's own `jax.jit`"
    to_tol: dict[str, Callable[[], int]] = {
        hand: hand_step_loop(1000, TOL),
        fused_hand: hand_fused_loop(1000, TOL),
        default: steploop_run(1000, TOL),
        fused: steploop_run(1000, TOL, steps_per_call=1000),
    }
    optimistix_run = optimistix_minimise(1000, own_jit=False)
    if optimistix_run is not None:
        to_tol[minimise] = optimistix_run
        to_tol[minimise_jit] = optimistix_minimise(1000, own_jit=True)  # type: ignore[assignment]
    steps = {name: run() for name, run in to_tol.items()}
    times = timed_rounds(to_tol, rounds, repeat=10)  # type: ignore[arg-type]
    charted = {
        default: {
            hand: "JAX quadratic to tol: default vs hand jitted step loop",
            minimise: "JAX quadratic to tol: default vs optimistix.minimise",
        },
        fused: {
            fused_hand: "JAX quadratic to tol: tuned vs hand lax.while_loop",
            minimise: "JAX quadratic to tol: tuned vs optimistix.minimise",
            minimise_jit: "JAX quadratic to tol: tuned vs optimistix.minimise in jax.jit",
        },
    }
    rows = []
    for name in to_tol:
        against = [speedup(times, name, hand)]
        others = [ref for ref in charted.get(name, {}) if ref in times and ref != hand]
        against += [speedup(times, name, ref) for ref in others]
        rows.append(
            [
                name,
                str(steps[name]),
                Spread.of(times[name]).scaled(1e6).format(",.0f"),
                against[0].format(),
            ]
        )
        if saved is not None:
            saved.append(
                results.row(
                    "JAX quadratic to tolerance",
                    name,
                    times[name],
                    steps[name],
                    against,
                    charted.get(name),
                )
            )
    if optimistix_run is None:
        rows.append(["`optimistix.minimise`", "-", "not installed", "-"])
    text = table(
        [
            "contender (x from 0 to loss < 1e-12, SGD(0.1))",
            "steps",
            "µs per run (min-max)",
            "speed vs hand step loop (min-max)",
        ],
        rows,
    )
    ratios = {
        "default_vs_hand": speedup(times, default, hand),
        "fused_vs_hand_fused": speedup(times, fused, fused_hand),
    }
    if optimistix_run:
        ratios["default_vs_optimistix"] = speedup(times, default, minimise)
        ratios["fused_vs_optimistix"] = speedup(times, fused, minimise)
        ratios["fused_vs_optimistix_jit"] = speedup(times, fused, minimise_jit)
    numbers: dict[str, Any] = {"steps_default": steps[default], "steps_fused": steps[fused]}
    numbers.update({key: r.spread.median for key, r in ratios.items()})
    for key in ("default_vs_optimistix", "fused_vs_optimistix", "fused_vs_optimistix_jit"):
        numbers.setdefault(key, float("nan"))
    numbers["ratios"] = ratios
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

    def ours(**options: int) -> Callable[[], None]:
        """Only the options given reach the ``Trainer`` (none: its defaults)."""
        strategy = OptaxStep(mlp_loss, mlp_params(sizes, dtype), optax.adam(1e-3))

        def run() -> None:
            trainer = sl.Trainer(strategy, [sl.StopOnNaN()], data=feed, **options)
            assert trainer.run().steps == steps
            block(strategy.params)

        return run

    return {
        "hand jitted step loop": hand(read_loss=False),
        "hand jitted step loop, loss read each step": hand(read_loss=True),
        f"hand fused loop (`lax.scan`, K={per_call})": hand_fused(),
        DEFAULT: ours(),
        f"steploop tuned (`steps_per_call={per_call}`)": ours(steps_per_call=per_call),
    }


def mlp_table(
    contenders: dict[str, Callable[[], None]],
    steps: int,
    rounds: int,
    title: str,
    saved: list[dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The table, and its numbers as in ``quadratic_tables`` (rows appended to ``saved``)."""
    times = timed_rounds(contenders, rounds)  # type: ignore[arg-type]
    names = list(contenders)
    hand, fused_hand = names[0], names[2]
    default, fused = names[3], names[4]
    charted = {
        default: {hand: "JAX MLP: default vs hand jitted step loop"},
        fused: {fused_hand: "JAX MLP: tuned (fused) vs hand lax.scan loop"},
    }
    rows = []
    for name in names:
        against = [speedup(times, name, hand), speedup(times, name, fused_hand)]
        rate = Spread.of([steps / t for t in times[name]])
        rows.append([name, rate.format(",.0f")] + [r.format() for r in against])
        if saved is not None:
            saved.append(
                results.row("JAX MLP", name, times[name], steps, against, charted.get(name))
            )
    text = table([title, "steps/s (min-max)", "vs hand step loop", "vs hand fused loop"], rows)
    ratios = {
        "default_vs_hand": speedup(times, default, hand),
        "default_vs_hand_read": speedup(times, default, names[1]),
        "fused_vs_hand_fused": speedup(times, fused, fused_hand),
    }
    numbers: dict[str, Any] = {key: r.spread.median for key, r in ratios.items()}
    numbers["ratios"] = ratios
    return text, numbers


def mlp_tables(
    rounds: int, quick: bool, saved: list[dict[str, Any]] | None = None
) -> tuple[str, dict[str, Any]]:
    steps, per_call = (32, 8) if quick else (256, 32)
    sizes = (784, 64, 64, 10) if quick else (784, 256, 256, 10)
    batch = 32 if quick else 128
    title = f"contender (MLP {'-'.join(map(str, sizes))}, batch {batch}, Adam)"
    return mlp_table(mlp_contenders(sizes, batch, steps, per_call), steps, rounds, title, saved)


def machine() -> str:
    device = jax.devices()[0]
    return (
        f"{timing.machine()}, JAX {jax.__version__} on {device.platform} "
        f"({device.device_kind}), optax {optax.__version__}, "
        f"optimistix {optx.__version__ if optx else 'not installed'}"
    )


def main() -> None:
    args, rounds = timing.command_line(__doc__, 2, machine())
    saved: list[dict[str, Any]] = []
    quadratic, q = quadratic_tables(rounds, args.quick, saved)
    print("### The quadratic\n\n" + quadratic + "\n")
    mlp, m = mlp_tables(rounds, args.quick, saved)
    print("### The MLP\n\n" + mlp + "\n")
    qr = q["ratios"]
    mr = m["ratios"]

    def versus(key: str) -> str:
        return qr[key].format() if key in qr else "optimistix not installed"

    targets = [
        (
            "time to tolerance: steploop default beats optimistix.minimise (called as its docs "
            "call it)",
            f"{versus('default_vs_optimistix')} (tuned: {versus('fused_vs_optimistix')})",
            q["default_vs_optimistix"] > 1 and q["fused_vs_optimistix"] > 1,
        ),
        (
            "time to tolerance: steploop tuned beats optimistix.minimise inside the user's own "
            "jax.jit (a hand lax.while_loop does not: one jitted call with no Python around it)",
            versus("fused_vs_optimistix_jit"),
            q["fused_vs_optimistix_jit"] > 1,
        ),
        (
            "MLP: steploop default >= 0.95x hand jitted step loop",
            f"{mr['default_vs_hand'].format()} (vs the loop reading the loss: "
            f"{mr['default_vs_hand_read'].format()})",
            m["default_vs_hand"] >= 0.95,
        ),
        (
            "MLP: steploop tuned (fused) >= 0.95x hand fused loop",
            mr["fused_vs_hand_fused"].format(),
            m["fused_vs_hand_fused"] >= 0.95,
        ),
    ]
    rows = [[name, value, "met" if ok else "**missed**"] for name, value, ok in targets]
    print("### Targets\n\n" + table(["target", "measured: median of rounds (min-max)", ""], rows))
    if not args.no_save:
        data = results.save("jax", machine(), rounds, args.quick, saved)
        drawn = results.draw(data)
        print(f"\nWrote {results.JSON_PATH.name}" + (f" and {drawn.name}" if drawn else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
