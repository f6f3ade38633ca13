"""Checkpoint(monitor=...): only improving steps are saved, keep bounds them, restore loads the
best, a resumed run saves no worse step, fused calls save what plain steps save."""

import glob
import json
import math
import os
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import steploop as sl
from steploop import checkpoint
from steploop.numpy import GradientDescent

#: the loss of steps 1..8 (the batch itself); steps 1, 2, 4 and 7 improve on the best so far
LOSSES = [5.0, 3.0, 4.0, 2.0, 2.0, 6.0, 1.0, 1.5]


def walker():
    """Loss = the batch; x goes down by 1 a step, so x = -step names the step it is at."""
    return GradientDescent(lambda x, b: (x * 0.0 + b, x * 0.0 + 1.0), 0.0, learning_rate=1.0)


def on_disk(folder):
    """The steps of the checkpoint files in ``folder``, sorted."""
    names = glob.glob(os.path.join(folder, "ckpt-*.trainer.json"))
    return sorted(int(os.path.basename(n).split(".")[0][5:]) for n in names)


def kept(folder):
    index = checkpoint.read_index(folder)
    return None if index is None else index["kept"]


def validation(strategy, by_step):
    """An Evaluate fn: val_loss ``by_step[step]`` at the step ``strategy`` is at."""
    return lambda: {"loss": by_step[round(-float(strategy.params["x"]))]}


def run(folder, losses=LOSSES, k=1, every=1, keep=10, callbacks=(), **options):
    saver = sl.Checkpoint(folder, every=every, keep=keep, monitor="loss", **options)
    trainer = sl.Trainer(walker(), [*callbacks, saver], data=list(losses), steps_per_call=k)
    trainer.run()
    return trainer, saver


@pytest.mark.parametrize("k", [1, 4])
def test_only_the_improving_steps_are_saved(tmp_path, k):
    """Strictly better only (step 5 ties step 4), nothing new at the run's end (step 8)."""
    _, saver = run(str(tmp_path), k=k)
    assert kept(saver.directory) == on_disk(saver.directory) == [1, 2, 4, 7]
    assert saver.latest == 7
    assert saver.get_state() == {"best": 1.0}


def test_max_mode_and_the_schedule(tmp_path):
    """mode='max' saves the rising steps; every=2 checks steps 2, 4, 6, 8 only."""
    _, saver = run(str(tmp_path / "max"), mode="max")
    assert on_disk(saver.directory) == [1, 6]
    _, saver = run(str(tmp_path / "every2"), every=2)  # losses 3, 2, 6, 1.5 are checked
    assert on_disk(saver.directory) == [2, 4, 8]


def test_keep_bounds_them_to_the_best_ones(tmp_path):
    _, saver = run(str(tmp_path), keep=2)
    assert kept(saver.directory) == on_disk(saver.directory) == [4, 7]


def test_auto_mode_and_repr(tmp_path):
    """'auto' resolves from the name, as EarlyStopping's; a plain Checkpoint keeps no state."""
    best = sl.Checkpoint(str(tmp_path), every=1, monitor="val_accuracy")
    assert best.mode == "max" and best.has_state
    assert repr(best).endswith("every=1, keep=3, monitor='val_accuracy', mode='max')")
    plain = sl.Checkpoint(str(tmp_path), every=1)
    assert not plain.has_state and repr(plain).endswith("every=1, keep=3)")


#: val_loss at the steps an Evaluate(every=2) runs: steps 2, 4 and 6 improve, 8 does not
VAL = {2: 4.0, 4: 3.0, 6: 1.0, 8: 2.0, 10: 0.5}


def evaluated(folder, steps=8, k=1, checkpoint_first=True, keep=10):
    strategy = walker()
    evaluate = sl.Evaluate(fn=validation(strategy, VAL), every=2)
    saver = sl.Checkpoint(folder, every=1, keep=keep, monitor="val_loss")
    callbacks = [saver, evaluate] if checkpoint_first else [evaluate, saver]
    trainer = sl.Trainer(strategy, callbacks, data=[9.0] * 10, steps_per_call=k)
    return trainer, saver, strategy, steps


def params_bytes(folder, step):
    with np.load(os.path.join(folder, f"ckpt-{step}.params.npz")) as saved:
        return {name: saved[name].tobytes() for name in saved.files}


@pytest.mark.parametrize("first", [True, False])
def test_a_published_val_loss_is_read_wherever_the_evaluate_is_listed(tmp_path, first):
    """The Checkpoint fires last, so one listed before its Evaluate is not refused; it saves
    the improving evaluated steps only."""
    trainer, saver, _, steps = evaluated(str(tmp_path), checkpoint_first=first)
    trainer.run(max_steps=steps)
    assert kept(saver.directory) == on_disk(saver.directory) == [2, 4, 6]


