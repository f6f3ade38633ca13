"""Callbacks: the hooks, stopping criteria, loggers and the built-in release hook."""

from steploop.callbacks.base import Callback, CallbackList
from steploop.callbacks.cleanup import Release
from steploop.callbacks.evaluate import Evaluate
from steploop.callbacks.every import Every
from steploop.callbacks.learning_rate import LearningRateScheduler
from steploop.callbacks.loggers import CSVLogger, PrintLogger
from steploop.callbacks.plateau import ReduceLROnPlateau
from steploop.callbacks.progress import ProgressBar
from steploop.callbacks.stopping import (
    AllOf,
    AnyOf,
    EarlyStopping,
    GradientNormBelow,
    LossBelow,
    LossChangeBelow,
    MaxSteps,
    StopOnNaN,
    StoppingCriterion,
    TimeLimit,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "Evaluate",
    "Every",
    "GradientNormBelow",
    "LearningRateScheduler",
    "LossBelow",
    "LossChangeBelow",
    "MaxSteps",
    "PrintLogger",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Release",
    "StopOnNaN",
    "StoppingCriterion",
    "TimeLimit",
]
