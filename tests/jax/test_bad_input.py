"""OptaxStep refuses bad arguments at construction (or when the Trainer is built, or at the first
step for what only the loss's result tells), with a message naming the argument."""

import pytest

import steploop as sl
from steploop.jax import OptaxStep


def f(p):
    return (p["x"] - 4.0) ** 2


SGD = "optax.sgd(learning_rate=0.1)"


@pytest.fixture(scope="module")
def make(jnp, optax):
    def build(loss=f, params=None, optimizer=None, **options):
        params = {"x": jnp.array(0.0)} if params is None else params
        return OptaxStep(
            loss, params, optax.sgd(0.1) if optimizer is None else optimizer, **options
        )

    return build


def test_optimizer_must_be_a_gradient_transformation(make, optax):
    with pytest.raises(TypeError, match=r"^OptaxStep: optimizer must be an optax\.Gradient"):
        make(optimizer=object())
    with pytest.raises(TypeError) as error:
        make(optimizer="sgd")
    assert str(error.value) == (
        f"OptaxStep: optimizer must be an optax.GradientTransformation such as {SGD}, "
        "got the string 'sgd'"
    )
    with pytest.raises(TypeError) as error:
        make(optimizer=optax.sgd)
    assert str(error.value) == (
        "OptaxStep: optimizer must be an optax.GradientTransformation, got sgd; call it, "
        f"e.g. {SGD}"
    )


@pytest.mark.parametrize(
    ("params", "kind", "message"),
    [
        (
            {},
            ValueError,
            "OptaxStep: params holds no array; give a pytree (dict, list, tuple) of "
            "floating-point arrays",
        ),
        ({"a": "s"}, TypeError, "OptaxStep: params['a'] must be a floating-point array, got 's'"),
        ({"a": True}, TypeError, "OptaxStep: params['a'] must be a floating-point array, got True"),
    ],
)
def test_params_must_be_a_pytree_of_float_arrays(make, params, kind, message):
    with pytest.raises(kind) as error:
        make(params=params)
    assert str(error.value) == message


def test_an_integer_leaf_is_named_by_its_path(make, jnp):
    with pytest.raises(TypeError) as error:
        make(params={"a": [jnp.array(1)]})
    assert str(error.value) == (
        "OptaxStep: params['a'][0] must be a floating-point array, got dtype int32; pass e.g. "
        "jnp.asarray(value, jnp.float32)"
    )


def test_flags_and_policy_are_checked(make):
    with pytest.raises(TypeError, match=r"^OptaxStep: jit must be a bool, got int$"):
        make(jit=1)
    with pytest.raises(ValueError, match=r"^OptaxStep: on_nonfinite must be one of"):
        make(on_nonfinite="ignore")
    with pytest.raises(TypeError, match=r"^OptaxStep: loss must be a function of params"):
        make(loss="f")


def test_loss_arity_is_checked_against_the_data(make):
    with pytest.raises(TypeError) as error:
        sl.Trainer(make(), [sl.MaxSteps(2)], data=[1.0])
    assert str(error.value) == (
        "OptaxStep: loss(p) cannot be called as loss(params, batch), since the Trainer has data"
    )
    with pytest.raises(TypeError) as error:
        sl.Trainer(make(loss=lambda p, b: f(p)), [sl.MaxSteps(2)])
    assert str(error.value) == (
        "OptaxStep: loss(p, b) cannot be called as loss(params) (no data was given to the Trainer)"
    )


@pytest.mark.parametrize("jit", [True, False])
def test_what_the_loss_returns_is_checked(make, jnp, jit):
    cases = [
        (
            lambda p: p["x"] * jnp.ones(3),
            ValueError,
            "OptaxStep: loss must return a scalar for 'loss', got a tensor of shape (3,); reduce "
            "it, e.g. with jnp.mean",
        ),
        (
            lambda p: "a",
            TypeError,
            "OptaxStep: loss must return a numeric tensor for 'loss', got 'a'",
        ),
        (
            lambda p: jnp.int32(1),
            TypeError,
            "OptaxStep: loss must return a floating-point tensor for 'loss', got int32",
        ),
        (
            lambda p: {"l": f(p)},
            ValueError,
            "OptaxStep: loss must return a dict with a 'loss' entry, got keys ['l']",
        ),
        (
            lambda p: {"loss": f(p), "values": {"a": "t"}},
            TypeError,
            "OptaxStep: loss's value 'a' must be a number or numeric array, got str",
        ),
        (
            lambda p: {"loss": f(p), "z": "t"},
            TypeError,
            "OptaxStep: loss must return a numeric tensor for 'z', got 't'",
        ),
    ]
    for loss, kind, message in cases:
        with pytest.raises(kind) as error:
            make(loss=loss, jit=jit).step()
        assert str(error.value) == message


def test_a_batch_part_that_is_not_numeric_is_named(make):
    trainer = sl.Trainer(make(loss=lambda p, b: f(p)), [sl.MaxSteps(2)], data=[("a",)])
    with pytest.raises(TypeError, match=r"^OptaxStep: a batch from data has a part 'a'; "):
        trainer.run()


@pytest.mark.parametrize("per_call", [1, 4])
def test_a_value_named_after_a_history_column_fails_before_any_update(make, jnp, per_call):
    step = make(loss=lambda p: {"loss": (p["x"] - 4.0) ** 2, "values": {"loss": p["x"]}})
    with pytest.raises(ValueError) as raised:
        sl.Trainer(step, [sl.MaxSteps(3)], steps_per_call=per_call).run()
    assert str(raised.value) == (
        "OptaxStep: loss's 'values': a value is named 'loss', a column the history keeps "
        "itself; rename it (values may not be named 'step', 'loss' or 'epoch')"
    )
    assert float(step.params["x"]) == 0.0
