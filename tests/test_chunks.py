"""Pulling same-shaped batches and assembling a fused call's FusedResult, without any framework."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from steploop.chunks import assemble, pull_uniform, signature
from steploop.strategy import END, BatchCursor


@given(st.lists(st.integers(min_value=1, max_value=3), max_size=12), st.integers(1, 6))
def test_pulled_batches_share_a_shape_and_nothing_is_lost(lengths, count):
    """Each pull takes a run of equal shapes; every batch comes out once, in order."""
    batches = [np.zeros(n) + i for i, n in enumerate(lengths)]
    feed = BatchCursor(iter(batches))
    seen = []
    while True:
        pulled, ended = pull_uniform(feed, count)
        assert len(pulled) <= count
        assert len({b.shape for b in pulled}) <= 1
        seen += pulled
        if ended or not pulled:
            break
    assert [b.tolist() for b in seen] == [b.tolist() for b in batches]
    assert feed.next() is END


def test_a_non_numeric_batch_is_put_back():
    feed = BatchCursor(iter([("a",), (1.0,)]))
    assert pull_uniform(feed, 2) == ([], False)
    assert feed.next() == ("a",)
    assert signature({"x": 1.0}) != signature({"y": 1.0})


def test_assemble_puts_unused_batches_back_in_order():
    feed = BatchCursor(iter([9]))
    chunk = assemble(
        [1, 1, 0, 1, 0],
        [2.0, 3.0],
        ((0.0, 0.0), ()),
        {"loss": np.array([1.0, 0.0, 0.0]), "values": {}},
        [5, 6, 7],
        feed,
        ended=True,
    )
    assert (chunk.steps, chunk.states, chunk.verdicts, chunk.stopped) == (
        1,
        ((2.0, 3.0), ()),
        (True, False),
        True,
    )
    assert not chunk.exhausted
    assert [feed.next(), feed.next(), feed.next()] == [6, 7, 9]


class DeviceArray:
    """An array of another framework: a shape and a dtype, and no copy to the host."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype

    def __array__(self, *args, **kwargs):
        raise AssertionError("a batch was copied to the host to read its shape")


class FrameworkDType:
    """A dtype that NumPy reads through ``as_numpy_dtype`` (as TensorFlow's)."""

    as_numpy_dtype = np.float32


def test_signature_reads_shapes_and_dtypes_off_arrays_without_copying_them():
    a = (DeviceArray((128, 784), np.dtype("float32")), DeviceArray((128,), np.dtype("int32")))
    b = (DeviceArray((128, 784), FrameworkDType()), DeviceArray((128,), np.dtype("int32")))
    on_host = (np.zeros((128, 784), np.float32), np.zeros(128, np.int32))
    assert signature(a) == signature(b) == signature(on_host)
    assert signature(a) == (("tuple", (None, None)), (((128, 784), "float32"), ((128,), "int32")))
    assert signature(DeviceArray((2,), np.dtype("float32"))) != signature(
        DeviceArray((3,), np.dtype("float32"))
    )
    assert signature(DeviceArray((2,), np.dtype("U1"))) is None
    assert signature(np.zeros(2, "V2")) is None



def test_an_assembled_result_holds_every_steps_gradients_unless_told_it_is_the_last_steps():
    rows = {"loss": [1.0], "values": {}}
    assert assemble([1, 0, 0], [], (), rows).last_gradients is False
    assert assemble([1, 0, 0], [], (), rows, last_gradients=True).last_gradients is True
