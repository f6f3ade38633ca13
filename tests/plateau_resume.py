"""Checks shared by the SIGKILL-and-resume tests of windowed callbacks, NumPy
(``tests/test_resume_plateau.py``) and TensorFlow (``tests/tf/test_resume_plateau.py``): a run
killed in the middle of a ``ReduceLROnPlateau`` plateau or cooldown, or of an ``EarlyStopping``
patience window, and resumed in a new process ends like a run never interrupted.

The models are those of ``tests.numpy_resume_worker`` (whose constants say at which steps things
happen); ``worker(model, directory, kill_at=None)`` runs one in a subprocess (``tests.resume``).
"""

import json
import os
import tempfile

import numpy as np

from tests import numpy_resume_worker as design

#: What a resumed run must end with exactly like the uninterrupted one.
COMPARED = ("steps", "status", "reason", "variables", "history")


def column(result, name):
    """History column ``name`` of a worker's result, as float64."""
    return np.frombuffer(bytes.fromhex(result["history"][name]), np.float64)


def checkpointed(directory):
    """``(latest step, its callbacks' saved state)`` of a killed run's checkpoint directory."""
    folder = os.path.join(directory, "ckpt")
    with open(os.path.join(folder, "checkpoint.json"), encoding="utf-8") as file:
        latest = json.load(file)["latest"]
    with open(os.path.join(folder, f"ckpt-{latest}.trainer.json"), encoding="utf-8") as file:
        return latest, json.load(file)["callbacks"]


def reductions(lr):
    """The steps after which the rate went down (the next step used a lower one)."""
    return [step for step in range(1, len(lr)) if lr[step] < lr[step - 1]]


def kill_and_resume(worker, model, kill_at):
    """SIGKILL ``model`` at the end of step ``kill_at``; return (checkpoint step, its callbacks'
    state, the result of a new process that restored it and finished)."""
    directory = tempfile.mkdtemp()
    assert worker(model, directory, kill_at=kill_at) is None
    latest, state = checkpointed(directory)
    return latest, state, worker(model, directory)


def assert_same_end(resumed, reference):
    assert reference["variables"]
    for key in COMPARED:
        assert resumed[key] == reference[key], key


# -- ReduceLROnPlateau ----------------------------------------------------------------------------

#: Kill step -> (the checkpoint the resumed run starts from, the plateau state saved there): in a
#: plateau (wait > 0) or a cooldown (cooldown > 0), never at a fresh start of the window.
PLATEAU_KILLS = {
    6: (4, {"wait": 1, "cooldown": 0}),  # killed at the reduction step: resumed must redo it
    9: (8, {"wait": 0, "cooldown": 1}),  # mid-cooldown
    14: (12, {"wait": 0, "cooldown": 3}),  # the checkpoint of a reduction step; cooldown after
    17: (16, {"wait": 1, "cooldown": 0}),  # mid-plateau, two checks before the last reduction
}


def check_plateau_run(result, initial_lr):
    """The uninterrupted run as designed: 20 steps, the data runs out, the rate halves after
    steps 6, 12 and 18 exactly (each step's rate in column ``lr``)."""
    assert (result["restored"], result["steps"], result["status"]) == (None, 20, "exhausted")
    lr = column(result, "lr")
    assert lr.tolist() == [initial_lr * m for m in design.PLATEAU_LR]
    assert reductions(lr) == design.PLATEAU_REDUCED_AFTER


def check_plateau_resume(worker, model, kill_at, reference, initial_lr):
    checkpoint, window = PLATEAU_KILLS[kill_at]
    latest, state, resumed = kill_and_resume(worker, model, kill_at)
    assert latest == checkpoint
    saved = state["ReduceLROnPlateau"]
    assert {key: saved[key] for key in window} == window  # really inside the window
    assert resumed["restored"] == checkpoint
    assert_same_end(resumed, reference)
    lr = column(resumed, "lr")
    assert reductions(lr) == design.PLATEAU_REDUCED_AFTER  # not shifted by the resume
    assert lr.tolist() == [initial_lr * m for m in design.PLATEAU_LR]
    assert resumed["history"]["lr"] == reference["history"]["lr"]


