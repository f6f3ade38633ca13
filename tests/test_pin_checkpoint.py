"""Pins of steploop.checkpoint: exact error and log messages, the trainer state a checkpoint
keeps (criteria verdicts by place, through ``Every`` too), and when a Checkpoint saves."""

import json
import logging
import os

import numpy as np
import pytest

import steploop as sl
from steploop import checkpoint
from tests.helpers import batch_replay, quadratic, raised_message


class Plain(sl.StepStrategy):
    """A strategy without save and restore."""

    def step(self):
        return sl.StepOutput(loss=1.0)


class Keeper(sl.Callback):
    """A callback that keeps one array."""

    def get_arrays(self):
        return {"count": np.zeros(1)}


def test_restoring_into_a_strategy_that_cannot_be_saved_names_it(tmp_path):
    """Restoring a checkpoint into a strategy without save/restore is this exact TypeError."""
    sl.Trainer(quadratic(), [sl.Checkpoint(tmp_path, every=2), sl.MaxSteps(2)]).run()
    plain = sl.Trainer(Plain(), [sl.MaxSteps(3)])
    assert raised_message(TypeError, plain.restore, tmp_path) == (
        "Plain cannot be checkpointed: implement save(prefix) and restore(prefix)"
    )


def test_two_callbacks_with_arrays_under_one_key_message_names_the_class(tmp_path):
    """The refusal of two array owners under one key suggests keyed() on the callback's class."""
    trainer = sl.Trainer(quadratic(), [Keeper(), Keeper(), sl.Checkpoint(tmp_path, every=1)])
    assert raised_message(ValueError, trainer.run, 1) == (
        "two callbacks would both save arrays under 'Keeper'; give one another key "
        "with keyed(), e.g. Keeper(...).keyed('Keeper_2')"
    )


def test_a_file_of_a_dropped_checkpoint_that_cannot_be_removed_is_left(tmp_path):
    """An entry named like a dropped checkpoint's file that cannot be removed (a folder) is left
    in place; the save goes on and drops the rest."""
    os.mkdir(tmp_path / "ckpt-1.notes")
    saver = sl.Checkpoint(tmp_path, every=1, keep=1)
    assert sl.Trainer(quadratic(), [saver, sl.MaxSteps(3)]).run().steps == 3
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint.json",
        "ckpt-1.notes",
        "ckpt-3.history.npz",
        "ckpt-3.params.npz",
        "ckpt-3.trainer.json",
    ]
    assert saver.latest == 3


def test_state_of_a_fresh_trainer_is_format_1_at_step_0():
    """A Trainer's checkpoint state: format 1, its step, no callback states, no verdicts."""
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(3)])
    assert trainer.state() == {"format": 1, "step": 0, "callbacks": {}, "verdicts": {}}


def test_verdicts_are_keyed_by_the_criterions_place_and_repr(tmp_path):
    """The verdicts met at the saved step are keyed ``callbacks[i]`` (``.parts[j]`` for a part)
    and the criterion's repr, in the state and in the checkpoint's trainer.json."""
    callbacks = [sl.MaxSteps(50), sl.LossBelow(1.0) | sl.MaxSteps(100)]
    trainer = sl.Trainer(
        batch_replay([]), [*callbacks, sl.Checkpoint(tmp_path, every=10)], data=[5.0, 5.0, 0.5]
    )
    result = trainer.run()
    assert result.steps == 3
    state = trainer.state()
    assert sorted(state["verdicts"]) == [
        "callbacks[1] LossBelow(1) | MaxSteps(100)",
        "callbacks[1].parts[0] LossBelow(1)",
    ]
    assert state["verdicts"]["callbacks[1] LossBelow(1) | MaxSteps(100)"] == [
        result.stop_reason,
        result.status,
    ]
    with open(tmp_path / "ckpt-3.trainer.json", encoding="utf-8") as file:
        assert json.load(file) == state


def test_the_verdict_of_a_criterion_in_every_is_saved_and_restored(tmp_path):
    """A run stopped by a criterion wrapped in ``Every`` resumes stopped at once, with the same
    reason, instead of taking another step."""
    data = [5.0, 5.0, 0.5, 0.5, 0.5, 0.5]
    first = sl.Trainer(
        batch_replay([]),
        [sl.Every(sl.LossBelow(1.0), 1), sl.Checkpoint(tmp_path, every=10)],
        data=data,
    )
    stopped = first.run()
    assert stopped.steps == 3
    seen = []
    second = sl.Trainer(batch_replay(seen), [sl.Every(sl.LossBelow(1.0), 1)], data=data)
    assert second.restore(tmp_path) == 3
    resumed = second.run()
    assert (resumed.steps, resumed.stop_reason, resumed.status) == (
        3,
        stopped.stop_reason,
        stopped.status,
    )
    assert seen == []


