"""PersistentTapeStep: several targets from one tape; the tape is open during the step's
callbacks (eager) and released right after the last one, also when something raises."""

import gc
import weakref

import pytest

import steploop as sl
from steploop.tf import PersistentTapeStep


def forward_of(x):
    def forward():
        z = x - 4.0
        return {"loss": z**2, "z": z, "cube": z**3}

    return forward


@pytest.fixture
def setup(tf, keras):
    x = tf.Variable(1.0, name="x")
    return x, PersistentTapeStep(forward_of(x), keras.optimizers.SGD(0.1), compile=False)


class TapeWatcher(sl.Callback):
    def __init__(self, strategy):
        self.strategy = strategy
        self.refs = []
        self.open = []

    def on_step_end(self, trainer, record):
        tape = self.strategy.tape
        self.open.append(tape is not None)
        self.refs.append(weakref.ref(tape))
        self.extra = self.strategy.gradient("cube")


def test_target_gradients_of_every_target(setup):
    x, strategy = setup
    record = next(sl.Trainer(strategy).iterate())
    assert record.gradients == {"x": -6.0}
    assert record.target_gradients == {"z": {"x": 1.0}, "cube": {"x": 27.0}}
    assert x.numpy() == pytest.approx(1.6)


def test_tape_is_open_in_callbacks_and_gone_after_the_step(setup):
    _, strategy = setup
    watcher = TapeWatcher(strategy)
    trainer = sl.Trainer(strategy, callbacks=[watcher])
    for _record in trainer.iterate(max_steps=3):
        assert strategy.tape is None  # released before iterate() yields
    gc.collect()
    assert watcher.open == [True, True, True]
    assert all(ref() is None for ref in watcher.refs)
    # x went 1 -> 1.6 -> 2.08; step 3 asked its open tape for d(z^3)/dx = 3 (x - 4)^2 at 2.08
    assert watcher.extra["x"] == pytest.approx(3 * (2.08 - 4.0) ** 2)
    assert trainer.step == 3


def test_release_happens_when_the_forward_raises(tf, keras):
    x = tf.Variable(1.0, name="x")
    calls = {"n": 0}

    def forward():
        calls["n"] += 1
        z = x - 4.0
        if calls["n"] == 2:
            raise ArithmeticError("forward failed")
        return {"loss": z**2}

    strategy = PersistentTapeStep(forward, keras.optimizers.SGD(0.1), compile=False)
    refs = []

    class Keep(sl.Callback):
        def on_step_end(self, trainer, record):
            refs.append(weakref.ref(strategy.tape))

    with pytest.raises(ArithmeticError, match="forward failed"):
        sl.Trainer(strategy, callbacks=[Keep()]).run(max_steps=5)
    gc.collect()
    assert strategy.tape is None and refs[0]() is None


def test_release_happens_when_a_callback_raises(setup):
    _, strategy = setup

    class Raiser(sl.Callback):
        def on_step_end(self, trainer, record):
            assert strategy.tape is not None
            raise KeyError("callback failed")

    with pytest.raises(KeyError):
        sl.Trainer(strategy, callbacks=[Raiser()]).run(max_steps=2)
    assert strategy.tape is None


def test_gradient_outside_a_step_is_a_clear_error(tf, keras, setup):
    x, strategy = setup
    with pytest.raises(RuntimeError, match="no open tape \\(the tape is released after each "):
        strategy.gradient("z")
    compiled = PersistentTapeStep(forward_of(x), keras.optimizers.SGD(0.1))
    compiled.step()
    assert compiled.tape is None
    with pytest.raises(
        RuntimeError, match="compiled steps keep no tape after the step; pass compile=False"
    ):
        compiled.gradient("z")


def test_gradient_names_an_unknown_target(setup):
    _, strategy = setup

    class Ask(sl.Callback):
        def on_step_end(self, trainer, record):
            strategy.gradient("w")

    with pytest.raises(
        ValueError,
        match=r"target 'w' is not among forward's outputs "
        r"\['cube', 'loss', 'z'\]",
    ):
        sl.Trainer(strategy, callbacks=[Ask()]).run(max_steps=1)


@pytest.mark.parametrize("compile", [True, False])
def test_compiled_and_eager_agree(tf, keras, compile):
    x = tf.Variable(1.0, name="x")
    trainer = sl.Trainer(
        PersistentTapeStep(forward_of(x), keras.optimizers.SGD(0.05), compile=compile)
    )
    records = list(trainer.iterate(max_steps=5))
    assert [r.target_gradients["z"]["x"] for r in records] == [1.0] * 5
    assert x.numpy() == pytest.approx(4 - 3 * 0.9**5, rel=1e-5)
