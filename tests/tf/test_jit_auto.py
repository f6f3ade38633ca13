"""jit_compile="auto", the TensorFlow strategies' default: XLA when the step compiles under XLA,
decided once at the first step; otherwise a plain graph, said in one log line. Either way the
run equals the one with the choice made by hand, bit for bit."""

import logging
import re

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import steploop as sl  # noqa: E402
from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep  # noqa: E402


def article(make, **options):
    x = tf.Variable(0.0, name="x")
    step = make(x, **options)
    trainer = sl.Trainer(step, [sl.LossBelow(1e-12) | sl.MaxSteps(1000)])
    return step, trainer.run(), trainer.history, x.numpy()


def tape(x, **options):
    return TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1), **options)


def with_py_function(x, **options):
    def loss():
        seen = tf.py_function(lambda value: value, [x], tf.float32)  # no XLA kernel
        return (x - 4.0) ** 2 + 0.0 * tf.reshape(seen, [])

    return TapeStep(loss, keras.optimizers.SGD(0.1), **options)


@pytest.mark.parametrize(
    "make",
    [
        tape,
        lambda x, **o: MinimizeStep(lambda: (x - 4.0) ** 2, [x], keras.optimizers.SGD(0.1), **o),
        lambda x, **o: PersistentTapeStep(
            lambda: {"loss": (x - 4.0) ** 2, "z": x - 4.0}, keras.optimizers.SGD(0.1), **o
        ),
    ],
    ids=["TapeStep", "MinimizeStep", "PersistentTapeStep"],
)
def test_auto_is_xla_when_the_step_compiles(make):
    step = make(tf.Variable(0.0))
    assert step.jit_compiled is None and 'jit_compile="auto"' in repr(step)
    step, result, history, x = article(make)
    assert step.jit_compiled is True and "jit_compile=True" in repr(step)
    assert (result.steps, f"{x:.7f}") == (70, "3.9999993")
    _, by_hand, by_hand_history, by_hand_x = article(make, jit_compile=True)
    assert by_hand.steps == 70 and history == by_hand_history
    assert x.tobytes() == by_hand_x.tobytes()


def test_auto_falls_back_to_a_plain_graph_once_with_one_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="steploop"):
        step, result, history, x = article(with_py_function)
    said = [r.getMessage() for r in caplog.records if "does not compile with XLA" in r.getMessage()]
    assert len(said) == 1
    assert re.match(r"TapeStep: the step does not compile with XLA \(.*EagerPyFunc", said[0])
    assert "runs as a plain graph, jit_compile=False" in said[0]
    assert step.jit_compiled is False
    _, by_hand, by_hand_history, by_hand_x = article(with_py_function, jit_compile=False)
    assert result.steps == by_hand.steps == 70 and history == by_hand_history
    assert x.tobytes() == by_hand_x.tobytes()


def test_the_step_that_did_not_compile_is_taken_once():
    x = tf.Variable(0.0)
    step = with_py_function(x)
    output = step.step()
    assert float(output.loss) == 16.0 and x.numpy() == np.float32(0.8)


def test_auto_without_compile_is_eager_and_bad_values_are_refused():
    assert tape(tf.Variable(0.0), compile=False).jit_compiled is False
    message = "TapeStep: jit_compile must be a bool or \"auto\", got 'xla'"
    with pytest.raises(TypeError, match=re.escape(message)):
        tape(tf.Variable(0.0), jit_compile="xla")
    with pytest.raises(TypeError, match='jit_compile must be a bool or "auto", got int'):
        tape(tf.Variable(0.0), jit_compile=1)
