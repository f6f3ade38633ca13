"""The neutral parts of a compiled fused call: batch signatures, the empty chunk and the
FusedResult that assemble builds from a call's outputs."""

from collections import OrderedDict

import numpy as np

from steploop.chunks import assemble, empty, pull_uniform, signature
from steploop.strategy import BatchCursor


def test_signature_is_the_nesting_then_each_leafs_shape_and_dtype():
    batch = (1.0, [np.zeros((2, 3), np.float32), 4], {"y": np.int8(1)})
    assert signature(batch) == (
        ("tuple", (None, ("list", (None, None)), ("dict", (("y", None),)))),
        (((), "float64"), ((2, 3), "float32"), ((), "int64"), ((), "int8")),
    )


def test_batches_in_other_containers_have_other_signatures():
    """Stacking needs one structure: a list is not a tuple, an OrderedDict not a dict."""
    assert signature((1.0, 2.0)) != signature([1.0, 2.0])
    assert signature({"x": 1.0}) != signature(OrderedDict(x=1.0))
    feed = BatchCursor(iter([(1.0, 2.0), [3.0, 4.0]]))
    assert pull_uniform(feed, 2) == ([(1.0, 2.0)], False)
    assert feed.next() == [3.0, 4.0]


def test_the_empty_chunk_did_no_step_and_ends_the_data():
    chunk = empty()
    assert chunk.steps == 0
    assert chunk.exhausted is True
    assert chunk.stopped is False
    assert chunk.output.loss.shape == (0,)


def call_outputs():
    return {
        "loss": np.array([3.0, 2.0]),
        "values": {"acc": np.array([0.5, 0.75])},
        "gradients": {"w": np.array([[1.0], [2.0]])},
        "target_gradients": {"aux": {"w": np.array([[3.0], [4.0]])}},
    }


def test_assemble_hands_each_stacked_output_to_its_field():
    stacked = call_outputs()
    chunk = assemble([2, 0, 0], [], (), stacked)
    assert chunk.output.loss is stacked["loss"]
    assert chunk.output.values is stacked["values"]
    assert chunk.output.gradients is stacked["gradients"]
    assert chunk.output.target_gradients is stacked["target_gradients"]
    assert (chunk.steps, chunk.stopped, chunk.exhausted, chunk.verdicts) == (2, False, False, ())


def test_assemble_without_gradients_leaves_them_none():
    chunk = assemble([1, 0, 0], [], (), {"loss": np.array([1.0]), "values": {}})
    assert chunk.output.gradients is None and chunk.output.target_gradients is None
    assert chunk.output.values == {}


def test_the_data_ends_when_the_call_says_so_or_used_every_pulled_batch_of_the_last():
    outputs = {"loss": np.zeros(2), "values": {}}
    assert assemble([2, 0, 1], [], (), outputs, [1, 2]).exhausted is True  # the call saw the end
    assert assemble([2, 0, 1], [], (), outputs).exhausted is True
    assert assemble([2, 0, 0], [], (), outputs, [1, 2]).exhausted is False  # more may come
    assert assemble([2, 0, 0], [], (), outputs, [1, 2], ended=True).exhausted is True
    assert assemble([1, 1, 0], [], (), outputs, [1, 2], ended=True).exhausted is False
    assert assemble([0, 0, 0], [], (), outputs).exhausted is False  # no batches, no end seen


class ShapeOnly:
    """A leaf with a shape but no dtype: NumPy sees it as an object, not a number."""

    shape = (2,)


def test_a_leaf_with_a_shape_but_no_dtype_is_not_numeric():
    """A leaf is read off as an array only when it has both shape and dtype; else NumPy's view
    (here an object) decides, and an object is not numeric."""
    assert signature((1.0, ShapeOnly())) is None


def test_bool_and_complex_leaves_are_numeric():
    """Booleans and complex numbers stack like other numbers (NumPy kinds 'b' and 'c')."""
    assert signature(True) == (None, (((), "bool"),))
    assert signature(np.complex64(1 + 2j)) == (None, (((), "complex64"),))


def test_assemble_honours_no_stop_unless_told():
    outputs = {"loss": np.zeros(2), "values": {}}
    assert assemble([2, 0, 0], [], (), outputs).stop_honoured is False
    assert assemble([2, 0, 0], [], (), outputs, honoured=True).stop_honoured is True


class Asked:
    """A stand-in for the criteria program: only ``stop_asked`` is read."""

    stop_asked = False


def test_pull_uniform_puts_back_the_batch_yielded_as_the_data_asked_to_stop():
    """None is pulled after it, and the data has not ended (the batch is still to come)."""
    stopper = Asked()

    def data():
        yield 1.0
        yield 2.0
        stopper.stop_asked = True
        yield 3.0
        yield 4.0

    feed = BatchCursor(data())
    assert pull_uniform(feed, 4, stopper) == ([1.0, 2.0], False)
    assert [feed.next() for _ in range(2)] == [3.0, 4.0]
    assert pull_uniform(BatchCursor(iter([1.0, 2.0])), 4, Asked()) == ([1.0, 2.0], True)