@pytest.mark.parametrize("wrap", [lambda c: c, lambda c: sl.Every(c, 1)], ids=["plain", "every"])
def test_a_new_trainer_forgets_the_verdict_a_criterion_met_in_another(wrap):
    """A criterion that stopped one Trainer at step 3 does not stop another Trainer that
    reaches step 3 without meeting it."""
    rule = sl.LossBelow(1.0)
    assert sl.Trainer(batch_replay([]), [wrap(rule)], data=[5.0, 5.0, 0.5]).run().steps == 3
    second = sl.Trainer(batch_replay([]), [wrap(rule)], data=[5.0] * 6)
    assert second.run(3).steps == 3
    result = second.run()
    assert (result.steps, result.status) == (6, "exhausted")


def test_a_checkpoint_without_verdicts_restores_with_none(tmp_path):
    """A trainer.json without ``verdicts`` (written before they were saved) restores, criteria
    and all, and the run goes on."""
    sl.Trainer(quadratic(), [sl.MaxSteps(4), sl.Checkpoint(tmp_path, every=2)]).run()
    path = tmp_path / "ckpt-4.trainer.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    del state["verdicts"]
    path.write_text(json.dumps(state), encoding="utf-8")
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(6)])
    assert trainer.restore(tmp_path) == 4
    assert trainer.run().steps == 6


def test_restore_from_nothing_logs_the_directory_and_the_step(tmp_path, caplog):
    """Restoring from a directory without a checkpoint logs exactly that, with the step the
    trainer stays at."""
    trainer = sl.Trainer(quadratic(), [sl.MaxSteps(9)])
    trainer.run(2)
    empty = str(tmp_path / "none")
    with caplog.at_level(logging.INFO, logger="steploop"):
        assert trainer.restore(empty) is None
    assert [r.getMessage() for r in caplog.records if r.name == "steploop"] == [
        f"restore: no checkpoint in {empty!r} yet; nothing restored, starting at step 2"
    ]


def test_a_checkpoint_with_epochs_is_refused_by_a_trainer_without(tmp_path):
    """Saved with epochs, restored without: this exact message."""
    saver = sl.Checkpoint(tmp_path, every=2)
    sl.Trainer(batch_replay([]), [saver], data=[1.0, 2.0], epochs=2).run()
    plain = sl.Trainer(batch_replay([]), [saver], data=[1.0, 2.0])
    prefix = os.path.join(str(tmp_path), "ckpt-4")
    assert raised_message(ValueError, plain.restore, str(tmp_path)) == (
        f"checkpoint {prefix!r} was saved by a Trainer with epochs and this one has none: they "
        "count the data position differently; resume with the same kind of Trainer"
    )


def test_a_checkpoint_without_epochs_is_refused_by_a_trainer_with(tmp_path):
    """Saved without epochs, restored with: this exact message."""
    saver = sl.Checkpoint(tmp_path, every=2)
    sl.Trainer(batch_replay([]), [saver], data=[1.0, 2.0]).run()
    with_epochs = sl.Trainer(batch_replay([]), [saver], data=[1.0, 2.0], epochs=2)
    prefix = os.path.join(str(tmp_path), "ckpt-2")
    assert raised_message(ValueError, with_epochs.restore, str(tmp_path)) == (
        f"checkpoint {prefix!r} was saved by a Trainer without epochs and this one has epochs: "
        "they count the data position differently; resume with the same kind of Trainer"
    )


def test_keeping_the_best_with_mode_max_skips_a_tie(tmp_path):
    """With mode='max' a step only as good as the best saved one is not saved (strictly
    better): of losses 1, 2, 2, 1, 3 steps 1, 2 and 5 are saved."""
    best = sl.Checkpoint(tmp_path, every=1, keep=5, monitor="loss", mode="max")
    sl.Trainer(batch_replay([]), [best], data=[1.0, 2.0, 2.0, 1.0, 3.0]).run()
    assert checkpoint.read_index(str(tmp_path)) == {"latest": 5, "kept": [1, 2, 5]}


def test_a_run_of_no_steps_saves_nothing(tmp_path):
    """A run that ends at step 0 writes no checkpoint."""
    saver = sl.Checkpoint(tmp_path, every=5)
    sl.Trainer(quadratic(), [saver]).run(0)
    assert saver.latest is None
    assert os.listdir(tmp_path) == []


def test_a_run_of_one_step_saves_it_at_its_end(tmp_path):
    """A run that ends after one step, off the schedule, saves that step at its end."""
    saver = sl.Checkpoint(tmp_path, every=5)
    sl.Trainer(quadratic(), [saver]).run(1)
    assert saver.latest == 1
    assert checkpoint.read_index(str(tmp_path)) == {"latest": 1, "kept": [1]}


def test_a_saved_best_of_none_restores_as_none(tmp_path):
    """A monitored Checkpoint that saved nothing yet has best None in another's checkpoint;
    restored, it saves the next scheduled step whatever its value."""
    best = sl.Checkpoint(tmp_path / "best", every=10, monitor="loss")
    plain = sl.Checkpoint(tmp_path / "all", every=1)
    sl.Trainer(quadratic(), [best, plain, sl.MaxSteps(2)]).run()
    fresh = sl.Checkpoint(tmp_path / "fresh", every=1, monitor="loss")
    trainer = sl.Trainer(quadratic(), [fresh, sl.MaxSteps(3)])
    assert trainer.restore(tmp_path / "all") == 2
    assert fresh.get_state() == {"best": None}
    trainer.run()
    assert fresh.latest == 3
