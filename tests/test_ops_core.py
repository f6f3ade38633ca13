"""``ArrayOps`` built from NumPy primitives (as a framework builds its namespace) and ``HOST``."""

import math
import re

import numpy as np
import pytest

from steploop.ops import HOST, ArrayOps

PRIMITIVES = {
    "any_": np.logical_or,
    "all_": np.logical_and,
    "not_": np.logical_not,
    "number": np.float64,
    "where": np.where,
    "isfinite": np.isfinite,
    "isnan": np.isnan,
    "sqrt": np.sqrt,
    "sum_": np.sum,
    "square": np.square,
}
NAMES = "['all_', 'any_', 'isfinite', 'isnan', 'not_', 'number', 'sqrt', 'square', 'sum_', 'where']"


@pytest.fixture(scope="module")
def numpy_ops():
    return ArrayOps("NUMPY", **PRIMITIVES)


def tagged(name):
    """A primitive that returns its name and its arguments, to show how calls compose."""
    return lambda *args: (name, *args)


@pytest.fixture(scope="module")
def tagged_ops():
    return ArrayOps("TAGGED", **{name: tagged(name) for name in PRIMITIVES})


def test_the_label_is_the_repr():
    assert repr(ArrayOps("MY_OPS", **PRIMITIVES)) == "MY_OPS"
    assert repr(HOST) == "HOST"


@pytest.mark.parametrize("missing", sorted(PRIMITIVES))
def test_a_missing_primitive_is_refused_with_the_full_list(missing):
    primitives = {k: v for k, v in PRIMITIVES.items() if k != missing}
    with pytest.raises(TypeError, match=re.escape(f"ArrayOps('X') needs exactly {NAMES}")):
        ArrayOps("X", **primitives)


def test_an_unknown_primitive_is_refused():
    with pytest.raises(TypeError) as raised:
        ArrayOps("NP", **PRIMITIVES, mean=np.mean)
    assert str(raised.value) == f"ArrayOps('NP') needs exactly {NAMES}"


def test_the_logical_primitives_and_number_are_used_as_given(tagged_ops):
    assert tagged_ops.any_(1, 2) == ("any_", 1, 2)
    assert tagged_ops.all_(1, 2) == ("all_", 1, 2)
    assert tagged_ops.not_(1) == ("not_", 1)
    assert tagged_ops.number(1) == ("number", 1)


def test_each_function_widens_its_numbers_first(tagged_ops):
    """where, isfinite, isnan and sqrt pass every number through ``number``."""
    assert tagged_ops.where("c", 1, 2) == ("where", "c", ("number", 1), ("number", 2))
    assert tagged_ops.isfinite(3) == ("isfinite", ("number", 3))
    assert tagged_ops.isnan(3) == ("isnan", ("number", 3))
    assert tagged_ops.sqrt(3) == ("sqrt", ("number", 3))


def test_global_norm_squares_sums_and_roots_each_widened_gradient():
    calls = []

    def record(name, function):
        def primitive(*args):
            calls.append((name, *(float(np.sum(a)) for a in args)))
            return function(*args)

        return primitive

    ops = ArrayOps("REC", **{name: record(name, f) for name, f in PRIMITIVES.items()})
    assert ops.global_norm({"a": np.array([3.0]), "b": np.array(4.0)}) == 5.0
    assert calls == [
        ("number", 0.0),
        ("number", 3.0),
        ("square", 3.0),
        ("sum_", 9.0),
        ("number", 4.0),
        ("square", 4.0),
        ("sum_", 16.0),
        ("sqrt", 25.0),
    ]


def test_numpy_ops_decide_in_float64(numpy_ops):
    big = np.float32(3e38)
    assert numpy_ops.where(True, big, 0.0).dtype == np.float64
    assert numpy_ops.where(np.array([True, False]), np.float32(0.5), 2).tolist() == [0.5, 2.0]
    assert bool(numpy_ops.isfinite(1.0)) and not bool(numpy_ops.isfinite(np.inf))
    assert bool(numpy_ops.isnan(np.nan)) and not bool(numpy_ops.isnan(1.0))
    assert numpy_ops.sqrt(np.float32(2.0)) == math.sqrt(2.0)
    assert numpy_ops.sqrt(np.float32(2.0)).dtype == np.float64
    # float32 squares overflow; widened to float64 first, the norm is exact
    norm = numpy_ops.global_norm({"w": np.array([big, big], np.float32)})
    assert norm.dtype == np.float64
    assert norm == pytest.approx(float(big) * math.sqrt(2.0), rel=1e-15)
    assert float(numpy_ops.global_norm({})) == 0.0


def test_host_functions():
    assert HOST.sqrt(9.0) == 3.0
    assert HOST.number(np.float32(0.5)) == 0.5 and type(HOST.number(1)) is float
    assert HOST.global_norm({}) == 0.0


@pytest.mark.parametrize(
    "gradient", [np.array([300.0], np.float16), np.full(9, 100, np.int8), [300.0]]
)
def test_host_global_norm_widens_to_float64(gradient):
    """A float16 or int8 square would overflow; the host norm squares in float64."""
    assert HOST.global_norm({"g": gradient, "h": np.array([400.0, 0.0], np.float32)}) == 500.0
