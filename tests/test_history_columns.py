"""History: every path that adds rows, the dtypes of its columns, and its messages in full."""

import numpy as np
import pytest

import steploop as sl
from steploop.history import History


def refused(error, call, *args):
    with pytest.raises(error) as raised:
        call(*args)
    assert type(raised.value) is error
    return raised.value.args[0]


def filled(rows=3):
    history = History()
    for step in range(1, rows + 1):
        history.append(step, float(step) / 2)
    return history


def test_an_empty_history_has_step_and_loss():
    history = History()
    assert history.columns == ("step", "loss") and list(history) == ["step", "loss"]
    assert len(history) == 0 and history.rows == 0
    assert history["step"].dtype == np.int64 and history["loss"].dtype == np.float64
    assert repr(history) == "History(rows=0, columns=['step', 'loss'])"


def test_many_rows_grow_the_buffers_and_keep_every_number():
    history = History()
    for step in range(1, 41):
        history.append(step, step * 0.5, {"v": [step, -step]}, epoch=1 + step // 20)
    assert len(history) == 40
    assert history["step"].tolist() == list(range(1, 41))
    assert history["loss"].tolist() == [s * 0.5 for s in range(1, 41)]
    assert history["v"].shape == (40, 2) and history["v"][-1].tolist() == [40.0, -40.0]
    assert history["epoch"].tolist() == [1 + s // 20 for s in range(1, 41)]
    assert history["epoch"].dtype == np.int64
    history.extend(41, np.arange(30.0), {"v": np.ones((30, 2))}, epoch=4)
    assert history["step"].tolist() == list(range(1, 71))
    assert history["loss"][40:].tolist() == list(range(30))
    assert history["epoch"][-1] == 4 and history["v"][39:41].tolist() == [[40, -40], [1, 1]]


def test_steps_that_skip_are_kept_as_given():
    history = History()
    history.append(3, 1.0)
    history.append(4, 1.0)
    history.append(9, 1.0)
    history.extend(20, [1.0, 1.0])
    history.append(22, 1.0)
    assert history["step"].tolist() == [3, 4, 9, 20, 21, 22]
    assert history["step"].dtype == np.int64
    late = History()
    late.extend(5, [1.0, 2.0])
    late.extend(10, [3.0])
    assert late["step"].tolist() == [5, 6, 10]


def test_the_epoch_column_reads_zero_for_rows_without_an_epoch():
    history = filled(2)
    history.append(3, 1.5, epoch=1)
    history.append(4, 2.0)
    assert history["epoch"].tolist() == [0, 0, 1, 0]
    other = filled(2)
    other.extend(3, [1.0, 2.0], epoch=2)
    assert other["epoch"].tolist() == [0, 0, 2, 2]
    valued = filled(1)
    valued.extend(2, [1.0, 2.0], {"a": [5.0, 6.0]}, epoch=3)
    assert valued["epoch"].tolist() == [0, 3, 3]
    assert valued["a"].tolist()[1:] == [5.0, 6.0] and np.isnan(valued["a"][0])


def test_values_and_logs_make_float_columns_padded_with_nan():
    history = filled(2)
    history.log("lr", 1)
    history.append(3, 1.0, {"acc": np.float32(0.5)})
    history.log("lr", 0.25)
    assert history.columns == ("step", "loss", "lr", "acc")
    lr, acc = history["lr"], history["acc"]
    assert lr.dtype == np.float64 and np.isnan(lr[0]) and lr[1:].tolist() == [1.0, 0.25]
    assert np.isnan(acc[:2]).all() and acc[2] == 0.5
    assert history.get("acc").tolist()[2] == 0.5 and history.get("nope", 7) == 7
    assert "acc" in history and "nope" not in history
    assert list(history.keys()) == list(history.columns)
    assert [v.tolist()[0] for v in history.values()][:2] == [1, 0.5]
    assert [name for name, _ in history.items()] == list(history.columns)


def test_a_new_row_with_a_non_float_loss_or_values_is_checked():
    history = History()
    history.append(np.int64(1), np.float32(2.5))
    history.append(2, 3, {})
    assert history["loss"].tolist() == [2.5, 3.0] and history["step"].tolist() == [1, 2]


def test_columns_are_read_only_views():
    history = filled(2)
    with pytest.raises(ValueError):
        history["loss"][0] = 5.0


def test_equality_holds_numbers_and_names_nan_equal():
    a, b = filled(2), filled(2)
    a.log("x", np.nan)
    assert a != b
    b.log("x", np.nan)
    assert a == b
    b.append(3, 1.0)
    assert a != b
    assert (a == "history") is False
    assert a.__eq__(1) is NotImplemented


def test_from_columns_rebuilds_the_history():
    history = History.from_columns(
        {"step": [3, 4], "loss": [1.0, 0.5], "epoch": [1, 1], "w": [[1, 2], [3, 4]]}
    )
    assert history.columns == ("step", "loss", "epoch", "w")
    assert history["step"].tolist() == [3, 4] and history["step"].dtype == np.int64
    assert history["epoch"].dtype == np.int64 and history["w"].tolist() == [[1, 2], [3, 4]]
    assert len(history) == 2
    history.append(5, 0.25)
    assert history["step"].tolist() == [3, 4, 5] and history["epoch"].tolist() == [1, 1, 0]
    empty = History.from_columns({"step": [], "loss": []})
    assert len(empty) == 0 and empty == History()


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"loss": [1.0]}, "History.from_columns needs 'step' and 'loss', got ['loss']"),
        (
            {"step": [1], "b": [1]},
            "History.from_columns needs 'step' and 'loss', got ['b', 'step']",
        ),
        (
            {"step": [1.5], "loss": [1.0]},
            "History.from_columns: column 'step' must hold whole numbers",
        ),
        (
            {"step": [1, 2], "loss": [1.0]},
            "History.from_columns: column 'loss' has shape (1,), expected 2 rows",
        ),
        (
            {"step": [1], "loss": 1.0},
            "History.from_columns: column 'loss' has shape (), expected 1 rows",
        ),
    ],
)
def test_from_columns_refusals(columns, message):
    assert refused(ValueError, History.from_columns, columns) == message


