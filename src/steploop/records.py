"""Values that cross the Trainer's boundary: one ``StepRecord`` per step, one ``RunResult`` per run.

Both are frozen attrs records holding Python and NumPy values. Records built at every step or run
(these, ``Stop``, ``StepOutput``, ``FusedResult``, ``Quantities``) have no ``__slots__``: a frozen
attrs class with a ``__dict__`` is built ~25-40% faster than a slotted one. A ``StepRecord``
converts the framework's gradients to NumPy only when someone reads them, so a step whose callbacks
never look at gradients copies none to the host. Variable values are read on demand too, and only
while the step is current (during its callbacks or the body of an ``iterate()`` loop): a record
kept for later still has its loss, gradients and values, but not the variables of a step long gone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import attrs
import numpy as np

if TYPE_CHECKING:
    from steploop.history import History

#: The columns every history row has of its own: no reported value may take these names.
OWN_COLUMNS: Final = ("step", "loss", "epoch")


def check_value_names(where: str, values: Mapping[str, Any]) -> None:
    """Refuse a value named after a column the history keeps itself (it would overwrite it).

    >>> check_value_names("Demo.step", {"acc": 0.5})
    >>> try:
    ...     check_value_names("Demo.step", {"loss": 0.5})
    ... except ValueError as error:
    ...     print(str(error)[:56])
    Demo.step: a value is named 'loss', a column the history
    """
    for name in OWN_COLUMNS:
        if name in values:
            raise ValueError(
                f"{where}: a value is named {name!r}, a column the history keeps itself; rename "
                "it (values may not be named 'step', 'loss' or 'epoch')"
            )


#: The words ``RunResult.status`` can take. ``error`` is only seen by ``on_run_end`` hooks and
#: ``Trainer.result`` when a run ended in an exception (``run`` itself re-raises it).
STATUSES: Final = ("converged", "budget", "exhausted", "stopped", "nonfinite", "error")


class Lazy:
    """A value computed on first access, optionally expiring (internal helper).

    >>> calls = []
    >>> lazy = Lazy(lambda: calls.append(1) or {"x": 1})
    >>> lazy.get(), lazy.get(), len(calls)
    ({'x': 1}, {'x': 1}, 1)
    """

    __slots__ = ("_compute", "_expired_message", "_value")

    _UNSET: Final = object()

    def __init__(self, compute: Callable[[], Any] | None, value: Any = _UNSET) -> None:
        self._compute = compute
        self._value = value
        self._expired_message: str | Callable[[], str] | None = None

    def get(self) -> Any:
        if self._value is Lazy._UNSET:
            if self._expired_message is not None:
                message = self._expired_message
                raise RuntimeError(message if isinstance(message, str) else message())
            assert self._compute is not None
            self._value = self._compute()
            self._compute = None
        return self._value

    def expire(self, message: str | Callable[[], str]) -> None:
        """Forget how to compute the value if it was never read; later reads raise ``message``
        (a string, or a function making it when needed)."""
        if self._value is Lazy._UNSET and self._expired_message is None:
            self._compute = None
            self._expired_message = message


@attrs.frozen(slots=False)
class StepRecord:
    """What one step produced, as plain Python and NumPy values.

    ``step`` counts from 1; ``loss`` is the loss the step's gradients were taken at (before its
    update). ``gradients`` maps variable names to NumPy arrays (empty when the strategy reports
    none); ``target_gradients`` maps each extra target to such a mapping; ``values`` holds other
    named quantities the strategy reported; ``variables`` maps variable names to their values after
    the step's update. ``epoch`` is the step's epoch (counted from 1) in a
    ``Trainer(..., epochs=n)`` run, ``None`` otherwise.

    >>> record = StepRecord(step=1, loss=16.0)
    >>> record.step, record.loss, record.gradients
    (1, 16.0, {})
    """

    step: int
    loss: float
    values: Mapping[str, Any] = attrs.field(factory=dict)
    epoch: int | None = None
    # how to read each on demand; None: there is none (an empty dict, made when read)
    _gradients: Lazy | None = attrs.field(
        default=None, alias="gradients_lazy", repr=False, eq=False
    )
    _target_gradients: Lazy | None = attrs.field(
        default=None, alias="target_gradients_lazy", repr=False, eq=False
    )
    _variables: Lazy | None = attrs.field(
        default=None, alias="variables_lazy", repr=False, eq=False
    )

    @property
    def gradients(self) -> dict[str, np.ndarray]:
        """Gradients of the loss, keyed by variable name (converted to NumPy on first access)."""
        return {} if self._gradients is None else self._gradients.get()

    @property
    def target_gradients(self) -> dict[str, dict[str, np.ndarray]]:
        """``{target: {variable: gradient}}`` for every extra target the strategy differentiated."""
        return {} if self._target_gradients is None else self._target_gradients.get()

    @property
    def variables(self) -> dict[str, np.ndarray]:
        """Variable values after this step's update; readable while the step is current."""
        return {} if self._variables is None else self._variables.get()


