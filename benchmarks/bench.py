"""steploop side by side with the loops people write and the libraries they use, in one process.

Every contender does the same work; each is warmed up (traced, compiled), then all are timed in
interleaved rounds so that a noisy moment hurts them alike. The tables report each contender's
median time with its min-max over the rounds, and each ratio as the median of the per-round
ratios with their min-max. The "default" rows pass no speed argument at all (neither
``steps_per_call`` nor ``jit_compile``): what a user gets without tuning; the tuned rows name their
arguments. Run with ``make bench`` (``--quick`` for a smoke run). Prints Markdown, and writes the
section ``"tensorflow"`` of ``benchmarks/results.json`` and the chart ``benchmarks/results.png``
(see ``results.py``; ``--no-save`` writes neither).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import overhead as trainer_cost
import results
import timing
from timing import Spread, ratio, table

try:
    import tensorflow_probability as tfp
except ImportError:  # reported in the table
    tfp = None

TOL = 1e-12
LR = 0.1


DEFAULT = "steploop default (no speed arguments)"


def us(seconds: list[float], steps: int = 1) -> str:
    """Microseconds per step: the median over the rounds and the min-max."""
    return Spread.of(seconds).scaled(1e6 / steps).format("auto")


# -- the quadratic: the article's (x - 4)**2 with SGD(0.1) ---------------------------------------
class Quadratic:
    """One variable and optimizer per contender; ``reset`` puts x back at 0."""

    def __init__(self) -> None:
        self.x = tf.Variable(0.0, name="x")
        self.opt = keras.optimizers.SGD(LR)

    def loss(self) -> tf.Tensor:
        return (self.x - 4.0) ** 2

    def reset(self) -> None:
        self.x.assign(0.0)


def article_loop(max_steps: int, tol: float) -> Callable[[], int]:
    q = Quadratic()

    def run() -> int:
        q.reset()
        for step in range(1, max_steps + 1):
            with tf.GradientTape() as tape:
                loss = q.loss()
            grads = tape.gradient(loss, [q.x])
            q.opt.apply_gradients(zip(grads, [q.x], strict=False))
            if loss < tol:
                return step
        return max_steps

    return run


def hand_function_loop(max_steps: int, tol: float) -> Callable[[], int]:
    q = Quadratic()

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = q.loss()
        grads = tape.gradient(loss, [q.x])
        q.opt.apply_gradients(zip(grads, [q.x], strict=False))
        return loss

    def run() -> int:
        q.reset()
        for i in range(1, max_steps + 1):
            if float(step()) < tol:
                return i
        return max_steps

    return run


def hand_xla_loop(max_steps: int, tol: float) -> Callable[[], int]:
    q = Quadratic()

    @tf.function(jit_compile=True)
    def loop() -> tf.Tensor:
        steps = tf.constant(0)
        for _ in tf.range(max_steps):
            with tf.GradientTape() as tape:
                loss = q.loss()
            grads = tape.gradient(loss, [q.x])
            q.opt.apply_gradients(zip(grads, [q.x], strict=False))
            steps += 1
            if loss < tol:
                break
        return steps

    def run() -> int:
        q.reset()
        return int(loop())

    return run


def tfp_minimize(num_steps: int, direct: bool = False) -> Callable[[], int] | None:
    """``tfp.math.minimize`` inside the user's own XLA ``tf.function`` (one compiled call, traced
    once), or (``direct``) called as its documentation calls it, with its own
    ``jit_compile=True``: it builds its ``tf.function`` at every call, so every call traces and
    compiles again."""
    if tfp is None:
        return None
    q = Quadratic()

    def call() -> tf.Tensor:
        return tfp.math.minimize(
            q.loss,
            num_steps=num_steps,
            optimizer=q.opt,
            trainable_variables=[q.x],
            jit_compile=direct,
        )

    minimize = call if direct else tf.function(call, jit_compile=True)

    def run() -> int:
        q.reset()
        minimize()
        return num_steps

    return run


def steploop_run(max_steps: int, tol: float, **options: object) -> Callable[[], int]:
    """Only the options given reach ``TapeStep`` and the ``Trainer`` (none: the defaults)."""
    q = Quadratic()
    trainer_options = {k: options.pop(k) for k in ["steps_per_call"] if k in options}
    strategy = TapeStep(q.loss, q.opt, **options)  # type: ignore[arg-type]

    def run() -> int:
        q.reset()
        criteria = [sl.LossBelow(tol) | sl.MaxSteps(max_steps)]
        return sl.Trainer(strategy, criteria, **trainer_options).run().steps  # type: ignore[arg-type]

    return run


def quadratic_tables(rounds: int, quick: bool) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    article, hand, hand_xla = (
        "the article's eager loop",
        "hand `tf.function` step loop",
        "hand XLA fused loop",
    )
    fused = "steploop tuned (`steps_per_call=1000, jit_compile=True`)"
    minimize_name = "`tfp.math.minimize` + XLA (`num_steps=1000`)"
    minimize_direct = (
        "`tfp.math.minimize(..., jit_compile=True)` called directly, as its docs call it "
        "(`num_steps=1000`)"
    )
    to_tol = {
        article: article_loop(1000, TOL),
        hand: hand_function_loop(1000, TOL),
        hand_xla: hand_xla_loop(1000, TOL),
        "steploop eager (`compile=False`)": steploop_run(1000, TOL, compile=False),
        DEFAULT: steploop_run(1000, TOL),
        fused: steploop_run(1000, TOL, steps_per_call=1000, jit_compile=True),
    }
    minimize = tfp_minimize(1000)
    if minimize is not None:
        to_tol[minimize_name] = minimize
        to_tol[minimize_direct] = tfp_minimize(1000, direct=True)  # type: ignore[assignment]
    steps = {name: run() for name, run in to_tol.items()}
    # one set of rounds for all; the fast ones run 10 times in a row within a round
    repeat = {name: 1 if "eager" in name or name == minimize_direct else 10 for name in to_tol}
    times = timing.rounds(to_tol, rounds, repeat)
    charted = {DEFAULT: {hand: "TF quadratic to tol: default vs hand tf.function"}}
    if minimize is not None:
        charted[DEFAULT][minimize_direct] = "TF quadratic to tol: default vs tfp.math.minimize"
    charted[fused] = {minimize_name: "TF quadratic to tol: tuned vs tfp.math.minimize + XLA"}
    table_rows, rows = [], []
    for name in to_tol:
        against = [ratio(times, name, article)]
        against += [ratio(times, name, ref) for ref in charted.get(name, {}) if ref in times]
        table_rows.append([name, str(steps[name]), us(times[name]), against[0].format()])
        rows.append(
            results.row(
                "quadratic to tolerance",
                name,
                times[name],
                steps[name],
                against,
                charted.get(name),
            )
        )
    if minimize is None:
        table_rows.append(["`tfp.math.minimize`", "-", "not installed", "-"])
    first = table(
        [
            "contender (x from 0 to loss < 1e-12)",
            "steps",
            "µs per run (min-max)",
            "speed vs the article (min-max)",
        ],
        table_rows,
    )

    n_plain, n_fused, n_eager = (300, 5_000, 50) if quick else (2_000, 200_000, 300)
    never = 0.0  # a tolerance the loss never goes below: every contender does all its steps
    tuned_10k = "steploop tuned (`steps_per_call=10000, jit_compile=True`)"
    tuned_all = f"steploop tuned (`steps_per_call={n_fused}, jit_compile=True`: all in one call)"
    per_step = {
        article: (article_loop(n_eager, never), n_eager),
        hand: (hand_function_loop(n_plain, never), n_plain),
        DEFAULT: (steploop_run(n_plain, never), n_plain),
        hand_xla: (hand_xla_loop(n_fused, never), n_fused),
        tuned_10k: (
            steploop_run(n_fused, never, steps_per_call=10_000, jit_compile=True),
            n_fused,
        ),
        tuned_all: (
            steploop_run(n_fused, never, steps_per_call=n_fused, jit_compile=True),
            n_fused,
        ),
    }
    if tfp is not None:
        per_step["`tfp.math.minimize` + XLA"] = (tfp_minimize(n_fused), n_fused)  # type: ignore[assignment]
    times_step = timing.rounds({k: v[0] for k, v in per_step.items()}, rounds)
    counts = {name: float(n) for name, (_, n) in per_step.items()}
    reference = {DEFAULT: hand, tuned_10k: hand_xla, tuned_all: hand_xla}
    chart_step = {
        DEFAULT: "TF quadratic per step: default vs hand tf.function",
        tuned_all: "TF quadratic per step: tuned (all in one call) vs hand XLA",
    }
    table_rows, per_step_ratios = [], {}
    for name in per_step:
        against = reference.get(name)
        text = ""
        found = []
        if against:
            per_step_ratios[name] = ratio(times_step, name, against, "time", counts)
            found = [per_step_ratios[name]]
            text = f"{per_step_ratios[name].format()} the {against}"
        table_rows.append(
            [name, str(per_step[name][1]), us(times_step[name], per_step[name][1]), text]
        )
        label = {against: chart_step[name]} if name in chart_step and against else None
        rows.append(
            results.row(
                "quadratic per step", name, times_step[name], per_step[name][1], found, label
            )
        )
    second = table(
        [
            "contender (LossBelow \\| MaxSteps, history on)",
            "steps",
            "µs per step (min-max)",
            "time ratio (min-max)",
        ],
        table_rows,
    )
    numbers = {
        "fused_vs_tfp": ratio(times, fused, minimize_name) if minimize else None,
        "default_vs_tfp": ratio(times, DEFAULT, minimize_name) if minimize else None,
        "default_vs_tfp_direct": ratio(times, DEFAULT, minimize_direct) if minimize else None,
        "default_vs_article": ratio(times, DEFAULT, article),
        "fused_vs_article": ratio(times, fused, article),
        "default_ratio": per_step_ratios[DEFAULT],
        "fused_ratio": per_step_ratios[tuned_all],
        "fused_ratio_10k": per_step_ratios[tuned_10k],
    }
    return first + "\n\n" + second, numbers, rows


# -- the MLP: 784-256-256-10, batch 128, Adam ------------------------------------------------------
def mlp_data(batches: int) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(batches * 128, 784)).astype("float32")
    labels = rng.integers(0, 10, size=batches * 128).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(128, drop_remainder=True)
    return dataset.cache().repeat().prefetch(tf.data.AUTOTUNE)


def mlp_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def mlp_tables(rounds: int, quick: bool) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    steps = 40 if quick else 200
    data = mlp_data(32)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def keras_fit(**compile_options: object) -> Callable[[], None]:
        model = mlp_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=cross_entropy, **compile_options)

        def run() -> None:
            model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)

        return run

    def hand(jit: bool) -> Callable[[], None]:
        model, opt = mlp_model(), keras.optimizers.Adam(1e-3)

        @tf.function(jit_compile=jit)
        def train_step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = cross_entropy(y, model(x, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=False))
            return loss

        def run() -> None:
            for x, y in data.take(steps):
                train_step(x, y)

        return run

    def ours(**options: object) -> Callable[[], None]:
        """Only the options given reach ``TapeStep`` and the ``Trainer`` (none: the defaults)."""
        model, opt = mlp_model(), keras.optimizers.Adam(1e-3)
        trainer_options = {k: options.pop(k) for k in ["steps_per_call"] if k in options}

        def loss(batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            x, y = batch
            return cross_entropy(y, model(x, training=True))

        strategy = TapeStep(loss, opt, var_list=model.trainable_variables, **options)  # type: ignore[arg-type]

        def run() -> None:
            trainer = sl.Trainer(
                strategy,
                [sl.StopOnNaN()],
                data=data.take(steps),
                **trainer_options,  # type: ignore[arg-type]
            )
            assert trainer.run().steps == steps

        return run

    fit, hand_name, hand_xla = (
        "Keras `fit`",
        "hand `tf.function` loop",
        "hand XLA loop (`jit_compile=True`)",
    )
    jit = "steploop tuned (`jit_compile=True`), 1 step a call"
    fused = "steploop tuned (`steps_per_call=32, jit_compile=True`)"
    contenders = {
        fit: keras_fit(),
        "Keras `fit(steps_per_execution=32)`": keras_fit(steps_per_execution=32),
        hand_name: hand(False),
        hand_xla: hand(True),
        DEFAULT: ours(),
        jit: ours(jit_compile=True),
        fused: ours(steps_per_call=32, jit_compile=True),
    }
    times = timing.rounds(contenders, rounds)
    charted = {
        DEFAULT: {
            hand_name: "TF MLP: default vs hand tf.function",
            fit: "TF MLP: default vs Keras fit",
        },
        fused: {hand_xla: "TF MLP: tuned (fused + XLA) vs hand XLA"},
    }
    table_rows, rows = [], []
    for name in contenders:
        against = [ratio(times, name, ref) for ref in (hand_name, hand_xla, fit)]
        rate = [steps / t for t in times[name]]
        table_rows.append([name, Spread.of(rate).format(",.0f")] + [r.format() for r in against])
        rows.append(results.row("MLP", name, times[name], steps, against, charted.get(name)))
    text = table(
        [
            "contender (MLP 784-256-256-10, batch 128, Adam)",
            "steps/s (min-max)",
            "vs hand",
            "vs hand XLA",
            "vs Keras fit",
        ],
        table_rows,
    )
    numbers = {
        "mlp_default_vs_hand": ratio(times, DEFAULT, hand_name),
        "mlp_default_vs_fit": ratio(times, DEFAULT, fit),
        "mlp_fused_vs_hand_xla": ratio(times, fused, hand_xla),
    }
    return text, numbers, rows


# -- the Trainer's own cost, and a million fused steps --------------------------------------------
def overhead(rounds: int, quick: bool) -> tuple[str, Spread, list[dict[str, Any]]]:
    """Microseconds per step of a Trainer on a no-op NumPy strategy (see ``overhead.py``)."""
    n = 5_000 if quick else 50_000
    NoOp, five = trainer_cost.NoOp, trainer_cost.five_criteria
    bare = "bare Python loop (five calls and an attrs record a step)"
    contenders = {
        bare: lambda: trainer_cost.bare_loop(n),
        "no callbacks": lambda: sl.Trainer(NoOp()).run(max_steps=n),
        "five criteria": lambda: trainer_cost.trainer_run(n),
        "five criteria, iterate()": lambda: all(
            True for _ in sl.Trainer(NoOp(), five()).iterate(n)
        ),
    }
    times = timing.rounds(contenders, rounds)  # type: ignore[arg-type]
    table_rows, rows = [], []
    for name in contenders:
        against = [ratio(times, name, bare, "time")] if name != bare else []
        table_rows.append([name, us(times[name], n), against[0].format() if against else ""])
        rows.append(results.row("Trainer overhead", name, times[name], n, against))
    text = table(
        ["Trainer with a no-op NumPy strategy", "µs per step (min-max)", "time vs the bare loop"],
        table_rows,
    )
    return text, Spread.of(times["five criteria"]).scaled(1e6 / n), rows


def million_steps(quick: bool) -> str:
    n = 100_000 if quick else 1_000_000
    q = Quadratic()
    q.opt = keras.optimizers.SGD(1e-7)
    strategy = TapeStep(q.loss, q.opt, jit_compile=True)
    sl.Trainer(strategy, [sl.LossBelow(0.0) | sl.MaxSteps(3)], steps_per_call=50_000).run()
    q.reset()  # the loop above is compiled now: the run below is timed warm
    trainer = sl.Trainer(strategy, [sl.LossBelow(0.0) | sl.MaxSteps(n)], steps_per_call=50_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = trainer.run()
    seconds = time.perf_counter() - start
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    history_mb = sum(trainer.history[name].nbytes for name in trainer.history) / 2**20
    return (
        f"{result.steps:,} fused XLA steps (`steps_per_call=50000`) in {seconds:.2f} s; history "
        f"{history_mb:.1f} MB of numbers; peak resident memory grew by {grown:.0f} MB."
    )


def machine() -> str:
    return (
        f"{timing.machine()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"tensorflow-probability {tfp.__version__ if tfp else 'not installed'}"
    )


def main() -> None:
    args, rounds = timing.command_line(__doc__, 3, machine())
    memory = million_steps(args.quick)
    quadratic, q, rows = quadratic_tables(rounds, args.quick)
    print("### The quadratic\n\n" + quadratic + "\n")
    mlp, m, mlp_rows = mlp_tables(rounds, args.quick)
    print("### The MLP\n\n" + mlp + "\n")
    over, five, over_rows = overhead(rounds, args.quick)
    print("### The Trainer's own overhead\n\n" + over + "\n")
    print("### Memory\n\n" + memory + "\n")
    nan = timing.Spread(float("nan"), float("nan"), float("nan"))

    def versus_tfp(key: str) -> str:
        return f"{q[key].format()} as fast" if q[key] else "tfp not installed"

    targets = [  # the first five: the fast-default goals; the rest guard what earlier work won
        (
            "time to tolerance: default faster than tfp.math.minimize + XLA (in the user's own "
            "tf.function)",
            f"{versus_tfp('default_vs_tfp')} (tuned: {versus_tfp('fused_vs_tfp')}; against "
            f"tfp.math.minimize called directly: {versus_tfp('default_vs_tfp_direct')})",
            q["default_vs_tfp"] is not None and q["default_vs_tfp"].spread.median > 1,
        ),
        (
            "time to tolerance: default >= 200x the article's loop",
            f"{q['default_vs_article'].spread.format('.0f', 'x')} (tuned: "
            f"{q['fused_vs_article'].spread.format('.0f', 'x')})",
            q["default_vs_article"].spread.median >= 200,
        ),
        (
            "MLP: default >= 1.5x Keras fit's speed",
            m["mlp_default_vs_fit"].format(),
            m["mlp_default_vs_fit"].spread.median >= 1.5,
        ),
        (
            "MLP: default >= 1.2x hand tf.function's speed",
            m["mlp_default_vs_hand"].format(),
            m["mlp_default_vs_hand"].spread.median >= 1.2,
        ),
        (
            "Trainer overhead, five criteria <= 4 µs/step (no-op NumPy strategy)",
            (five or nan).format(".2f", " µs"),
            five.median <= 4,
        ),
        (
            "quadratic: default <= 1.10x hand tf.function's time per step",
            q["default_ratio"].format(),
            q["default_ratio"].spread.median <= 1.10,
        ),
        (
            "quadratic: tuned fused + XLA <= 1.5x hand XLA loop's time per step (all in one call)",
            f"{q['fused_ratio'].format()} (K=10000: {q['fused_ratio_10k'].format()})",
            q["fused_ratio"].spread.median <= 1.5,
        ),
        (
            "MLP: tuned fused + XLA >= 0.95x hand XLA's speed",
            m["mlp_fused_vs_hand_xla"].format(),
            m["mlp_fused_vs_hand_xla"].spread.median >= 0.95,
        ),
    ]
    table_rows = [[name, value, "met" if ok else "**missed**"] for name, value, ok in targets]
    print(
        "### Targets\n\n"
        + table(["target", "measured: median of rounds (min-max)", ""], table_rows)
    )
    if not args.no_save:
        data = results.save(
            "tensorflow", machine(), rounds, args.quick, rows + mlp_rows + over_rows
        )
        drawn = results.draw(data)
        print(f"\nWrote {results.JSON_PATH.name}" + (f" and {drawn.name}" if drawn else ""))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
