"""steploop side by side with the loops people write and the libraries they use, in one process.

Every contender does the same work; each is warmed up (traced, compiled), then all are timed in
interleaved rounds so that a noisy moment hurts them alike; the tables report medians and ratios.
Run with ``make bench`` (``--quick`` for a smoke run). Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import steploop as sl
from steploop.tf import TapeStep

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing
from timing import table

try:
    import tensorflow_probability as tfp
except ImportError:  # reported in the table
    tfp = None

TOL = 1e-12
LR = 0.1


def timed_rounds(
    contenders: dict[str, Callable[[], object]], rounds: int, repeat: int = 1
) -> dict[str, float]:
    """Median seconds of one call of each contender over interleaved rounds (see ``timing``)."""
    return timing.medians(timing.rounds(contenders, rounds, repeat))


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


def tfp_minimize(num_steps: int) -> Callable[[], int] | None:
    if tfp is None:
        return None
    q = Quadratic()

    @tf.function(jit_compile=True)
    def minimize() -> tf.Tensor:
        return tfp.math.minimize(
            q.loss, num_steps=num_steps, optimizer=q.opt, trainable_variables=[q.x]
        )

    def run() -> int:
        q.reset()
        minimize()
        return num_steps

    return run


def steploop_run(max_steps: int, tol: float, **options: object) -> Callable[[], int]:
    q = Quadratic()
    steps_per_call = int(options.pop("steps_per_call", 1))  # type: ignore[call-overload]
    strategy = TapeStep(q.loss, q.opt, **options)  # type: ignore[arg-type]

    def run() -> int:
        q.reset()
        trainer = sl.Trainer(
            strategy, [sl.LossBelow(tol) | sl.MaxSteps(max_steps)], steps_per_call=steps_per_call
        )
        return trainer.run().steps

    return run


def quadratic_tables(rounds: int, quick: bool) -> tuple[str, dict[str, float]]:
    to_tol = {
        "the article's eager loop": article_loop(1000, TOL),
        "hand `tf.function` step loop": hand_function_loop(1000, TOL),
        "hand XLA fused loop": hand_xla_loop(1000, TOL),
        "steploop eager (`compile=False`)": steploop_run(1000, TOL, compile=False),
        "steploop default (compiled, 1 step a call)": steploop_run(1000, TOL),
        "steploop fused + XLA (`steps_per_call=1000`)": steploop_run(
            1000, TOL, steps_per_call=1000, jit_compile=True
        ),
    }
    minimize = tfp_minimize(1000)
    if minimize is not None:
        to_tol["`tfp.math.minimize` + XLA (`num_steps=1000`)"] = minimize
    steps = {name: run() for name, run in to_tol.items()}
    fast = {name: run for name, run in to_tol.items() if "eager" not in name}
    medians = timed_rounds(fast, rounds, repeat=10)
    medians.update(timed_rounds({k: v for k, v in to_tol.items() if k not in fast}, rounds))
    article = medians["the article's eager loop"]
    rows = [
        [name, str(steps[name]), f"{medians[name] * 1e6:,.0f}", f"{article / medians[name]:,.1f}x"]
        for name in to_tol
    ]
    if minimize is None:
        rows.append(["`tfp.math.minimize`", "-", "not installed", "-"])
    first = table(
        ["contender (x from 0 to loss < 1e-12)", "steps", "µs per run", "vs the article"], rows
    )

    n_plain, n_fused, n_eager = (300, 5_000, 50) if quick else (2_000, 200_000, 300)
    never = 0.0  # a tolerance the loss never goes below: every contender does all its steps
    per_step = {
        "the article's eager loop": (article_loop(n_eager, never), n_eager),
        "hand `tf.function` step loop": (hand_function_loop(n_plain, never), n_plain),
        "steploop default": (steploop_run(n_plain, never), n_plain),
        "hand XLA fused loop": (hand_xla_loop(n_fused, never), n_fused),
        "steploop fused + XLA (`steps_per_call=10000`)": (
            steploop_run(n_fused, never, steps_per_call=10_000, jit_compile=True),
            n_fused,
        ),
        "steploop fused + XLA (all steps in one call)": (
            steploop_run(n_fused, never, steps_per_call=n_fused, jit_compile=True),
            n_fused,
        ),
    }
    if tfp is not None:
        per_step["`tfp.math.minimize` + XLA"] = (tfp_minimize(n_fused), n_fused)  # type: ignore[assignment]
    medians_step = timed_rounds({k: v[0] for k, v in per_step.items()}, rounds)
    us = {name: medians_step[name] / per_step[name][1] * 1e6 for name in per_step}
    reference = {
        "steploop default": "hand `tf.function` step loop",
        "steploop fused + XLA (`steps_per_call=10000`)": "hand XLA fused loop",
        "steploop fused + XLA (all steps in one call)": "hand XLA fused loop",
    }
    rows = []
    for name in per_step:
        against = reference.get(name)
        ratio = f"{us[name] / us[against]:.2f}x the {against}" if against else ""
        rows.append([name, str(per_step[name][1]), f"{us[name]:,.4g}", ratio])
    second = table(
        ["contender (LossBelow \\| MaxSteps, history on)", "steps", "µs per step", "ratio"], rows
    )
    numbers = {
        "fused_to_tol": medians["steploop fused + XLA (`steps_per_call=1000`)"],
        "article_to_tol": article,
        "tfp_to_tol": medians.get("`tfp.math.minimize` + XLA (`num_steps=1000`)", float("nan")),
        "default_ratio": us["steploop default"] / us["hand `tf.function` step loop"],
        "fused_ratio": us["steploop fused + XLA (all steps in one call)"]
        / us["hand XLA fused loop"],
        "fused_ratio_10k": us["steploop fused + XLA (`steps_per_call=10000`)"]
        / us["hand XLA fused loop"],
    }
    return first + "\n\n" + second, numbers


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


def mlp_tables(rounds: int, quick: bool) -> tuple[str, dict[str, float]]:
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
        model, opt = mlp_model(), keras.optimizers.Adam(1e-3)
        steps_per_call = int(options.pop("steps_per_call", 1))  # type: ignore[call-overload]

        def loss(batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            x, y = batch
            return cross_entropy(y, model(x, training=True))

        strategy = TapeStep(loss, opt, var_list=model.trainable_variables, **options)  # type: ignore[arg-type]

        def run() -> None:
            trainer = sl.Trainer(
                strategy, [sl.StopOnNaN()], data=data.take(steps), steps_per_call=steps_per_call
            )
            assert trainer.run().steps == steps

        return run

    contenders = {
        "Keras `fit`": keras_fit(),
        "Keras `fit(steps_per_execution=32)`": keras_fit(steps_per_execution=32),
        "hand `tf.function` loop": hand(False),
        "hand XLA loop (`jit_compile=True`)": hand(True),
        "steploop default": ours(),
        "steploop, XLA (`jit_compile=True`), 1 step a call": ours(jit_compile=True),
        "steploop fused + XLA (`steps_per_call=32`)": ours(steps_per_call=32, jit_compile=True),
    }
    medians = timed_rounds(contenders, rounds)
    rate = {name: steps / seconds for name, seconds in medians.items()}
    rows = [
        [
            name,
            f"{rate[name]:,.0f}",
            f"{rate[name] / rate['hand `tf.function` loop']:.2f}",
            f"{rate[name] / rate['hand XLA loop (`jit_compile=True`)']:.2f}",
            f"{rate[name] / rate['Keras `fit`']:.2f}",
        ]
        for name in contenders
    ]
    text = table(
        [
            "contender (MLP 784-256-256-10, batch 128, Adam)",
            "steps/s",
            "vs hand",
            "vs hand XLA",
            "vs Keras fit",
        ],
        rows,
    )
    numbers = {
        "mlp_default_vs_hand": rate["steploop default"] / rate["hand `tf.function` loop"],
        "mlp_default_vs_fit": rate["steploop default"] / rate["Keras `fit`"],
        "mlp_fused_vs_hand_xla": rate["steploop fused + XLA (`steps_per_call=32`)"]
        / rate["hand XLA loop (`jit_compile=True`)"],
    }
    return text, numbers


# -- the Trainer's own cost, and a million fused steps --------------------------------------------
class NoOp(sl.StepStrategy):
    def step(self, batch: object = None) -> sl.StepOutput:
        return sl.StepOutput(loss=1.0)


def overhead(rounds: int, quick: bool) -> tuple[str, float]:
    n = 5_000 if quick else 50_000

    def five() -> list[sl.Callback]:
        return [
            sl.MaxSteps(10**12),
            sl.LossBelow(0.0),
            sl.LossChangeBelow(1e-300, patience=10**12),
            sl.EarlyStopping(patience=10**12),
            sl.StopOnNaN(),
        ]

    contenders = {
        "no callbacks": lambda: sl.Trainer(NoOp()).run(max_steps=n),
        "five criteria": lambda: sl.Trainer(NoOp(), five()).run(max_steps=n),
        "five criteria, iterate()": lambda: all(
            True for _ in sl.Trainer(NoOp(), five()).iterate(n)
        ),
    }
    medians = timed_rounds(contenders, rounds)  # type: ignore[arg-type]
    us = {name: seconds / n * 1e6 for name, seconds in medians.items()}
    rows = [[name, f"{us[name]:.2f}"] for name in contenders]
    return table(["Trainer with a no-op NumPy strategy", "µs per step"], rows), us["five criteria"]


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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    print(f"Machine: {machine()}; medians of {rounds} interleaved rounds.\n")
    memory = million_steps(args.quick)
    quadratic, q = quadratic_tables(rounds, args.quick)
    print("### The quadratic\n\n" + quadratic + "\n")
    mlp, m = mlp_tables(rounds, args.quick)
    print("### The MLP\n\n" + mlp + "\n")
    over, five = overhead(rounds, args.quick)
    print("### The Trainer's own overhead\n\n" + over + "\n")
    print("### Memory\n\n" + memory + "\n")
    targets = [
        (
            "time to tolerance: fused + XLA faster than tfp.math.minimize + XLA",
            f"{q['tfp_to_tol'] / q['fused_to_tol']:.1f}x faster",
            q["fused_to_tol"] < q["tfp_to_tol"],
        ),
        (
            "time to tolerance: fused + XLA >= 100x the article's loop",
            f"{q['article_to_tol'] / q['fused_to_tol']:.0f}x",
            q["article_to_tol"] / q["fused_to_tol"] >= 100,
        ),
        (
            "quadratic: default <= 1.10x hand tf.function",
            f"{q['default_ratio']:.2f}x",
            q["default_ratio"] <= 1.10,
        ),
        (
            "quadratic: fused + XLA <= 1.5x hand XLA loop per step (all steps in one call)",
            f"{q['fused_ratio']:.2f}x (K=10000: {q['fused_ratio_10k']:.2f}x)",
            q["fused_ratio"] <= 1.5,
        ),
        (
            "MLP: default >= 0.95x hand tf.function",
            f"{m['mlp_default_vs_hand']:.2f}x",
            m["mlp_default_vs_hand"] >= 0.95,
        ),
        (
            "MLP: default >= 1.3x Keras fit",
            f"{m['mlp_default_vs_fit']:.2f}x",
            m["mlp_default_vs_fit"] >= 1.3,
        ),
        (
            "MLP: fused + XLA >= 0.95x hand XLA",
            f"{m['mlp_fused_vs_hand_xla']:.2f}x",
            m["mlp_fused_vs_hand_xla"] >= 0.95,
        ),
        ("Trainer overhead, five criteria < 10 µs/step", f"{five:.2f} µs", five < 10),
    ]
    rows = [[name, value, "met" if ok else "**missed**"] for name, value, ok in targets]
    print("### Targets\n\n" + table(["target", "measured", ""], rows))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
