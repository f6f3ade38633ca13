"""SIGKILL-and-resume runs shared by the TensorFlow and JAX resume tests.

The worker side (``worker_main``) runs a model from a table: it restores from ``--dir`` if it
can, saves checkpoints there, may SIGKILL itself at the end of step ``--kill-at``, and writes
what it ended with to ``--out``. The test side (``spawn``) runs such a worker in a subprocess and
returns what it wrote, with its stderr (``None`` for a run that was killed, after checking it
was).
"""

import argparse
import json
import os
import signal
import subprocess
import sys

import numpy as np

import steploop as sl
from tests.helpers import Kill

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_main(models):
    """Run ``models[--model]()``: ``(step, criteria, data, steps_per_call, every)`` and, optionally,
    a function giving the arrays to compare, a list (default: ``step.variables()``, by name)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(models), required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--kill-at", type=int, default=None)
    args = parser.parse_args()
    step, criteria, data, per_call, every, *rest = models[args.model]()
    arrays = rest[0] if rest else step.variables
    callbacks = [*criteria, sl.Checkpoint(args.dir, every=every, keep=2)]
    if args.kill_at is not None:
        callbacks.append(Kill(args.kill_at))
    trainer = sl.Trainer(step, callbacks, data=data, steps_per_call=per_call)
    restored = trainer.restore(args.dir)
    result = trainer.run()
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(
            {
                "restored": restored,
                "steps": result.steps,
                "status": result.status,
                "reason": result.stop_reason,
                "variables": _hex(arrays()),
                "history": {k: trainer.history[k].tobytes().hex() for k in sorted(trainer.history)},
            },
            file,
        )


def _hex(arrays):
    """The bytes of each array, in hex: a list, or a dict by name."""
    if isinstance(arrays, dict):
        return {name: np.asarray(v).tobytes().hex() for name, v in arrays.items()}
    return [np.asarray(v).tobytes().hex() for v in arrays]


def spawn(module, model, directory, kill_at=None, env=None, timeout=300):
    """Run worker ``module`` on ``model`` with checkpoints under ``directory``."""
    out = os.path.join(directory, "out.json")
    command = [sys.executable, "-m", module, "--model", model]
    command += ["--dir", os.path.join(directory, "ckpt"), "--out", out]
    if kill_at is not None:
        command += ["--kill-at", str(kill_at)]
    environment = {**os.environ, **(env or {})}
    done = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )
    if kill_at is not None:
        assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
        return None
    assert done.returncode == 0, done.stderr[-2000:]
    with open(out, encoding="utf-8") as file:
        result = json.load(file)
    result["stderr"] = done.stderr  # what it logged (warnings)
    return result
