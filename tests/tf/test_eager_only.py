"""A Trainer runs its own compiled steps: called inside a tf.function it fails at once, in
steploop's words, not with TensorFlow's "Cannot convert a symbolic tf.Tensor"."""

import pytest

import steploop as sl
from steploop.tf import MinimizeStep, PersistentTapeStep, TapeStep

MESSAGE = (
    ": a Trainer runs its own compiled steps and must be called from eager Python, not inside a "
    "tf.function; call trainer.run() outside it (for speed, keep the strategy's compile=True, "
    "the default, and fuse steps with Trainer(steps_per_call=K))"
)

STRATEGIES = {
    "TapeStep": lambda x, opt, compile: TapeStep(lambda: (x - 4.0) ** 2, opt, compile=compile),
    "MinimizeStep": lambda x, opt, compile: MinimizeStep(
        lambda: (x - 4.0) ** 2, [x], opt, compile=compile
    ),
    "PersistentTapeStep": lambda x, opt, compile: PersistentTapeStep(
        lambda: {"loss": (x - 4.0) ** 2}, opt, compile=compile
    ),
}


@pytest.mark.parametrize("steps_per_call", [1, 4])
@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_run_inside_a_tf_function_is_a_runtime_error(tf, keras, name, compile, steps_per_call):
    x = tf.Variable(0.0, name="x")
    step = STRATEGIES[name](x, keras.optimizers.SGD(0.1), compile)
    trainer = sl.Trainer(step, [sl.MaxSteps(8)], steps_per_call=steps_per_call)

    @tf.function
    def train():
        trainer.run()
        return x.read_value()

    with pytest.raises(RuntimeError) as info:
        train()
    assert name + MESSAGE in str(info.value)  # autograph adds where it happened in user code
    assert x.numpy() == 0.0 and trainer.step == 0
    assert trainer.run().steps == 8  # the same Trainer still runs from eager Python


def test_a_fused_call_inside_a_tf_function_is_refused_too(tf, keras):
    """After a first plain step (compiled loops ready), run_steps is guarded as well."""
    x = tf.Variable(0.0, name="x")
    trainer = sl.Trainer(
        TapeStep(lambda: (x - 4.0) ** 2, keras.optimizers.SGD(0.1)),
        [sl.MaxSteps(20)],
        steps_per_call=4,
    )
    trainer.run(5)

    @tf.function
    def train():
        trainer.run(4)
        return x.read_value()

    with pytest.raises(
        RuntimeError, match="TapeStep" + MESSAGE.replace("(", r"\(").replace(")", r"\)")
    ):
        train()
