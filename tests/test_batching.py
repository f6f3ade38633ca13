"""``sl.batches``: exact batches, deterministic shuffling per (seed, epoch), errors by name."""

import re

import numpy as np
import pytest

import steploop as sl
from steploop.numpy import GradientDescent


def as_lists(data):
    return [tuple(part.tolist() for part in batch) for batch in data]


def test_batches_in_order_with_the_last_partial_batch():
    """Without shuffle, batches are consecutive rows; the last one holds the rest."""
    xs, ys = np.arange(7), np.arange(7) * 10
    data = sl.batches((xs, ys), batch_size=3)
    assert len(data) == 3
    assert as_lists(data) == [([0, 1, 2], [0, 10, 20]), ([3, 4, 5], [30, 40, 50]), ([6], [60])]


def test_drop_remainder_leaves_out_the_short_batch():
    """drop_remainder=True drops the last, smaller batch, and len() says so."""
    data = sl.batches((np.arange(7),), batch_size=3, drop_remainder=True)
    assert len(data) == 2
    assert as_lists(data) == [([0, 1, 2],), ([3, 4, 5],)]
    assert len(sl.batches(np.arange(6), 3, drop_remainder=True)) == 2


def test_dict_and_single_array_keep_their_structure():
    """A dict gives dict batches, one array gives array batches; rows keep trailing axes."""
    data = sl.batches({"x": np.arange(8).reshape(4, 2), "y": np.arange(4)}, batch_size=3)
    first, last = list(data)
    assert first["x"].tolist() == [[0, 1], [2, 3], [4, 5]] and first["y"].tolist() == [0, 1, 2]
    assert last["x"].tolist() == [[6, 7]] and last["y"].tolist() == [3]
    assert [b.tolist() for b in sl.batches(np.arange(3), 2)] == [[0, 1], [2]]


def test_each_iteration_is_one_epoch_and_reiterable():
    """Iterating again yields the whole epoch again (no shuffle: the same batches)."""
    data = sl.batches((np.arange(5),), batch_size=2)
    assert as_lists(data) == as_lists(data) == [([0, 1],), ([2, 3],), ([4],)]


def test_shuffle_is_a_permutation_per_epoch_determined_by_seed_and_epoch():
    """With a seed, epoch e is a permutation that depends only on (seed, e)."""
    xs = np.arange(20)
    data = sl.batches((xs, xs * 2), batch_size=6, shuffle=7)
    epochs = [np.concatenate([x for x, _ in data]) for _ in range(3)]
    for epoch in epochs:
        assert sorted(epoch.tolist()) == xs.tolist()
    assert all(np.concatenate([y for _, y in b]).tolist() == (2 * e).tolist()
               for b, e in zip([data.epoch(i) for i in range(3)], epochs, strict=True))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch
    again = sl.batches((xs, xs * 2), batch_size=6, shuffle=7)
    assert [np.concatenate([x for x, _ in again]).tolist() for _ in range(3)] == [
        e.tolist() for e in epochs
    ]
    expected = np.random.default_rng([7, 1]).permutation(20)
    assert epochs[1].tolist() == expected.tolist()
    other = sl.batches((xs, xs * 2), batch_size=6, shuffle=8)
    assert not np.array_equal(np.concatenate([x for x, _ in other]), epochs[0])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: sl.batches((np.ones(3),), 0), ValueError,
         "batches batch_size must be an int >= 1, got 0"),
        (lambda: sl.batches((np.ones(3),), 2.0), TypeError,
         "batches batch_size must be an int, got 2.0 (float)"),
        (lambda: sl.batches((np.ones(3), np.ones(4)), 2), ValueError,
         "batches arrays must all have the same number of rows: arrays[0] has 3, "
         "arrays[1] has 4"),
        (lambda: sl.batches({"x": np.ones(3), "y": np.ones(2)}, 2), ValueError,
         "batches arrays must all have the same number of rows: arrays['x'] has 3, "
         "arrays['y'] has 2"),
        (lambda: sl.batches((), 2), ValueError,
         "batches arrays is empty: give at least one array"),
        (lambda: sl.batches((np.ones(0),), 2), ValueError,
         "batches arrays have no rows: there is nothing to batch"),
        (lambda: sl.batches((np.ones(3), 1.0), 2), ValueError,
         "batches arrays[1] must have at least one axis (its rows), got a scalar"),
        (lambda: sl.batches((np.ones(3),), 2, shuffle=True), TypeError,
         "batches shuffle must be None (keep the order) or an int seed, got True (bool)"),
        (lambda: sl.batches([np.ones(3)], 2), TypeError,
         "batches arrays must be an array, a tuple or a dict of arrays, got a list"),
    ],
)
def test_bad_arguments_are_named(call, error, message):
    """Each bad argument raises an error that names it, with what was received."""
    with pytest.raises(error, match=re.escape(message)):
        call()


def quadratic():
    def loss_and_grad(params, batch):
        xs, ys = batch
        residual = params["w"] * xs - ys
        return float(np.mean(residual**2)), {"w": float(np.mean(2 * residual * xs))}

    return GradientDescent(loss_and_grad, {"w": 0.0}, learning_rate=0.1)


def test_trainer_runs_one_epoch_of_batches():
    """A Trainer over sl.batches takes one batch a step and ends with the epoch."""
    xs = np.linspace(-1, 1, 10)
    data = sl.batches((xs, 3 * xs), batch_size=4, shuffle=0)
    gd = quadratic()
    result = sl.Trainer(gd, data=data).run()
    assert (result.steps, result.status) == (3, "exhausted")
    # by hand: the same batches, the same updates
    w = 0.0
    for x, y in data.epoch(0):
        w -= 0.1 * float(np.mean(2 * (w * x - y) * x))
    assert float(gd.params["w"]) == w


def test_trainer_refuses_a_tuple_of_arrays_as_data():
    """data=(xs, ys) would make each whole array a batch: the error shows sl.batches."""
    xs = np.ones(10)
    with pytest.raises(ValueError, match=re.escape(
        "data is a tuple of 2 arrays of 10 rows: the Trainer would take each whole array as "
        "one batch; to train on batches of rows, write "
        "data=sl.batches((xs, ys), batch_size=32)"
    )):
        sl.Trainer(quadratic(), data=(xs, xs))


def test_trainer_refuses_a_2d_array_as_data():
    """A NumPy array of two axes would be one batch per row: the error shows sl.batches."""
    with pytest.raises(ValueError, match=re.escape(
        "data is a NumPy array of shape (10, 2): the Trainer would take each of its 10 rows "
        "as one batch; to train on batches of rows, write data=sl.batches(xs, batch_size=32)"
    )):
        sl.Trainer(quadratic(), data=np.ones((10, 2)))


def test_lists_of_batches_stay_allowed():
    """A list of (x, y) batches is still data, as before."""
    batches = [(np.ones(2), np.ones(2))] * 3
    assert sl.Trainer(quadratic(), data=batches).run().steps == 3
