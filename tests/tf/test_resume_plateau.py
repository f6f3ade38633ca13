"""SIGKILL in the middle of a ReduceLROnPlateau plateau or cooldown, or of an EarlyStopping
patience window (val_loss from an Evaluate listed before it, restore_best_weights=True), then a
resume in a new process: TapeStep runs with a Keras SGD end exactly like uninterrupted ones,
plain (``steps_per_call=1``) and fused (``steps_per_call=3``): same steps, status, reason,
variables and history (``lr``, ``val_loss``) bit for bit, the rate reduced after the same steps.
See ``tests.plateau_resume`` for the checks, ``tests.numpy_resume_worker`` for the design."""

import tempfile

import numpy as np
import pytest

from tests import plateau_resume as check
from tests.resume import spawn

PLATEAU = ("plateau", "plateau_fused")
EARLY = ("early", "early_fused")
#: The Keras rate is a float32 variable: SGD(0.1) reads back as float32(0.1); halving is exact.
INITIAL_LR = float(np.float32(0.1))


def worker(model, directory, kill_at=None):
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    return spawn("tests.tf.resume_worker", model, directory, kill_at, env, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted():
    models = (*PLATEAU, *EARLY, "early_norestore")
    return {model: worker(model, tempfile.mkdtemp()) for model in models}


@pytest.mark.parametrize("model", PLATEAU)
def test_plateau_run_reduces_the_rate_at_the_designed_steps(model, uninterrupted):
    check.check_plateau_run(uninterrupted[model], INITIAL_LR)
    assert uninterrupted[model]["history"] == uninterrupted["plateau"]["history"]


@pytest.mark.parametrize("kill_at", sorted(check.PLATEAU_KILLS))
@pytest.mark.parametrize("model", PLATEAU)
def test_plateau_killed_mid_window_resumes_exactly(model, kill_at, uninterrupted):
    check.check_plateau_resume(worker, model, kill_at, uninterrupted[model], INITIAL_LR)


@pytest.mark.parametrize("model", EARLY)
def test_early_stopping_run_stops_and_restores_as_designed(model, uninterrupted):
    check.check_early_run(uninterrupted[model], uninterrupted["early_norestore"])


@pytest.mark.parametrize("kill_at", check.EARLY_KILLS)
@pytest.mark.parametrize("model", EARLY)
def test_early_stopping_killed_mid_patience_resumes_exactly(model, kill_at, uninterrupted):
    check.check_early_resume(worker, model, kill_at, uninterrupted[model])


@pytest.mark.parametrize("model", EARLY)
def test_early_stopping_resumed_after_its_best_step_restores_the_best_weights(
    model, uninterrupted
):
    check.check_early_resume_after_the_best_step(
        worker, model, uninterrupted[model], uninterrupted["early_norestore"]
    )


def test_a_checkpoint_without_the_saved_copy_restores_and_says_the_weights_were_not(
    uninterrupted,
):
    """An older checkpoint (no arrays file) resumed after the best step: as before the copy
    was saved, a warning, a reason saying so, the stop step's variables."""
    check.check_early_resume_without_saved_copy(
        worker, "early", uninterrupted["early"], uninterrupted["early_norestore"]
    )
