"""Checkpoints of a JAX strategy, restored by pytree path.

A checkpoint ``prefix`` of ``OptaxStep`` is ``prefix.params.npz`` (the parameters keyed by their
reported names, the ``/``-joined pytree paths), ``prefix.opt_state.npz`` (the optimiser state's
array leaves keyed the same way by their paths in the state) and the core record of the
variables (``steploop.variable_record``: names, shapes, dtypes, checked before anything is read).
Every file is written through ``checkpoint.atomic_write``, the record last, so a checkpoint with a
record is complete.

Why not orbax: the state is a few pytrees of arrays that NumPy's ``.npz`` holds exactly (dtype
and shape kept, bfloat16 aside), restore must match by name as every steploop strategy does,
and the core already owns atomic files, retention and the index; orbax would add a dependency,
its own directory layout and asynchronous writes the Checkpoint callback does not expect.

>>> import jax.numpy as jnp
>>> named_leaves({"layers": [{"kernel": jnp.ones(2)}]})
{'layers/0/kernel': Array([1., 1.], dtype=float32)}
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from steploop import checkpoint, variable_record
from steploop.outputs import unique


def named_leaves(tree: Any) -> dict[str, Any]:
    """The array leaves of ``tree`` by ``/``-joined path (made unique; ``params`` for a bare
    array)."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    names = unique(
        jax.tree_util.keystr(path, simple=True, separator="/") or "params" for path, _ in leaves
    )
    return dict(zip(names, (leaf for _, leaf in leaves), strict=True))


def _spec(leaf: Any) -> tuple[tuple[int, ...], str]:
    return tuple(int(d) for d in np.shape(leaf)), np.asarray(leaf).dtype.name


def _write_npz(path: str, arrays: dict[str, Any]) -> None:
    host = {name: np.asarray(value) for name, value in arrays.items()}
    checkpoint.atomic_write(path, lambda file: np.savez(file, **host))  # type: ignore[arg-type]


def _read_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def save(prefix: str, params: Any, opt_state: Any, optimizer: str) -> None:
    """Write ``params`` and ``opt_state`` by path, then the record of the variables."""
    named = named_leaves(params)
    _write_npz(f"{prefix}.params.npz", named)
    _write_npz(f"{prefix}.opt_state.npz", named_leaves(opt_state))
    specs = {name: _spec(leaf) for name, leaf in named.items()}
    variable_record.write(prefix, specs, optimizer, None)


def _rebuilt(owner: str, prefix: str, what: str, tree: Any, stored: dict[str, np.ndarray]) -> Any:
    """``tree`` with each leaf replaced by the stored array of its name."""
    current = named_leaves(tree)
    checkpoint.check_variables(
        f"{owner} ({what})",
        prefix,
        {name: _spec(value) for name, value in stored.items()},
        {name: _spec(value) for name, value in current.items()},
    )
    leaves = [
        jnp.asarray(stored[name], dtype=np.asarray(leaf).dtype) for name, leaf in current.items()
    ]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(tree), leaves)


def restore(owner: str, prefix: str, params: Any, opt_state: Any) -> tuple[Any, Any]:
    """``(params, opt_state)`` read back from ``prefix`` by name, shaped as the given ones; a
    variable missing, extra, renamed, reshaped or re-typed is a ``ValueError`` naming it."""
    record = variable_record.read(owner, prefix)
    variable_record.check(
        owner, prefix, record, {n: _spec(v) for n, v in named_leaves(params).items()}
    )
    new_params = _rebuilt(owner, prefix, "params", params, _read_npz(f"{prefix}.params.npz"))
    stored = _read_npz(f"{prefix}.opt_state.npz")
    return new_params, _rebuilt(owner, prefix, "opt_state", opt_state, stored)
