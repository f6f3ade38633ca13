"""A NumPy training run for the plateau/patience resume tests, run in a subprocess (see
``tests.resume``): it restores from ``--dir`` if it can, saves checkpoints there, may SIGKILL
itself at ``--kill-at``, and writes what it ended with.

python -m tests.numpy_resume_worker --model MODEL --dir D --out F [--kill-at K]

Two problems, shared with ``tests.tf.resume_worker`` (the constants below are its too):

* ``plateau``: the loss is a scripted number (``PLATEAU_SCRIPT``, one a batch) plus a small
  quadratic ``0.01 * sum((w - TARGET)**2)`` that moves the variables (by at most 0.25 in all, less
  than ``min_delta=0.5``): the script alone decides which steps improve. ``ReduceLROnPlateau(
  factor=0.5, patience=3, cooldown=3, min_delta=0.5)`` halves the rate after steps 6, 12 and 18
  (``PLATEAU_LR``); checkpoints every 4 steps (4: mid-plateau; 8: mid-cooldown; 12: the step of
  a reduction; 16: mid-plateau). The data (20 batches) runs out at step 20.
* ``early``: gradient descent on ``mean((w - TRAIN)**2)`` from 0; ``Evaluate`` on
  ``mean((w - VAL)**2)`` every 2 steps; ``EarlyStopping(monitor="val_loss", patience=4,
  restore_best_weights=True)``: the validation loss is best at step ``EARLY_BEST`` (the
  variables pass VAL on their way to TRAIN: step 18) and the run stops 4 evaluations later
  (step 26). Checkpoints every 8 steps: 16 before the best step, 24 after it (mid-patience).

``*_fused`` models run ``steps_per_call=3``; ``early_norestore`` is ``early`` without
``restore_best_weights`` (its variables are those of the stop step).
"""

import numpy as np

import steploop as sl
from steploop.numpy import GradientDescent
from tests.resume import worker_main

#: The scripted part of the plateau loss, one value a step (step 1 first).
PLATEAU_SCRIPT = [10.0, 9.0, 8.0] + [8.0] * 9 + [7.0] * 8
#: The plateau model's start and target, and its ReduceLROnPlateau.
PLATEAU_START, PLATEAU_TARGET = [0.0, 1.0], [4.0, 4.0]
PLATEAU_ARGS = {"factor": 0.5, "patience": 3, "cooldown": 3, "min_delta": 0.5}
#: The rate each step used (step 1 first), as multiples of the initial rate.
PLATEAU_LR = [1.0] * 6 + [0.5] * 6 + [0.25] * 6 + [0.125] * 2
#: The steps after which the rate was reduced (the new rate holds from the next step).
PLATEAU_REDUCED_AFTER = [6, 12, 18]
PLATEAU_EVERY = 4

#: The early-stopping model's training and validation targets, rate, schedule and patience.
TRAIN, VAL, EARLY_LR = [4.0, -3.0], [2.2, -1.5], 0.04
EARLY_EVAL_EVERY, EARLY_PATIENCE, EARLY_EVERY, EARLY_BATCHES = 2, 4, 8, 40
#: The evaluated step with the lowest validation loss, and the step the run stops at.
EARLY_BEST = 18
EARLY_STOP = EARLY_BEST + EARLY_EVAL_EVERY * EARLY_PATIENCE
FUSED = 3


def plateau(per_call=1):
    def loss_and_grad(w, scripted):
        return scripted + 0.01 * np.sum((w - target) ** 2), 0.02 * (w - target)

    target = np.array(PLATEAU_TARGET)
    step = GradientDescent(loss_and_grad, np.array(PLATEAU_START), learning_rate=0.1)
    criteria = [sl.ReduceLROnPlateau(**PLATEAU_ARGS)]
    return step, criteria, list(PLATEAU_SCRIPT), per_call, PLATEAU_EVERY


def early(per_call=1, restore=True):
    def loss_and_grad(w, target):
        return np.mean((w - target) ** 2), (w - target)  # the mean of 2: gradient w - target

    step = GradientDescent(loss_and_grad, np.zeros(2), learning_rate=EARLY_LR)
    criteria = [
        sl.Evaluate([np.array(VAL)], every=EARLY_EVAL_EVERY),
        sl.EarlyStopping(EARLY_PATIENCE, monitor="val_loss", restore_best_weights=restore),
    ]
    data = [np.array(TRAIN)] * EARLY_BATCHES
    return step, criteria, data, per_call, EARLY_EVERY


MODELS = {
    "plateau": plateau,
    "plateau_fused": lambda: plateau(FUSED),
    "early": early,
    "early_fused": lambda: early(FUSED),
    "early_norestore": lambda: early(restore=False),
}


if __name__ == "__main__":
    worker_main(MODELS)
