"""Fuzzed bad input to the TensorFlow strategies: malformed arguments, losses that return junk
and ragged data end in a TypeError/ValueError naming what was wrong, never deep in TensorFlow."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import steploop as sl
from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep
from tests.test_bad_input_fuzz import junk

KINDS = {
    "TapeStep": lambda loss, opt, **kw: TapeStep(loss, opt, **kw),
    "MinimizeStep": lambda loss, opt, **kw: MinimizeStep(loss, kw.pop("var_list"), opt, **kw),
    "PersistentTapeStep": lambda loss, opt, **kw: PersistentTapeStep(loss, opt, **kw),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    ("argument", "valid"),
    [
        ("optimizer", lambda v: False),
        ("var_list", lambda v: v is None),
        ("compile", lambda v: isinstance(v, bool)),
        ("watch_accessed_variables", lambda v: isinstance(v, bool)),
        ("jit_compile", lambda v: isinstance(v, bool)),
        ("on_nonfinite", lambda v: v in ("apply", "skip", "stop", "rollback")),
        ("loss", callable),
    ],
)
def test_bad_constructor_arguments_are_named(tf, keras, kind, argument, valid):
    x = tf.Variable(1.0, name="x")

    @settings(max_examples=25)
    @given(junk)
    def check(value):
        assume(not valid(value))
        arguments = {"loss": lambda: x**2, "opt": keras.optimizers.SGD(0.1), "var_list": [x]}
        name = {"optimizer": "opt"}.get(argument, argument)
        arguments[name] = value
        loss, opt = arguments.pop("loss"), arguments.pop("opt")
        with pytest.raises((TypeError, ValueError)) as info:
            KINDS[kind](loss, opt, **arguments)
        label = {"loss": "forward" if kind == "PersistentTapeStep" else "loss"}.get(
            argument, argument
        )
        assert label in str(info.value), str(info.value)

    check()


@settings(max_examples=30)
@given(junk, st.sampled_from(sorted(KINDS)), st.booleans())
def test_a_loss_returning_junk_is_named_at_the_first_step(tf, keras, value, kind, compile):
    x = tf.Variable(1.0, name="x")
    step = KINDS[kind](lambda: value, keras.optimizers.SGD(0.1), var_list=[x], compile=compile)
    with pytest.raises((TypeError, ValueError)) as info:
        sl.Trainer(step, [sl.MaxSteps(2)]).run()
    label = "forward" if kind == "PersistentTapeStep" else "loss"
    assert label in str(info.value)
    assert x.numpy() == 1.0  # nothing was applied


@pytest.mark.parametrize("steps_per_call", [1, 3])
def test_ragged_data_is_named(tf, keras, steps_per_call):
    w = tf.Variable(1.0, name="w")
    step = TapeStep(lambda b: tf.reduce_sum(b) * w, keras.optimizers.SGD(0.1))
    ragged = np.array([np.ones(2, "float32"), np.ones(3, "float32")], dtype=object)
    data = [np.ones(2, "float32"), ragged]
    trainer = sl.Trainer(step, data=data, steps_per_call=steps_per_call)
    with pytest.raises(
        TypeError,
        match="TapeStep: a batch from data has a part that is not a "
        "tensor or a rectangular numeric array",
    ):
        trainer.run()
    assert trainer.step == 1
