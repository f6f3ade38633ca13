"""Memory: 20,000 eager PersistentTapeStep steps with the release hook keep resident memory flat;
tapes that are not released pile up."""

import gc

import psutil

import steploop as sl
from steploop.tf import PersistentTapeStep


def build(tf, keras):
    w = tf.Variable(tf.random.stateless_normal((50, 50), seed=(1, 2)) * 0.01, name="w")
    inputs = tf.random.stateless_normal((50, 50), seed=(3, 4))

    def forward():
        hidden = tf.tanh(inputs @ w)  # the tape keeps these 2,500 floats and more
        return {"loss": tf.reduce_mean(hidden**2), "mean": tf.reduce_mean(hidden)}

    return PersistentTapeStep(forward, keras.optimizers.SGD(0.01), compile=False)


def rss_mb():
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


class HoldTapes(sl.Callback):
    """Keeps every step's tape alive, as a step without a release would."""

    may_stop = False

    def __init__(self, strategy):
        self.strategy = strategy
        self.tapes = []

    def on_step_end(self, trainer, record):
        self.tapes.append(self.strategy.tape)


def test_released_tapes_keep_memory_flat_and_held_ones_grow(tf, keras):
    step = build(tf, keras)
    trainer = sl.Trainer(step, [sl.StopOnNaN()])
    trainer.run(max_steps=500)  # warm-up: allocator pools, caches
    before = rss_mb()
    trainer.run(max_steps=20_000)
    released = rss_mb() - before
    assert step.tape is None  # released after the last step's callbacks
    print(f"released: {released:.1f} MB")
    assert released < 20, f"20,000 released steps grew resident memory by {released:.1f} MB"

    held = HoldTapes(step)
    leaky = sl.Trainer(step, [held])
    before = rss_mb()
    leaky.run(max_steps=2_000)
    grown = rss_mb() - before
    print(f"held: {grown:.1f} MB")
    assert len(held.tapes) == 2_000
    # every held tape keeps its step's intermediates: at least 10 kB each
    assert grown > 2_000 * 10e3 / 2**20, f"2,000 held tapes grew memory by only {grown:.1f} MB"
