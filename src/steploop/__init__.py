"""steploop: declarative optimisation loops.

A ``Trainer`` runs a ``StepStrategy`` (one update step) and fires ``Callback`` hooks around each
step: stopping criteria, loggers and the release of per-step resources. The core imports no
framework; ``steploop.tf`` holds the TensorFlow strategies and ``steploop.numpy`` a pure-NumPy one.

>>> import steploop as sl
>>> from steploop.numpy import GradientDescent
>>> gd = GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
>>> sl.Trainer(gd, callbacks=[sl.LossBelow(1e-12) | sl.MaxSteps(1000)]).run().status
'converged'
"""

from steploop.batching import Batches, batches
from steploop.callbacks import (
    AllOf,
    AnyOf,
    Callback,
    CallbackList,
    CSVLogger,
    EarlyStopping,
    Evaluate,
    Every,
    GradientNormBelow,
    LossBelow,
    LossChangeBelow,
    MaxSteps,
    PrintLogger,
    ProgressBar,
    ReduceLROnPlateau,
    Release,
    StopOnNaN,
    StoppingCriterion,
    TimeLimit,
)
from steploop.callbacks.learning_rate import LearningRateScheduler
from steploop.checkpoint import Checkpoint
from steploop.history import History
from steploop.records import STATUSES, RunResult, StepRecord, Stop
from steploop.schedule import Schedule, at, every
from steploop.strategy import StepOutput, StepStrategy
from steploop.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "STATUSES",
    "Schedule",
    "at",
    "every",
    "AllOf",
    "Batches",
    "batches",
    "AnyOf",
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "CallbackList",
    "EarlyStopping",
    "Evaluate",
    "Every",
    "GradientNormBelow",
    "History",
    "LearningRateScheduler",
    "LossBelow",
    "LossChangeBelow",
    "MaxSteps",
    "PrintLogger",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Release",
    "RunResult",
    "StepOutput",
    "StepRecord",
    "StepStrategy",
    "Stop",
    "StopOnNaN",
    "StoppingCriterion",
    "TimeLimit",
    "Trainer",
]
