"""The files of a checkpoint: written atomically, listed in an index, checked by name.

The primitives ``steploop.checkpoint`` and the strategies' own ``save``/``restore`` share:

* ``atomic_write(path, write)``: a file is written through a temporary file in its folder and
  renamed into place, so a reader sees the old file or the whole new one, never a part;
* ``read_index(directory)`` / ``prefix_of(directory, step)``: the index ``checkpoint.json``
  (``{"latest": n, "kept": [...]}``) and the prefix ``ckpt-N`` of a checkpoint's files;
* ``check_variables``: refuse a checkpoint whose variables (name to shape and dtype) differ from a
  strategy's, naming each one that differs;
* ``write_arrays`` / ``read_arrays``: the callbacks' array state, ``ckpt-N.arrays.npz``, keyed by
  ``"{owner}/{name}"`` (see ``steploop.checkpoint_arrays``); a checkpoint written before it
  existed has none, and reads back as empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

INDEX = "checkpoint.json"


def writable(directory: str) -> str:
    """Create ``directory`` if needed and prove it writable, or raise a ``ValueError`` now."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as error:
        raise ValueError(
            f"Checkpoint directory {directory!r} is not writable: {error.strerror or error}"
        ) from None
    return directory


def atomic_write(path: str, write: Any) -> None:
    """Write ``path`` through a temporary file in the same folder, then rename it into place."""
    folder = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def describe_variable(name: str, shape: Sequence[int | None], dtype: str) -> str:
    """``'a' (2, 3) float32``: a variable as checkpoint errors show it."""
    return f"{name!r} {tuple(shape)} {dtype}"


def check_variables(
    owner: str,
    prefix: str,
    saved: Mapping[str, tuple[Sequence[int | None], str]],
    current: Mapping[str, tuple[Sequence[int | None], str]],
) -> None:
    """Raise a ``ValueError`` unless the checkpoint ``prefix`` holds exactly the variables of
    ``current`` (name to shape and dtype): none missing, none extra, none renamed, reshaped or
    re-typed. The message names each variable that differs and lists what the checkpoint holds.

    >>> check_variables("S", "ckpt-1", {"a": ((2,), "float32")}, {"a": ((2,), "float32")})
    """
    problems = []
    absent = [name for name in current if name not in saved]
    unused = [name for name in saved if name not in current]
    for name in absent:
        problems.append(f"variable {describe_variable(name, *current[name])} is not in it")
    for name in unused:
        problems.append(
            f"its variable {describe_variable(name, *saved[name])} is not among the strategy's"
        )
    for name, (shape, dtype) in current.items():
        if name in saved and (tuple(shape), dtype) != (tuple(saved[name][0]), saved[name][1]):
            problems.append(
                f"variable {name!r} is {tuple(shape)} {dtype} but the checkpoint has "
                f"{tuple(saved[name][0])} {saved[name][1]}"
            )
    if not problems:
        return
    if absent and unused:
        problems.append("a renamed variable must keep the name it was saved under")
    holds = ", ".join(describe_variable(name, *saved[name]) for name in sorted(saved))
    raise ValueError(
        f"{owner}: checkpoint {prefix!r} does not match the variables, which are restored by "
        f"name: {'; '.join(problems)}. The checkpoint holds: {holds or 'no variables'}"
    )


def read_index(directory: str) -> dict[str, Any] | None:
    """The index of ``directory`` (``{"latest": n, "kept": [...]}``), or ``None`` if it has none."""
    try:
        with open(os.path.join(directory, INDEX), encoding="utf-8") as file:
            index: dict[str, Any] = json.load(file)
    except FileNotFoundError:
        return None
    return index


def prefix_of(directory: str, step: int) -> str:
    return os.path.join(directory, f"ckpt-{step}")


def write_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (by key, dtype and shape kept) to ``prefix.arrays.npz``, atomically; with
    none, remove the file a former save of that step may have left, and write nothing."""
    path = f"{prefix}.arrays.npz"
    if not arrays:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    host = {key: np.asarray(value) for key, value in arrays.items()}
    atomic_write(path, lambda file: np.savez(file, **host))  # type: ignore[arg-type]


def read_arrays(prefix: str) -> dict[str, np.ndarray]:
    """The arrays ``write_arrays(prefix, ...)`` wrote; empty for a checkpoint without the file
    (one written before callbacks saved arrays)."""
    try:
        saved = np.load(f"{prefix}.arrays.npz")
    except FileNotFoundError:
        return {}
    with saved:
        return {key: saved[key] for key in saved.files}
