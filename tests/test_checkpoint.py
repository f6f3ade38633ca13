"""Checkpoint and Trainer.restore: exact resume, bounded disk, atomic writes, early errors."""

import os
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import steploop as sl
from steploop import checkpoint
from tests.helpers import RaiseAt, batch_replay, quadratic


def criteria():
    return [
        sl.EarlyStopping(patience=3, min_delta=1e-4),
        sl.LossChangeBelow(1e-300, patience=50) | sl.MaxSteps(120),
    ]


@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=9),
    st.integers(min_value=1, max_value=3),
)
def test_crashed_run_resumes_like_one_run(crash_at, every, keep):
    """Died at any step, restored from the last checkpoint, the run ends as if uninterrupted:
    same stop, history, x and CSV file."""
    folder = tempfile.mkdtemp()
    reference_strategy = quadratic(0.05)
    csv = sl.CSVLogger(os.path.join(folder, "reference.csv"))
    reference = sl.Trainer(reference_strategy, [*criteria(), csv])
    expected = reference.run()

    path = os.path.join(folder, "run.csv")
    saver = sl.Checkpoint(os.path.join(folder, "ckpt"), every=every, keep=keep)
    first = sl.Trainer(quadratic(0.05), [*criteria(), sl.CSVLogger(path), saver, RaiseAt(crash_at)])
    if crash_at <= expected.steps:
        with pytest.raises(RuntimeError, match=f"died at step {crash_at}"):
            first.run()
        # the Checkpoint fires after the other callbacks: step crash_at's own save never ran
        last_saved = ((crash_at - 1) // every) * every
    else:
        first.run()
        last_saved = expected.steps  # the run ended: saved at its end
    strategy = quadratic(0.05)
    second = sl.Trainer(strategy, [*criteria(), sl.CSVLogger(path), saver])
    restored = second.restore(saver.directory)
    assert restored == (last_saved or None)
    result = second.run()
    assert (result.steps, result.stop_reason) == (expected.steps, expected.stop_reason)
    assert second.history == reference.history
    assert float(strategy.params["x"]) == float(reference_strategy.params["x"])
    with open(path) as got, open(os.path.join(folder, "reference.csv")) as want:
        assert got.read() == want.read()


def test_keep_bounds_the_files_and_the_latest_survives():
    folder = tempfile.mkdtemp()
    saver = sl.Checkpoint(folder, every=2, keep=1)
    sl.Trainer(quadratic(), [saver, sl.MaxSteps(9)]).run()
    assert sorted(os.listdir(folder)) == [
        "checkpoint.json",
        "ckpt-9.history.npz",
        "ckpt-9.params.npz",
        "ckpt-9.trainer.json",
    ]
    assert saver.latest == 9


def test_a_crash_while_writing_leaves_the_previous_checkpoint(monkeypatch):
    folder = tempfile.mkdtemp()
    trainer = sl.Trainer(quadratic(), [sl.Checkpoint(folder, every=5), sl.MaxSteps(12)])
    real = checkpoint.atomic_write

    def dying(path, write):
        if "ckpt-10.history" in path:
            raise OSError("disk full")
        real(path, write)

    monkeypatch.setattr(checkpoint, "atomic_write", dying)
    with pytest.raises(OSError, match="disk full"):
        trainer.run()
    fresh = sl.Trainer(quadratic(), [sl.MaxSteps(12)])
    assert fresh.restore(folder) == 5
    assert fresh.history.rows == 5
    assert not [name for name in os.listdir(folder) if name.startswith(".tmp-")]


def test_unwritable_directory_fails_at_construction(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"Checkpoint directory '.*a-file/run' is not writable"):
        sl.Checkpoint(blocker / "run", every=10)
    with pytest.raises(ValueError, match="Checkpoint every must be an int >= 1, got 0"):
        sl.Checkpoint(tmp_path, every=0)


def test_two_stateful_callbacks_need_distinct_keys(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"callbacks\[0\] and callbacks\[1\] would both save their "
        r"state under 'EarlyStopping'; give one another key",
    ):
        sl.Trainer(quadratic(), [sl.EarlyStopping(3), sl.EarlyStopping(5)])
    trainer = sl.Trainer(quadratic(), [sl.EarlyStopping(3), sl.EarlyStopping(5).keyed("slow")])
    assert sorted(trainer.state()["callbacks"]) == ["EarlyStopping", "slow"]


def test_checkpoint_needs_a_strategy_that_saves(tmp_path):
    class Plain(sl.StepStrategy):
        def step(self):
            return sl.StepOutput(loss=1.0)

    with pytest.raises(TypeError, match="needs a strategy that can be saved; Plain does not"):
        sl.Trainer(Plain(), [sl.Checkpoint(tmp_path, every=1)])


def test_restore_without_a_checkpoint_returns_none_and_a_missing_state_is_named(tmp_path):
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(4)])
    assert trainer.restore(tmp_path / "nothing-yet") is None
    sl.Trainer(quadratic(), [sl.Checkpoint(tmp_path, every=2), sl.MaxSteps(4)]).run()
    other = sl.Trainer(quadratic(), [sl.EarlyStopping(3), sl.MaxSteps(9)])
    with pytest.raises(ValueError, match=r"has no state for \['EarlyStopping'\]"):
        other.restore(tmp_path)


@given(st.integers(min_value=1, max_value=19), st.integers(min_value=1, max_value=5))
def test_data_position_is_restored(crash_at, every):
    """A resumed run takes the batch after the last checkpoint's, whatever the chunking."""
    folder = tempfile.mkdtemp()
    seen = []
    saver = sl.Checkpoint(folder, every=every)
    first = sl.Trainer(batch_replay(seen), [saver, RaiseAt(crash_at)], data=list(range(20)))
    with pytest.raises(RuntimeError):
        first.run()
    resumed = []
    second = sl.Trainer(batch_replay(resumed), [saver], data=list(range(20)), steps_per_call=3)
    start = second.restore(folder) or 0
    assert second.run().steps == 20
    assert resumed == list(range(start, 20))
    assert np.array_equal(second.history["loss"], np.arange(20.0))
