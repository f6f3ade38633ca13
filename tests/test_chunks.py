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