def test_extend_refusals():
    history = filled(1)
    assert refused(TypeError, history.extend, 2, ["a"]) == (
        "History.extend: losses must be numbers, got dtype <U1"
    )
    assert refused(TypeError, history.extend, 2, [True]) == (
        "History.extend: losses must be numbers, got dtype bool"
    )
    assert refused(ValueError, history.extend, 2, [[1.0, 2.0]]) == (
        "History.extend: losses must be one number per step, got (1, 2)"
    )
    assert refused(ValueError, history.extend, 2, 1.0) == (
        "History.extend: losses must be one number per step, got ()"
    )
    assert refused(ValueError, history.extend, 2, [1.0, 2.0], {"a": [1.0]}) == (
        "History.extend: column 'a' needs 2 rows, got shape (1,)"
    )
    assert refused(ValueError, history.extend, 2, [1.0], {"a": 1.0}) == (
        "History.extend: column 'a' needs 1 rows, got shape ()"
    )
    history.log("w", [1.0, 2.0])
    assert refused(ValueError, history.extend, 2, [1.0], {"w": [[1.0]]}) == (
        "history column 'w' holds values of shape (2,), got shape (1,) at row 1"
    )
    assert len(history) == 1 and history.columns == ("step", "loss", "w")
    history.extend(2, [])
    assert len(history) == 1


def test_log_refusals():
    assert refused(ValueError, History().log, "lr", 1.0) == (
        "History.log('lr', ...) needs a step: no step has run yet"
    )
    history = filled(1)
    for name in ("step", "loss"):
        assert refused(ValueError, history.log, name, 1.0) == (
            f"History.log: column {name!r} is kept by the Trainer itself"
        )
    history.log("epoch", 7)  # no epoch column yet: a callback's own
    assert history["epoch"].tolist() == [7]
    history.append(2, 1.0, epoch=1)
    assert refused(ValueError, history.log, "epoch", 1.0) == (
        "History.log: column 'epoch' is kept by the Trainer itself"
    )


def test_values_that_are_not_numbers_or_do_not_fit_are_refused():
    history = filled(1)
    assert refused(TypeError, history.log, "w", "text") == (
        "history column 'w' takes numbers or numeric arrays, got str"
    )
    assert refused(TypeError, history.append, 2, 1.0, {"w": {"a": 1}}) == (
        "history column 'w' takes numbers or numeric arrays, got dict"
    )
    history.log("v", [1.0, 2.0])
    assert refused(ValueError, history.append, 2, 1.0, {"v": [1.0, 2.0, 3.0]}) == (
        "history column 'v' holds values of shape (2,), got shape (3,) at row 1"
    )
    assert len(history) == 1


def test_a_snapshot_refuses_every_write():
    frozen = filled(2).snapshot()
    message = "this History is a snapshot (RunResult.history); it is read-only"
    assert refused(TypeError, frozen.append, 3, 1.0) == message
    assert refused(TypeError, frozen.extend, 3, [1.0]) == message
    assert refused(TypeError, frozen.log, "x", 1.0) == message
    assert frozen["loss"].tolist() == [0.5, 1.0]


def test_a_missing_column_names_the_ones_there():
    history = filled(1)
    history.log("b", 1.0)
    assert refused(KeyError, history.__getitem__, "acc") == (
        "history has no column 'acc'; it has ['b', 'loss', 'step']"
    )


def test_extend_with_values_places_the_steps_it_is_given():
    history = filled(2)
    history.extend(10, [1.0, 2.0], {"a": [3.0, 4.0]})
    assert history.columns == ("step", "loss", "a")
    assert history["step"].tolist() == [1, 2, 10, 11]


def test_extend_makes_array_columns_of_the_rows_shape():
    history = History()
    history.extend(1, [1.0, 2.0], {"w": [[1, 2, 3], [4, 5, 6]]})
    assert history["w"].shape == (2, 3)
    history.append(3, 1.0, {"w": [7, 8, 9]})
    assert history["w"].tolist()[2] == [7.0, 8.0, 9.0]


