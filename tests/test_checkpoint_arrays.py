"""Callbacks' arrays in checkpoints (``Callback.get_arrays``/``set_arrays``, ``ckpt-N.arrays.npz``):
saved by owner key, handed back on restore, an older checkpoint without them restored as none."""

import os

import numpy as np
import pytest

import steploop as sl
from steploop import checkpoint_arrays
from steploop.numpy import GradientDescent


class Keeper(sl.Callback):
    """Keeps one array, the step count so far as float32, and its own copy of what it got."""

    def __init__(self):
        self.count, self.got = 0, None

    def on_step_end(self, trainer, record):
        self.count += 1

    def get_arrays(self):
        return {"count": np.array([self.count], np.float32)}

    def set_arrays(self, arrays):
        self.got = dict(arrays)


def descent():
    """Gradient descent on (x - 4)**2 from 0: the loss falls at every step."""
    return GradientDescent(lambda x: ((x - 4.0) ** 2, 2 * (x - 4.0)), 0.0, learning_rate=0.1)


def test_a_callbacks_arrays_are_saved_and_handed_back_by_owner_key(tmp_path):
    """Each owner (an ``Every`` through to its callback, a ``keyed`` one under its key) gets its
    own arrays back, dtype kept."""
    plain, every, keyed = Keeper(), Keeper(), Keeper().keyed("second")
    callbacks = [plain, sl.Every(every, 2).keyed("wrapped"), keyed]
    sl.Trainer(descent(), [*callbacks, sl.Checkpoint(str(tmp_path), every=3)]).run(3)
    fresh = [Keeper(), Keeper(), Keeper().keyed("second")]
    trainer = sl.Trainer(descent(), [fresh[0], sl.Every(fresh[1], 2).keyed("wrapped"), fresh[2]])
    assert trainer.restore(str(tmp_path)) == 3
    assert [k.got["count"].tolist() for k in fresh] == [[3.0], [1.0], [3.0]]
    assert fresh[0].got["count"].dtype == np.float32
    with np.load(tmp_path / "ckpt-3.arrays.npz") as saved:
        assert sorted(saved.files) == ["Keeper/count", "second/count", "wrapped/count"]


def test_two_callbacks_with_arrays_under_one_key_are_refused(tmp_path):
    trainer = sl.Trainer(descent(), [Keeper(), Keeper(), sl.Checkpoint(str(tmp_path), every=1)])
    with pytest.raises(ValueError, match=r"two callbacks would both save arrays under 'Keeper'"):
        trainer.run(1)


def test_no_arrays_no_file_and_an_older_checkpoint_restores_with_none(tmp_path):
    """Without arrays nothing is written; restoring such a checkpoint hands every owner an empty
    mapping, so a copy kept before the restore does not survive it."""
    sl.Trainer(descent(), [sl.Checkpoint(str(tmp_path), every=2)]).run(2)
    assert not os.path.exists(tmp_path / "ckpt-2.arrays.npz")
    keeper = Keeper()
    keeper.got = {"count": np.zeros(1)}
    assert sl.Trainer(descent(), [keeper]).restore(str(tmp_path)) == 2
    assert keeper.got == {}


def test_owner_keys_of_composite_parts():
    """A part of a composite criterion is keyed by the composite's key and its path."""
    early = sl.EarlyStopping(3, restore_best_weights=True)
    keys = dict((id(c), k) for k, c in checkpoint_arrays.owners([early | sl.MaxSteps(9)]))
    assert keys[id(early)] == "EarlyStopping.parts[0]"


@pytest.mark.parametrize("composite", [False, True])
def test_best_weights_copy_survives_a_checkpoint_after_the_best_step(tmp_path, composite):
    """Loss falls to step 3, then rises: a run checkpointed at step 5 and restored into a fresh
    Trainer stops where the uninterrupted one does and restores step 3's x bit for bit, also
    when EarlyStopping is a part of ``|``."""
    losses = [5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 3.8, 3.9]

    def model(directory=None):
        step = GradientDescent(lambda x, b: (b + 0 * x, 1.0), 0.0, learning_rate=0.125)
        early = sl.EarlyStopping(3, restore_best_weights=True)
        criterion = early | sl.MaxSteps(100) if composite else early
        saver = [] if directory is None else [sl.Checkpoint(directory, every=5)]
        return step, sl.Trainer(step, [criterion, *saver], data=losses)

    whole, trainer = model()
    result = trainer.run()
    assert (result.steps, float(whole.params["x"])) == (6, -0.375)  # x of step 3
    model(str(tmp_path))[1].run(5)
    resumed, trainer = model(str(tmp_path))
    assert trainer.restore(str(tmp_path)) == 5
    again = trainer.run()
    assert (again.steps, again.stop_reason) == (result.steps, result.stop_reason)
    assert "best weights restored" in again.stop_reason
    assert resumed.params["x"].tobytes() == whole.params["x"].tobytes()
