"""What a user's loss function may return, and how a step's results become a ``StepOutput``.

Written once for every framework; a strategy supplies only how its arrays are made and read
(``Arrays``), and ``LossContract.checked`` does the rest.

The loss contract
-----------------
A loss returns its scalar loss, or a dict with

* ``"loss"``: the scalar that drives the update (required);
* ``"values"`` (optional): a dict of named numbers to report in ``StepRecord.values`` and the
  history, not to differentiate (accuracy, say);
* any other ``str`` key: a further *target*, whose gradients a strategy that can compute them
  reports in ``StepOutput.target_gradients``. A strategy that cannot refuses targets with a hint
  (``LossContract.targets``), and one that needs them may require the dict (``dict_only``).

The loss is called with the batch when the Trainer has data, and without it otherwise
(``check_arity``; a strategy's ``check`` and the arguments of its steps: ``CallsLoss``). A
variable whose gradient is ``None`` is named (``check_gradients``).

>>> contract = LossContract("Demo", "loss")
>>> parts = contract.split({"loss": 1.0, "values": {"acc": 0.5}})
>>> parts.loss, dict(parts.values), parts.targets
(1.0, {'acc': 0.5}, {})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from steploop import _validate, checks
from steploop.records import check_value_names
from steploop.strategy import StepOutput

#: The keys of the loss dict that are not targets.
RESERVED = ("loss", "values")


@attrs.frozen
class Parts:
    """A loss's result split by the contract: the loss, the values to report, the targets."""

    loss: Any
    values: Mapping[Any, Any] = attrs.field(factory=dict)
    targets: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Arrays:
    """A framework's arrays as the loss contract checks them: ``to_array`` converts a value (and
    may raise ``TypeError``/``ValueError``), ``floating``/``integer`` test an array's dtype,
    ``dtype`` names it, ``shape`` is an array's shape (``None`` unknown) and ``mean`` names the
    framework's mean, for the hint on a non-scalar loss.

    >>> import numpy as np
    >>> numpy = Arrays(np.asarray, lambda a: a.dtype.kind == "f", lambda a: a.dtype.kind in "iu",
    ...                lambda a: a.dtype.name, lambda a: a.shape, "np.mean")
    >>> LossContract("Demo", "loss", arrays=numpy).checked({"loss": 2.0, "values": {"n": 3}})
    (array(2.), {'n': array(3)}, {})
    """

    to_array: Callable[[Any], Any]
    floating: Callable[[Any], bool]
    integer: Callable[[Any], bool]
    dtype: Callable[[Any], str]
    shape: Callable[[Any], Sequence[int | None] | None]
    mean: str

    def convert(self, value: Any) -> Any:
        """``value`` as an array, or ``None`` for ``None``, text and what cannot be one."""
        if value is None or isinstance(value, (str, bytes)):
            return None
        try:
            return self.to_array(value)
        except (TypeError, ValueError):
            return None

    def numeric(self, value: Any) -> Any:
        """``value`` as a floating-point or integer array, or ``None``."""
        array = self.convert(value)
        ok = array is not None and (self.floating(array) or self.integer(array))
        return array if ok else None


