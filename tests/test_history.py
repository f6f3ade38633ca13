"""History: columnar, numbers only, O(1) amortised appends, nan where a column has no entry."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steploop import History


@given(st.lists(st.floats(allow_nan=False), max_size=200))
def test_loss_column_equals_what_was_appended(losses):
    history = History()
    for step, loss in enumerate(losses, start=1):
        history.append(step, loss)
    assert history.rows == len(losses)
    if losses:
        assert history["loss"].tolist() == losses
        assert history["step"].tolist() == list(range(1, len(losses) + 1))


def test_late_columns_are_padded_with_nan_and_views_are_read_only():
    history = History()
    history.append(1, 3.0)
    history.append(2, 2.0, {"lr": 0.5})
    history.log("norm", 7.0)
    history.append(3, 1.0)
    assert np.isnan(history["lr"][0]) and history["lr"][1] == 0.5 and np.isnan(history["lr"][2])
    assert np.isnan(history["norm"]).tolist() == [True, False, True]
    with pytest.raises(ValueError):
        history["loss"][0] = 1.0


def test_history_equality_and_errors():
    a, b = History(), History()
    for h in (a, b):
        h.append(1, 1.0, {"v": [1.0, 2.0]})
    assert a == b
    b.append(2, 0.5, {"v": [1.0, 2.0]})
    assert a != b
    with pytest.raises(
        KeyError, match=r"history has no column 'acc'; it has \['loss', 'step', 'v'\]"
    ):
        a["acc"]
    with pytest.raises(ValueError, match=r"holds values of shape \(2,\), got shape \(3,\)"):
        a.log("v", [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="history column 'name' takes numbers"):
        a.log("name", "text")
    with pytest.raises(ValueError, match="kept by the Trainer itself"):
        a.log("loss", 1.0)
    with pytest.raises(ValueError, match="no step has run yet"):
        History().log("x", 1.0)


def test_a_million_rows_store_numbers_not_objects():
    history = History()
    for step in range(1, 1_000_001):
        history.append(step, 1.0 / step)
    loss = history["loss"]
    assert loss.dtype == np.float64 and loss.shape == (1_000_000,)
    # An internal read on purpose: the claim is about memory layout (one float64 buffer that at
    # most doubles, no Python object per row), which no public API shows.
    assert history._columns["loss"].buffer.nbytes <= 2 * 8 * 1_048_576


def test_snapshot_is_frozen_at_its_rows_and_columns():
    history = History()
    for step in range(1, 21):
        history.append(step, float(step))
    frozen = history.snapshot()
    for step in range(21, 100):  # grows the buffers past their first size
        history.append(step, float(step), {"late": 1.0})
    assert frozen.rows == 20 and list(frozen) == ["step", "loss"]
    assert frozen["loss"].tolist() == [float(s) for s in range(1, 21)]
    with pytest.raises(TypeError, match="this History is a snapshot"):
        frozen.append(21, 0.0)


def test_a_bad_value_leaves_the_history_as_it_was():
    history = History()
    history.append(1, 1.0, {"v": 1.0})
    with pytest.raises(TypeError, match="history column 'w' takes numbers"):
        history.append(2, 0.5, {"v": 2.0, "w": "text"})
    assert history.rows == 1 and history["v"].tolist() == [1.0] and "w" not in history


def test_the_step_column_costs_nothing_while_consecutive_and_stays_right_when_not():
    """Consecutive steps are not stored; a gap (a user's own numbering) stores them all."""
    history = History()
    history.extend(1, [4.0, 3.0, 2.0])
    frozen = history.snapshot()
    # An internal read on purpose: "costs nothing" means no step buffer exists yet, which no
    # public API shows (reading the column would build one).
    assert history._columns["step"].column is None
    history.append(7, 1.0)
    history.extend(8, [0.5, 0.25])
    assert history["step"].tolist() == [1.0, 2.0, 3.0, 7.0, 8.0, 9.0]
    assert frozen["step"].tolist() == [1.0, 2.0, 3.0]
    restored = History.from_columns({name: history[name] for name in history})
    assert restored == history


def test_len_counts_rows_and_columns_exist_before_the_first_step():
    """As in pandas: len is the row count; step and loss are there (empty) from the start."""
    history = History()
    assert len(history) == 0 and list(history) == ["step", "loss"]
    assert history["loss"].tolist() == [] and history["loss"].dtype == np.float64
    assert history["step"].tolist() == [] and history["step"].dtype == np.int64
    history.append(1, 2.0, {"lr": 0.1})
    history.extend(2, [1.0, 0.5])
    assert len(history) == 3 and history.columns == ("step", "loss", "lr")
    assert dict(history.items())["loss"].tolist() == [2.0, 1.0, 0.5]
    assert "lr" in history and "acc" not in history and history.get("acc") is None


def test_step_column_is_integer_in_every_path():
    """Consecutive, restored and non-consecutive step columns all read as int64."""
    history = History()
    history.append(5, 1.0)
    history.append(9, 1.0)  # not consecutive: the column is stored
    assert history["step"].dtype == np.int64 and history["step"].tolist() == [5, 9]
    restored = History.from_columns({"step": np.array([3.0, 4.0]), "loss": [1.0, 2.0]})
    assert restored["step"].dtype == np.int64 and restored["step"].tolist() == [3, 4]
    with pytest.raises(ValueError, match="'step' must hold whole numbers"):
        History.from_columns({"step": [1.5], "loss": [1.0]})