@pytest.mark.parametrize("k", [3, 4, 8])
def test_fused_calls_save_the_same_steps_and_variables(tmp_path, k):
    """steps_per_call=k saves the steps and variables of plain steps; calls end only at the
    steps the Evaluate runs at, not at every step of the Checkpoint's own every=1."""
    plain, plain_saver, _, steps = evaluated(str(tmp_path / "plain"))
    plain.run(max_steps=steps)
    fused, fused_saver, _, _ = evaluated(str(tmp_path / "fused"), k=k)
    fused.run(max_steps=steps)
    assert on_disk(fused_saver.directory) == on_disk(plain_saver.directory) == [2, 4, 6]
    for step in [2, 4, 6]:
        want = {"x": np.float64(-step).tobytes()}
        assert params_bytes(fused_saver.directory, step) == want
        assert params_bytes(plain_saver.directory, step) == want
    assert fused.history == plain.history
    assert fused_saver.next_sync_step(0, 8) == 2 and fused_saver.next_sync_step(2, 1) is None


def test_restore_loads_the_best_step_and_a_resumed_run_saves_no_worse_step(tmp_path):
    """Restore gives step 6's variables bit for bit (not step 8's); its best (1.0) came back
    with it, so step 8 (2.0) is not saved again, and step 10 (0.5) is."""
    folder = str(tmp_path)
    first, _, _, steps = evaluated(folder)
    first.run(max_steps=steps)
    reference = sl.Trainer(walker(), data=[9.0] * 10)
    reference.run(max_steps=6)

    second, saver, strategy, _ = evaluated(folder)
    assert second.restore(folder) == 6
    assert strategy.params["x"].tobytes() == reference.strategy.params["x"].tobytes()
    assert saver.get_state() == {"best": 1.0}
    with open(os.path.join(folder, "ckpt-6.trainer.json")) as file:
        assert json.load(file)["callbacks"]["Checkpoint"] == {"best": 1.0}
    second.run(max_steps=2)  # steps 7, 8: val_loss 2.0 at step 8 does not beat 1.0
    assert on_disk(folder) == [2, 4, 6]
    second.run(max_steps=2)  # steps 9, 10: 0.5 does
    assert kept(folder) == on_disk(folder) == [2, 4, 6, 10]


def test_an_unknown_monitor_fails_at_the_first_step_it_should_exist(tmp_path):
    """Named, at step 1 although the schedule's first step is 5; a published name at the
    publisher's first step."""
    saver = sl.Checkpoint(str(tmp_path / "a"), every=5, monitor="acc")
    trainer = sl.Trainer(walker(), [saver], data=LOSSES)
    with pytest.raises(ValueError, match="Checkpoint monitor='acc' is not among"):
        trainer.run()
    assert trainer.step == 1 and kept(saver.directory) is None
    strategy = walker()
    evaluate = sl.Evaluate(fn=validation(strategy, VAL), every=2)
    saver = sl.Checkpoint(str(tmp_path / "b"), every=1, monitor="val_acc")
    trainer = sl.Trainer(strategy, [evaluate, saver], data=LOSSES)
    with pytest.raises(ValueError, match="'val_acc'"):
        trainer.run()
    assert trainer.step == 2


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"monitor": ""}, "Checkpoint monitor must be None or a non-empty str, got ''"),
        ({"monitor": 3}, "Checkpoint monitor must be None or a non-empty str, got 3"),
        ({"monitor": "loss", "mode": "best"}, "Checkpoint mode must be .*got 'best'"),
        ({"mode": "max"}, r"Checkpoint mode must be .*with a monitor.*got 'max'"),
    ],
)
def test_bad_arguments_are_named(tmp_path, options, match):
    with pytest.raises(ValueError, match=match):
        sl.Checkpoint(str(tmp_path), every=1, **options)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from([1.0, 2.0, 3.0, math.nan]), min_size=1, max_size=12),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from([1, 3, 5]),
)
def test_saved_steps_are_the_improving_checked_ones(losses, every, evaluate_every, k):
    """Any val_loss script, schedules and steps_per_call: the saved steps are those, among the
    steps both schedules share, whose value strictly beats every earlier checked one (nan
    never does), as a hand loop finds them."""
    by_step = dict(enumerate(losses, start=1))
    folder = tempfile.mkdtemp()
    strategy = walker()
    evaluate = sl.Evaluate(fn=validation(strategy, by_step), every=evaluate_every)
    saver = sl.Checkpoint(folder, every=every, keep=99, monitor="val_loss")
    data = [0.0] * len(losses)
    sl.Trainer(strategy, [saver, evaluate], data=data, steps_per_call=k).run()
    expected, best = [], math.inf
    for step, value in by_step.items():
        if step % every == 0 and step % evaluate_every == 0 and value < best:
            expected.append(step)
            best = value
    assert on_disk(folder) == (kept(folder) or []) == expected
    for step in expected:
        assert params_bytes(folder, step) == {"x": np.float64(-step).tobytes()}
