"""MinimizeStep: minimize semantics on Keras 3, the optimizer's own minimize where it has one."""

import pytest

import steploop as sl
from steploop.tf import MinimizeStep


@pytest.mark.parametrize("compile", [True, False])
def test_reports_the_loss_before_its_update_and_no_gradients(tf, keras, compile):
    x = tf.Variable(0.0, name="x")
    opt = keras.optimizers.SGD(0.25)
    trainer = sl.Trainer(MinimizeStep(lambda: (x - 4.0) ** 2, [x], opt, compile=compile))
    records = list(trainer.iterate(max_steps=3))
    assert [r.loss for r in records] == [16.0, 4.0, 1.0]
    assert [r.gradients for r in records] == [{}, {}, {}]
    assert int(opt.iterations.numpy()) == 3 and x.numpy() == 3.5


def test_uses_the_optimizers_own_minimize_when_it_has_one(tf, keras):
    calls = []

    class Own(keras.optimizers.SGD):
        def minimize(self, loss, var_list):
            calls.append(len(var_list))
            with tf.GradientTape() as tape:
                value = loss()
            self.apply_gradients(zip(tape.gradient(value, var_list), var_list, strict=True))

    x = tf.Variable(0.0, name="x")
    step = MinimizeStep(lambda: (x - 4.0) ** 2, [x], Own(0.25), compile=False)
    assert step.uses_own_minimize
    sl.Trainer(step).run(max_steps=2)
    assert calls == [1, 1] and x.numpy() == 3.0
