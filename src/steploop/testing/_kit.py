"""``check_strategy``, ``checks`` and ``parametrize_checks``: the named checks run on a
strategy factory.

Each check makes its own fresh strategies (``make_strategy()`` must return a new one, in the
same initial state, at every call) and raises ``CheckFailed`` naming itself and what was
expected and received; any other exception raised inside a check (by the strategy, or by the
Trainer refusing it) becomes that check's ``CheckFailed``. A check that does not apply raises
``CheckSkipped`` with its reason (``check_strategy`` reports it as skipped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from steploop.testing import _contract, _nonfinite, _runs
from steploop.testing._case import Case, NonFiniteCase, Subject
from steploop.testing._outcome import CheckFailed, CheckSkipped

_BODIES: Final[dict[str, Callable[[Case], None]]] = {
    "step_contract": _contract.step_contract,
    "gradient_names": _contract.gradient_names,
    "check_signature": _contract.check_signature,
    "release": _contract.release,
    "survives_callback_error": _runs.survives_callback_error,
    "pieces_equal_one_run": _runs.pieces_equal_one_run,
    "determinism": _runs.determinism,
    "fused_equals_step_by_step": _runs.fused_equals_step_by_step,
    "checkpoint_resume": _runs.checkpoint_resume,
    "nonfinite_skip": _nonfinite.nonfinite_skip,
    "nonfinite_stop": _nonfinite.nonfinite_stop,
    "nonfinite_rollback": _nonfinite.nonfinite_rollback,
}

#: The names of the checks, in the order they run.
CHECKS: Final[tuple[str, ...]] = tuple(_BODIES)


def _runner(name: str, subject: Subject) -> Callable[[], None]:
    def run_check() -> None:
        try:
            _BODIES[name](Case(name, subject))
        except (CheckFailed, CheckSkipped):
            raise
        except Exception as error:
            raise CheckFailed(name, f"raised {type(error).__name__}: {error}") from error

    run_check.__name__ = run_check.__qualname__ = name
    run_check.__doc__ = _BODIES[name].__doc__
    return run_check


def checks(
    make_strategy: Callable[[], Any],
    *,
    data: Any = None,
    steps: int = 6,
    fused: Iterable[int] = (2, 3, 5),
    nonfinite: NonFiniteCase | None = None,
    only: Iterable[str] | None = None,
) -> Iterator[tuple[str, Callable[[], None]]]:
    """An iterator of ``(name, check)``, one per check (those named in ``only``, if given); calling
    ``check()`` runs it: it returns when the strategy passes, raises ``CheckFailed`` when it does
    not and ``CheckSkipped`` when the check does not apply. The arguments are checked now; no
    strategy is made until a check is called.

    ``make_strategy()`` returns a fresh strategy; ``data`` is ``None`` (``step()``), a
    re-iterable of batches or a function returning a fresh iterable of the same batches
    (``step(batch)``; give at least ``steps`` batches); each run is ``steps`` steps long;
    ``fused`` are the ``steps_per_call`` values compared with plain steps; ``nonfinite`` a
    ``NonFiniteCase`` for the ``nonfinite_*`` checks (skipped without one).
    """
    subject = Subject(make_strategy, data, steps, tuple(fused), nonfinite)
    names = CHECKS if only is None else tuple(only)
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise ValueError(f"only names unknown checks {unknown}; the checks are {list(CHECKS)}")
    return iter([(name, _runner(name, subject)) for name in names])


def check_strategy(
    make_strategy: Callable[[], Any],
    *,
    data: Any = None,
    steps: int = 6,
    fused: Iterable[int] = (2, 3, 5),
    nonfinite: NonFiniteCase | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, str]:
    """Run every check (see ``checks`` for the arguments) and return ``{name: "passed"}`` or
    ``{name: "skipped: <reason>"}``; raise ``CheckFailed`` naming every check that failed
    (``CheckFailed.check`` is the first, ``CheckFailed.failures`` all of them).

    >>> from steploop.numpy import GradientDescent
    >>> def make():
    ...     return GradientDescent(lambda x: ((x - 4) ** 2, 2 * (x - 4)), 0.0, learning_rate=0.1)
    >>> report = check_strategy(make)
    >>> report["fused_equals_step_by_step"], report["release"]
    ('passed', 'skipped: GradientDescent is not Releasing (it has no release())')
    """
    report: dict[str, str] = {}
    failures: dict[str, str] = {}
    for name, check in checks(
        make_strategy, data=data, steps=steps, fused=fused, nonfinite=nonfinite, only=only
    ):
        try:
            check()
        except CheckSkipped as skipped:
            report[name] = f"skipped: {skipped.reason}"
        except CheckFailed as failed:
            failures[name] = failed.detail
        else:
            report[name] = "passed"
    if failures:
        first = next(iter(failures))
        raise CheckFailed(first, failures[first], failures)
    return report


def parametrize_checks(make_strategy: Callable[[], Any], **options: Any) -> Any:
    """A ``pytest.mark.parametrize`` over the checks (one test per check, its id the check's
    name) giving the test a ``check`` to call; a check that does not apply is ``pytest.skip``ped.
    ``options`` are those of ``checks``.

    >>> import pytest
    >>> from steploop.numpy import GradientDescent
    >>> mark = parametrize_checks(lambda: GradientDescent(lambda x: (x * x, 2 * x), 1.0,
    ...                                                   learning_rate=0.1))
    >>> [param.id for param in mark.args[1]][:3]
    ['step_contract', 'gradient_names', 'check_signature']
    """
    import pytest

    def skipping(check: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                check()
            except CheckSkipped as skipped:
                pytest.skip(skipped.reason)

        return run

    params = [
        pytest.param(skipping(check), id=name) for name, check in checks(make_strategy, **options)
    ]
    return pytest.mark.parametrize("check", params)
