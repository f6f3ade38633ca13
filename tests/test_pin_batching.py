"""sl.batches: full error messages, the repr, dict batches and explicit epochs."""

import numpy as np
import pytest

import steploop as sl


def message(call, error):
    with pytest.raises(error) as caught:
        call()
    return str(caught.value)


@pytest.mark.parametrize(
    ("call", "error", "expected"),
    [
        (
            lambda: sl.batches(np.ones(3), 2, shuffle=1.5),
            TypeError,
            "batches shuffle must be None (keep the order) or an int seed, got 1.5 (float)",
        ),
        (
            lambda: sl.batches(np.ones(3), 2, drop_remainder=1),
            TypeError,
            "batches drop_remainder must be a bool, got 1 (int)",
        ),
        (
            lambda: sl.batches([np.ones(3)], 2),
            TypeError,
            "batches arrays must be an array, a tuple or a dict of arrays, got a list; pass a "
            "tuple (xs, ys) for several arrays, or np.asarray(...) for one",
        ),
        (
            lambda: sl.batches({"x": "abc"}, 2),
            TypeError,
            "batches arrays['x'] must be an array with a leading axis of rows, got str",
        ),
        (
            lambda: sl.batches(None, 2),
            TypeError,
            "batches arrays must be an array with a leading axis of rows, got NoneType",
        ),
        (
            lambda: sl.batches((np.ones(3), b"xy"), 2),
            TypeError,
            "batches arrays[1] must be an array with a leading axis of rows, got bytes",
        ),
        (
            lambda: sl.batches(3.0, 2),
            ValueError,
            "batches arrays must have at least one axis (its rows), got a scalar",
        ),
        (
            lambda: sl.batches({"x": np.ones(3), "y": 2.0}, 2),
            ValueError,
            "batches arrays['y'] must have at least one axis (its rows), got a scalar",
        ),
        (
            lambda: sl.batches((), 2),
            ValueError,
            "batches arrays is empty: give at least one array",
        ),
        (
            lambda: sl.batches({}, 2),
            ValueError,
            "batches arrays is empty: give at least one array",
        ),
        (
            lambda: sl.batches(np.ones((0, 2)), 2),
            ValueError,
            "batches arrays have no rows: there is nothing to batch",
        ),
        (
            lambda: sl.batches((np.ones(3), np.ones(4), np.ones(3)), 2),
            ValueError,
            "batches arrays must all have the same number of rows: arrays[0] has 3, "
            "arrays[1] has 4, arrays[2] has 3",
        ),
        (
            lambda: sl.batches({"x": np.ones(2), "y": np.ones(5)}, 2),
            ValueError,
            "batches arrays must all have the same number of rows: arrays['x'] has 2, "
            "arrays['y'] has 5",
        ),
        (
            lambda: sl.batches(np.ones(3), 0),
            ValueError,
            "batches batch_size must be an int >= 1, got 0",
        ),
    ],
)
def test_each_bad_argument_has_its_full_message(call, error, expected):
    assert message(call, error) == expected


def test_a_bad_epoch_number_is_named():
    data = sl.batches(np.arange(4), 2)
    assert message(lambda: list(data.epoch(-1)), ValueError) == (
        "Batches.epoch number must be an int >= 0, got -1"
    )
    assert message(lambda: list(data.epoch(1.0)), TypeError) == (
        "Batches.epoch number must be an int, got 1.0 (float)"
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "batches(5 rows, batch_size=2): 3 batches per epoch"),
        ({"shuffle": 7}, "batches(5 rows, batch_size=2, shuffle=7): 3 batches per epoch"),
        (
            {"drop_remainder": True},
            "batches(5 rows, batch_size=2, drop_remainder=True): 2 batches per epoch",
        ),
        (
            {"shuffle": 0, "drop_remainder": True},
            "batches(5 rows, batch_size=2, shuffle=0, drop_remainder=True): 2 batches per epoch",
        ),
    ],
)
def test_repr_shows_rows_size_seed_and_batches_per_epoch(kwargs, expected):
    assert repr(sl.batches(np.arange(5), 2, **kwargs)) == expected


def test_dict_batches_keep_their_keys_in_order():
    """A dict of arrays gives dict batches with the same keys, each holding the same rows."""
    data = sl.batches({"b": np.arange(5), "a": np.arange(5) * 10}, 2)
    got = [{key: value.tolist() for key, value in batch.items()} for batch in data]
    assert got == [{"b": [0, 1], "a": [0, 10]}, {"b": [2, 3], "a": [20, 30]}, {"b": [4], "a": [40]}]
    assert [list(batch) for batch in data.epoch(0)] == [["b", "a"]] * 3


def test_a_single_array_gives_arrays_not_tuples():
    data = sl.batches(np.arange(3), 2)
    batches = list(data)
    assert all(isinstance(batch, np.ndarray) for batch in batches)
    assert [batch.tolist() for batch in batches] == [[0, 1], [2]]