_new = object.__new__


def step_record(
    step: int,
    loss: float,
    values: Mapping[str, Any],
    epoch: int | None,
    gradients: Lazy | None,
    target_gradients: Lazy | None,
    variables: Lazy | None,
) -> StepRecord:
    """``StepRecord(step, loss, values, epoch, gradients_lazy=gradients, ...)``, built without
    ``__init__`` (a plain step makes one a step; this costs ~60% of the call; attrs' own
    validation is not needed for what the Trainer builds). ``tests/test_records.py`` holds it
    equal to the constructor, field for field.

    >>> step_record(3, 0.5, {}, None, None, None, None) == StepRecord(3, 0.5)
    True
    """
    record = _new(StepRecord)
    held = record.__dict__
    held["step"] = step
    held["loss"] = loss
    held["values"] = values
    held["epoch"] = epoch
    held["_gradients"] = gradients
    held["_target_gradients"] = target_gradients
    held["_variables"] = variables
    return record


@attrs.frozen(slots=False)
class RunResult:
    """The outcome of one ``Trainer.run`` call.

    ``steps`` is the total number of steps the trainer has done (over every run); ``loss`` the
    last step's loss (also after a restore, from the history; ``nan`` before any step);
    ``status`` one word of ``STATUSES``; ``stop_reason`` a sentence saying what ended the run;
    ``converged`` is true exactly when a convergence criterion (not a budget, exhausted data,
    the user or an error) ended it;
    ``history`` is a read-only snapshot of the trainer's history at the end of the call;
    ``elapsed`` is this call's wall time in seconds.

    >>> from steploop.history import History
    >>> result = RunResult(steps=3, loss=0.5, status="budget",
    ...                    stop_reason="run(max_steps=3) did its 3 steps",
    ...                    history=History(), elapsed=0.01)
    >>> result.converged
    False
    """

    steps: int
    loss: float
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    stop_reason: str
    history: History
    elapsed: float

    @property
    def converged(self) -> bool:
        return self.status == "converged"

    @classmethod
    def of(
        cls, stop: Stop, steps: int, last: StepRecord | None, history: History, started: float
    ) -> RunResult:
        """The result of a run that ``stop`` ended after ``steps`` steps, the last one ``last``,
        begun at ``time.perf_counter()`` = ``started``."""
        return cls(
            steps=steps,
            loss=_last_loss(last, history),
            status=stop.status,
            stop_reason=stop.reason,
            history=history.snapshot(),
            elapsed=time.perf_counter() - started,
        )


def _last_loss(last: StepRecord | None, history: History) -> float:
    """The loss of the trainer's last step: its record's, or the history's last row (a trainer
    restored from a checkpoint has the rows but no record yet); ``nan`` before any step."""
    if last is not None:
        return last.loss
    return float(history["loss"][-1]) if history.rows else math.nan


@attrs.frozen(slots=False)
class Stop:
    """A request to end the run: a readable ``reason`` and the ``status`` word it implies.

    >>> Stop("LossBelow(1e-12): loss 9e-13 < 1e-12 at step 70", "converged").status
    'converged'
    """

    reason: str
    status: str = attrs.field(default="stopped", validator=attrs.validators.in_(STATUSES))

    def late(self, asked_after: int, ended_after: int) -> Stop:
        """This stop, saying so when it took effect after a later step than it was asked at (a
        host check inside a fused call), so the reason names the step that ended the run.

        >>> Stop("x", "converged").late(3, 5).reason
        'x (asked after step 3; took effect after step 5, the last step of its fused call)'
        """
        if asked_after == ended_after:
            return self
        return Stop(
            f"{self.reason} (asked after step {asked_after}; took effect after step "
            f"{ended_after}, the last step of its fused call)",
            self.status,
        )

    def during_call(self, first: int, last: int) -> Stop:
        """This stop, asked while the fused call of steps ``first`` to ``last`` ran, saying so.

        >>> Stop("x").during_call(3, 5).reason
        'x (asked during the fused call of steps 3-5; took effect after step 5, its last step)'
        """
        return Stop(
            f"{self.reason} (asked during the fused call of steps {first}-{last}; took effect "
            f"after step {last}, its last step)",
            self.status,
        )