@attrs.frozen
class LossContract:
    """The loss contract of one strategy (``owner``), whose function is called ``label``.

    ``targets`` is ``None`` when the strategy reports target gradients, else the hint given when
    a loss returns targets; ``dict_only`` requires the dict form; ``array`` names the
    framework's array type in messages; ``arrays`` is needed by ``checked`` and ``number``.
    """

    owner: str
    label: str
    targets: str | None = "this strategy computes one gradient"
    dict_only: bool = False
    array: str = "tensor"
    arrays: Arrays | None = None

    def checked(self, value: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """What the loss returned as ``(loss, values, targets)`` arrays, checked: the loss a
        floating-point scalar, targets floating point, values numeric."""
        parts = self.split(value)
        loss = self.number(parts.loss, "loss")
        targets = {key: self.number(target, key) for key, target in parts.targets.items()}
        assert self.arrays is not None
        return loss, self.values(parts, self.arrays.numeric), targets

    def number(self, value: Any, what: str) -> Any:
        """``value`` as a floating-point array, or an error naming ``what`` it was for; the
        loss (``what="loss"``) must be a scalar."""
        assert self.arrays is not None, "LossContract.number needs arrays"
        arrays, where = self.arrays, f"{self.owner}: {self.label}"
        array = arrays.convert(value)
        dtype = None if array is None or arrays.floating(array) else arrays.dtype(array)
        checks.returned_number(where, value, what, array, dtype)
        if what == "loss":
            shape = arrays.shape(array)
            checks.scalar_loss(where, None if shape is None else tuple(shape), arrays.mean)
        return array

    def split(self, value: Any) -> Parts:
        """``value`` (what the loss returned) as ``Parts``, or an error naming what is wrong."""
        where = f"{self.owner}: {self.label}"
        if not isinstance(value, Mapping):
            if self.dict_only:
                got = f"a {self.array}" if hasattr(value, "shape") else type(value).__name__
                raise TypeError(
                    f"{where} must return a dict of named {self.array}s with a 'loss' entry, "
                    f"got {got}"
                )
            return Parts(loss=value)
        if "loss" not in value:
            keys = sorted(map(str, value))
            raise ValueError(f"{where} must return a dict with a 'loss' entry, got keys {keys}")
        extra = [key for key in value if key not in RESERVED]
        if extra and self.targets is not None:
            raise ValueError(
                f"{where} returned targets {sorted(map(str, extra))} besides 'loss'; {self.targets}"
            )
        for key in extra:
            if not isinstance(key, str):
                raise TypeError(f"{where}'s keys must be str, got {key!r}")
        values = value.get("values", {})
        if not isinstance(values, Mapping):
            raise TypeError(
                f"{where}'s 'values' entry must be a dict of named {self.array}s, "
                f"got {type(values).__name__}"
            )
        for key in values:
            if not isinstance(key, str):
                raise TypeError(f"{where}'s 'values' keys must be str, got {key!r}")
        check_value_names(f"{where}'s 'values'", values)
        return Parts(value["loss"], values, {key: value[key] for key in extra})

    def values(self, parts: Parts, convert: Callable[[Any], Any]) -> dict[str, Any]:
        """The reported values converted by ``convert`` (``None``: not numeric, refused)."""
        checked = {}
        for key, value in parts.values.items():
            array = convert(value)
            if array is None:
                raise TypeError(
                    f"{self.owner}: {self.label}'s value {key!r} must be a number or numeric "
                    f"{self.array}, got {type(value).__name__}"
                )
            checked[key] = array
        return checked

    def check_arity(self, function: Any, takes_batch: bool, leading: Sequence[str] = ()) -> None:
        """Raise ``TypeError`` unless ``function`` takes ``leading`` arguments and, when the
        Trainer has data, the batch."""
        if takes_batch:
            how = f"{self.label}({', '.join([*leading, 'batch'])}), since the Trainer has data"
        else:
            how = f"{self.label}({', '.join(leading)}) (no data was given to the Trainer)"
        label = f"{self.owner}: {self.label}"
        _validate.accepts(label, function, len(leading) + int(takes_batch), how)

    def check_gradients(self, names: Sequence[str], gradients: Sequence[Any], fix: str) -> None:
        """Raise a ``ValueError`` naming every variable whose gradient is ``None``; ``fix`` says
        how to remove a variable (``"var_list"``, ``"params"``)."""
        missing = [name for name, g in zip(names, gradients, strict=True) if g is None]
        if missing:
            raise ValueError(
                f"{self.owner}: the loss does not depend on variable(s) {missing} (their "
                f"gradient is None); remove them from {fix} or use them in the loss"
            )


class CallsLoss:
    """``check`` of a strategy that calls the user's loss ``_fn`` with ``_leading`` arguments and
    the batch when the Trainer has data (a mixin): the strategy sets ``_fn`` and its
    ``_contract``. ``_takes_batch`` remembers what the last Trainer checked (``None``: none has),
    and ``_arguments`` gives a step the loss's arguments after the leading ones.

    >>> class Demo(CallsLoss):
    ...     _contract = LossContract("Demo", "loss")
    ...     _fn = staticmethod(lambda batch: batch)
    >>> demo = Demo()
    >>> demo._arguments(3, float), demo._arguments(None, float)
    ((3.0,), ())
    >>> demo.check(takes_batch=False)
    Traceback (most recent call last):
    TypeError: Demo: loss(batch) cannot be called as loss() (no data was given to the Trainer)
    """

    _contract: LossContract
    _fn: Callable[..., Any]
    #: The names of the arguments the loss takes before the batch (``("params",)``, say).
    _leading: tuple[str, ...] = ()
    _takes_batch: bool | None = None

    def check(self, takes_batch: bool) -> None:
        """Raise ``TypeError`` unless the loss takes the ``_leading`` arguments and, when the
        Trainer has data (``takes_batch``), the batch."""
        if self._takes_batch == takes_batch:  # checked when an earlier Trainer was built
            return
        self._contract.check_arity(self._fn, takes_batch, leading=self._leading)
        self._takes_batch = takes_batch

    def _arguments(self, batch: Any, convert: Callable[[Any], Any]) -> tuple[Any, ...]:
        """``(convert(batch),)`` when the loss takes the batch (as the Trainer checked; a step
        taken without a Trainer: when one is given), else ``()``."""
        takes_batch = self._takes_batch if self._takes_batch is not None else batch is not None
        return (convert(batch),) if takes_batch else ()


def unique(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` made unique in order, by appending ``_1``, ``_2``, ... to repeats: the names a
    strategy reports its variables (and their gradients) under.

    >>> unique(["v", "v", "x", "v"])
    ('v', 'v_1', 'x', 'v_2')
    """
    taken: set[str] = set()
    result = []
    for base in names:
        name, suffix = base, 0
        while name in taken:
            suffix += 1
            name = f"{base}_{suffix}"
        taken.add(name)
        result.append(name)
    return tuple(result)


def step_output(
    names: Sequence[str],
    loss: Any,
    gradients: Sequence[Any] | None = None,
    target_gradients: Mapping[str, Sequence[Any]] | None = None,
    values: Mapping[str, Any] | None = None,
) -> StepOutput:
    """A ``StepOutput`` from gradients listed in the order of the variables ``names``.

    >>> step_output(["w"], 1.0, [0.5], {"z": [2.0]}).target_gradients
    {'z': {'w': 2.0}}
    """

    def named(grads: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(names, grads, strict=True))

    return StepOutput(
        loss=loss,
        gradients=None if gradients is None else named(gradients),
        target_gradients=None
        if target_gradients is None
        else {key: named(grads) for key, grads in target_gradients.items()},
        values=dict(values or {}),
    )


def evaluation(owner: str, loss: Any, values: Mapping[str, Any]) -> dict[str, float]:
    """An evaluation's loss and values as host floats (``Evaluates.evaluate``): each must be
    one number; ``"loss"`` comes first and a value cannot replace it.

    >>> evaluation("Demo", np.float32(0.5), {"acc": np.array([0.25])})
    {'loss': 0.5, 'acc': 0.25}
    """
    results = {}
    for key, value in {**values, "loss": loss}.items():
        array = np.asarray(value, dtype=np.float64)
        if array.size != 1:
            raise TypeError(
                f"{owner}.evaluate: {key!r} must be one number to be averaged over batches, "
                f"got shape {array.shape}"
            )
        results[key] = float(array.reshape(()))
    return {"loss": results.pop("loss"), **results}