# -- EarlyStopping(monitor="val_loss", restore_best_weights=True) --------------------------------

BEST, STOP = design.EARLY_BEST, design.EARLY_STOP


def check_early_run(result, norestore):
    """The uninterrupted run as designed: val_loss (evaluated every 2 steps, nan between) is
    lowest at step 18; 4 evaluations later, at step 26, the run stops and the variables are set
    back to those of step 18 (so they differ from the stop step's, the norestore run's)."""
    assert (result["restored"], result["steps"], result["status"]) == (None, STOP, "converged")
    assert result["reason"].startswith("EarlyStopping(patience=4")
    assert result["reason"].endswith(
        f" at step {BEST}, stopped at step {STOP}, best weights restored)"
    )
    val = column(result, "val_loss")
    evaluated = np.arange(1, STOP + 1) % design.EARLY_EVAL_EVERY == 0
    assert np.isnan(val[~evaluated]).all() and np.isfinite(val[evaluated]).all()
    assert int(np.nanargmin(val)) + 1 == BEST
    assert (norestore["steps"], norestore["history"]) == (STOP, result["history"])
    assert norestore["variables"] != result["variables"]


#: Kill steps in the patience window (after the best step 18, before the stop at 26) whose last
#: checkpoint (16) predates the best step: the resumed run sees step 18 again and copies it.
EARLY_KILLS = (21, 24)


def check_early_resume(worker, model, kill_at, reference):
    latest, state, resumed = kill_and_resume(worker, model, kill_at)
    assert latest == 16 < BEST < kill_at < STOP
    assert state["EarlyStopping"]["state"][1:3] == [16.0, 0.0]  # best step 16, no wait yet
    assert resumed["restored"] == 16
    assert_same_end(resumed, reference)  # the stop step, reason and restored best weights
    assert resumed["steps"] == STOP
    assert "no copy of the variables" not in resumed["stderr"]


def check_early_resume_after_the_best_step(worker, model, reference, norestore):
    """Killed at 25, resumed from the checkpoint of step 24, in the patience window after the
    best step (18): the checkpoint saved the copy of step 18's variables with it
    (``ckpt-24.arrays.npz``), so the resumed run stops at 26 with the same history and reason,
    "best weights restored", and the variables of step 18 bit for bit, as the uninterrupted
    run (not those of step 26, the run without restore_best_weights)."""
    latest, state, resumed = kill_and_resume(worker, model, 25)
    assert latest == 24
    assert state["EarlyStopping"]["state"][1:3] == [float(BEST), 3.0]  # 3 evaluations waited
    assert resumed["restored"] == 24
    assert_same_end(resumed, reference)
    assert resumed["reason"].endswith(f"stopped at step {STOP}, best weights restored)")
    assert "no copy of the variables" not in resumed["stderr"]
    assert resumed["variables"] != norestore["variables"]
    return resumed


def check_early_resume_without_saved_copy(worker, model, reference, norestore):
    """As above, but the checkpoint of step 24 is of the older format, without the arrays file
    (removed here): it still restores; the run stops at 26 with the same history, logs a
    warning, says in its reason that the best weights were not restored, and keeps the variables
    of step 26, those of the run without restore_best_weights, bit for bit."""
    directory = tempfile.mkdtemp()
    assert worker(model, directory, kill_at=25) is None
    arrays = os.path.join(directory, "ckpt", "ckpt-24.arrays.npz")
    assert os.path.exists(arrays)
    os.remove(arrays)
    resumed = worker(model, directory)
    assert resumed["restored"] == 24
    for key in ("steps", "status", "history"):
        assert resumed[key] == reference[key], key
    missing = f", not restored: no copy of step {BEST}'s variables after the resume"
    assert resumed["reason"] == reference["reason"].replace(", best weights restored", missing)
    assert f"no copy of the variables of the best step {BEST}" in resumed["stderr"]
    assert f"the variables stay those of step {STOP}" in resumed["stderr"]
    assert resumed["variables"] == norestore["variables"] != reference["variables"]
