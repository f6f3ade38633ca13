"""Variable names as reported: Keras path, tf.Variable name without ':0', repeats made unique."""

from steploop.tf import unique_names, variable_name


def test_names(tf, keras):
    layer = keras.layers.Dense(2, name="layer")
    layer.build((None, 3))
    assert [variable_name(v) for v in layer.trainable_variables] == ["layer/kernel", "layer/bias"]
    assert variable_name(tf.Variable(1.0, name="scale")) == "scale"
    clash = [tf.Variable(1.0, name="v"), tf.Variable(1.0, name="v_1"), tf.Variable(1.0, name="v")]
    assert unique_names(clash) == ("v", "v_1", "v_2")