def test_extend_reads_values_as_append_does():
    """A missing value (None) is nan, whether rows come one by one or at once."""
    one_by_one, at_once = History(), History()
    for step, value in [(1, None), (2, 1.5)]:
        one_by_one.append(step, 1.0, {"a": value})
    at_once.extend(1, [1.0, 1.0], {"a": [None, 1.5]})
    assert at_once == one_by_one
    assert np.isnan(at_once["a"][0]) and at_once["a"][1] == 1.5


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (1.5, TypeError, "History.append: step must be an int, got float 1.5"),
        (True, TypeError, "History.append: step must be an int, got bool True"),
        (
            np.float64(2.0),
            TypeError,
            "History.append: step must be an int, got float64 np.float64(2.0)",
        ),
        (2**63, ValueError, f"History.append: step {2**63} does not fit the int64 'step' column"),
        (
            -(2**63) - 1,
            ValueError,
            f"History.append: step {-(2**63) - 1} does not fit the int64 'step' column",
        ),
    ],
)
def test_a_step_that_is_not_an_int64_is_refused_at_append_and_adds_no_row(step, error, message):
    history = filled(2)
    assert refused(error, history.append, step, 1.0) == message
    assert refused(error, history.append, step, 1.0, {"w": 1.0}) == message
    assert history["step"].tolist() == [1, 2] and len(history) == 2


def test_steps_at_the_int64_bounds_and_numpy_ints_are_kept_exactly():
    history = History()
    history.append(2**63 - 1, 1.0)
    history.append(-(2**63), 1.0, {"w": 2.0})  # the slow path: through no float
    history.append(np.int64(2**62 + 1), 1.0, {"w": 3.0})
    assert history["step"].tolist() == [2**63 - 1, -(2**63), 2**62 + 1]
    history = History()
    history.extend(2**63 - 2, [1.0, 2.0])
    assert history["step"].tolist() == [2**63 - 2, 2**63 - 1]
    history = History()
    history.extend(-(2**63), [1.0])  # the lowest int64 (extend checks every first step)
    assert history["step"].tolist() == [-(2**63)]


def test_a_loss_that_is_not_a_number_is_refused_by_name():
    history = filled(1)
    assert refused(TypeError, history.append, 2, "x") == (
        "history column 'loss' takes numbers or numeric arrays, got str"
    )
    assert len(history) == 1


def test_extend_refuses_steps_past_int64_and_non_int_first_steps():
    history = filled(1)
    assert refused(ValueError, history.extend, 2**63 - 1, [1.0, 2.0]) == (
        f"History.extend: steps {2**63 - 1} .. {2**63} do not fit the int64 'step' column"
    )
    assert refused(TypeError, history.extend, 2.0, [1.0]) == (
        "History.extend: first_step must be an int, got float 2.0"
    )
    assert len(history) == 1


@pytest.mark.parametrize("name", ["step", "loss", "epoch"])
def test_a_value_named_after_a_column_the_history_keeps_is_refused(name):
    message = (
        f"a value is named {name!r}, a column the history keeps itself; rename it (values may "
        "not be named 'step', 'loss' or 'epoch')"
    )
    history = filled(1)
    assert refused(ValueError, history.append, 2, 1.0, {name: 7.0}) == f"History.append: {message}"
    assert refused(ValueError, history.extend, 2, [1.0], {name: [7.0]}) == (
        f"History.extend: {message}"
    )
    assert refused(ValueError, history.append, 2, 1.0, {name: 7.0}, 1) == (
        f"History.append: {message}"
    )
    assert history["step"].tolist() == [1] and history["loss"].tolist() == [0.5]
    assert "epoch" not in history


def test_integer_scalars_of_numpy_and_0d_arrays_are_steps():
    history = History()
    history.append(np.array(3), 1.0)
    history.append(np.int32(4), 1.0, {"w": 1.0})
    assert history["step"].tolist() == [3, 4]
    assert refused(TypeError, history.append, np.array(2.0), 1.0) == (
        "History.append: step must be an int, got ndarray array(2.)"
    )
    assert refused(TypeError, history.append, np.True_, 1.0) == (
        "History.append: step must be an int, got bool np.True_"
    )


class ReportsStep(sl.StepStrategy):
    def step(self, batch=None):
        return sl.StepOutput(loss=1.0, values={"step": 7.0})


def test_a_strategy_reporting_a_value_named_step_fails_at_its_first_step_naming_itself():
    trainer = sl.Trainer(ReportsStep(), [sl.MaxSteps(2)])
    with pytest.raises(ValueError) as raised:
        trainer.run()
    assert str(raised.value) == (
        "ReportsStep.step: a value is named 'step', a column the history keeps itself; rename it "
        "(values may not be named 'step', 'loss' or 'epoch')"
    )
    assert len(trainer.history) == 0 and trainer.step == 0
