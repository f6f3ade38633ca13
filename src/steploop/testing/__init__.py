"""``steploop.testing``: a conformance kit for step strategies, in the spirit of scikit-learn's
``check_estimator``.

Give it a function that makes a fresh strategy (the same initial state at every call) and it runs
named checks of the contract of ``steploop.strategy`` and of the Trainer's promises on it: one
step's output, the gradients' names, ``check``, ``release``, a callback's error mid-run, runs in
pieces, determinism, fused calls, checkpoints and the ``on_nonfinite`` policies. Every run is
bounded by a step budget that does not trust the strategy, and a check that does not apply is
reported as skipped, with the reason. The kit imports no framework.

* ``check_strategy(make_strategy, ...)`` runs them all: a report, or ``CheckFailed``;
* ``checks(make_strategy, ...)`` yields ``(name, check)`` to run one by one;
* ``parametrize_checks(make_strategy, ...)`` one pytest test per check.

>>> from steploop.numpy import GradientDescent
>>> make = lambda: GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
>>> sorted(set(check_strategy(make).values()))[0]
'passed'
"""

from steploop.testing._case import NonFiniteCase
from steploop.testing._kit import CHECKS, check_strategy, checks, parametrize_checks
from steploop.testing._outcome import CheckFailed, CheckSkipped

__all__ = [
    "CHECKS",
    "CheckFailed",
    "CheckSkipped",
    "NonFiniteCase",
    "check_strategy",
    "checks",
    "parametrize_checks",
]
