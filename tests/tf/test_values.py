"""A loss's "values" entry: named numbers reported in StepRecord.values and the history."""

import pytest

import steploop as sl
from steploop.tf import PersistentTapeStep, TapeStep


@pytest.mark.parametrize("compile", [True, False])
def test_tape_step_reports_values_without_differentiating_them(tf, keras, compile):
    x = tf.Variable(0.0, name="x")

    def loss():
        return {"loss": (x - 4.0) ** 2, "values": {"x_seen": x * 1.0, "count": 7}}

    trainer = sl.Trainer(TapeStep(loss, keras.optimizers.SGD(0.25), compile=compile))
    records = list(trainer.iterate(max_steps=3))
    assert [float(r.values["x_seen"]) for r in records] == [0.0, 2.0, 3.0]
    assert trainer.history["x_seen"].tolist() == [0.0, 2.0, 3.0]
    assert trainer.history["count"].tolist() == [7.0, 7.0, 7.0]
    assert list(records[0].gradients) == ["x"]


@pytest.mark.parametrize("compile", [True, False])
def test_persistent_values_are_not_targets(tf, keras, compile):
    x = tf.Variable(0.0, name="x")

    def forward():
        z = x - 4.0
        return {"loss": z**2, "z": z, "values": {"abs_z": tf.abs(z)}}

    record = next(sl.Trainer(PersistentTapeStep(forward, keras.optimizers.SGD(0.25))).iterate())
    assert list(record.target_gradients) == ["z"]
    assert float(record.values["abs_z"]) == 4.0


def test_values_feed_early_stopping(tf, keras):
    x = tf.Variable(0.0, name="x")
    loss = lambda: {"loss": (x - 4.0) ** 2, "values": {"distance": tf.abs(x - 4.0)}}  # noqa: E731
    criterion = sl.EarlyStopping(patience=2, min_delta=0.01, monitor="distance")
    result = sl.Trainer(TapeStep(loss, keras.optimizers.SGD(0.25)), callbacks=[criterion]).run()
    distances = result.history["distance"]
    assert result.status == "converged"
    assert distances[-3] - distances[-1] <= 0.01 + 1e-6


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0], "'values' entry must be a dict of named tensors, got list"),
        ({1: 1.0}, "'values' keys must be str, got 1"),
        ({"name": "text"}, "value 'name' must be a number or numeric tensor, got str"),
    ],
)
def test_bad_values(tf, keras, values, message):
    x = tf.Variable(0.0, name="x")
    step = TapeStep(lambda: {"loss": x**2, "values": values}, keras.optimizers.SGD(0.1))
    with pytest.raises(TypeError) as info:
        step.step()
    assert str(info.value) == f"TapeStep: loss's {message}"


@pytest.mark.parametrize(("compile", "per_call"), [(True, 1), (True, 4), (False, 1)])
def test_a_value_named_after_a_history_column_fails_before_any_update(tf, keras, compile, per_call):
    x = tf.Variable(0.0, name="x")
    loss = lambda: {"loss": (x - 4.0) ** 2, "values": {"epoch": x * 1.0}}  # noqa: E731
    step = TapeStep(loss, keras.optimizers.SGD(0.25), compile=compile)
    with pytest.raises(ValueError) as raised:
        sl.Trainer(step, [sl.MaxSteps(3)], steps_per_call=per_call).run()
    assert str(raised.value) == (
        "TapeStep: loss's 'values': a value is named 'epoch', a column the history keeps "
        "itself; rename it (values may not be named 'step', 'loss' or 'epoch')"
    )
    assert float(x.numpy()) == 0.0
