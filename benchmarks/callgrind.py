"""The Trainer's overhead per step in instructions, under ``valgrind --tool=callgrind``: a count
that a noisy, shared machine does not move (seconds move by ±20% there).

Measured programs (``overhead.py``), each in its own process under callgrind, at two step counts:

* ``bare``: a bare Python loop, per step one frozen attrs record and five small functions called
  on it (the least a hand loop with five stopping conditions does);
* ``trainer``: ``steploop.Trainer`` on a no-op NumPy strategy with the five criteria of the
  benchmark's overhead row (``MaxSteps``, ``LossBelow``, ``LossChangeBelow``, ``EarlyStopping``,
  ``StopOnNaN``).

Instructions per step are the difference quotient ``(Ir(n2) - Ir(n1)) / (n2 - n1)``: start-up
(the interpreter, imports, building the Trainer) costs the same in both runs and cancels. ``Ir``
is the total from the callgrind output file's ``summary:`` (or ``totals:``) line. Prints a
Markdown table. ``make callgrind``; ``--steps N1 N2`` (default 2000 12000: over a wide span the
garbage collector's passes, which fall at different steps in each program, move the quotient
little).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parent / "src"
PROGRAMS = {
    "bare": "bare Python loop (five calls and an attrs record a step)",
    "trainer": "steploop Trainer, five criteria, no-op NumPy strategy",
}


def parse_total(text: str) -> int:
    """The total instruction count (``Ir``) of a callgrind output file's text: its ``summary:``
    line, or else its ``totals:`` line (the first event; callgrind's default event is Ir)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        for key in ("summary:", "totals:"):
            if line.startswith(key):
                fields = line[len(key) :].split()
                if fields:
                    found[key] = int(fields[0])
    for key in ("summary:", "totals:"):
        if key in found:
            return found[key]
    raise ValueError("callgrind output: expected a 'summary:' or 'totals:' line, found neither")


def per_step(low: tuple[int, int], high: tuple[int, int]) -> float:
    """Instructions per step from ``(steps, Ir)`` at two step counts: the difference quotient."""
    (n1, ir1), (n2, ir2) = low, high
    if n2 == n1:
        raise ValueError(f"per_step: expected two different step counts, received {n1} twice")
    return (ir2 - ir1) / (n2 - n1)


def run_program(program: str, steps: int) -> int:
    """Run ``program`` for ``steps`` steps (in this process; what callgrind measures)."""
    sys.path.insert(0, str(HERE))
    import overhead

    run = {"bare": overhead.bare_loop, "trainer": overhead.trainer_run}[program]
    return run(steps)


def measure(program: str, steps: int, folder: pathlib.Path, valgrind: str) -> int:
    """``Ir`` of one run of ``program`` under callgrind."""
    out = folder / f"{program}-{steps}.out"
    env = dict(os.environ, PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    command = [
        valgrind,
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        "--program",
        program,
        "--count",
        str(steps),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return parse_total(out.read_text(encoding="utf-8"))


def report(counts: dict[str, dict[int, int]]) -> str:
    """The Markdown table: Ir at each step count and instructions per step, then the ratio."""
    sys.path.insert(0, str(HERE))
    from timing import table

    steps = sorted(next(iter(counts.values())))
    rows, rates = [], {}
    for program, by_steps in counts.items():
        rates[program] = per_step(*((n, by_steps[n]) for n in steps[:2]))
        rows.append(
            [PROGRAMS[program]] + [f"{by_steps[n]:,}" for n in steps] + [f"{rates[program]:,.0f}"]
        )
    header = ["program (under callgrind)"] + [f"Ir, {n:,} steps" for n in steps]
    text = table([*header, "instructions per step"], rows)
    if "bare" in rates and "trainer" in rates:
        text += (
            f"\n\nThe Trainer with five criteria: {rates['trainer'] / rates['bare']:.1f}x the "
            "instructions per step of the bare loop."
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs=2, default=(2000, 12000))
    parser.add_argument("--program", choices=sorted(PROGRAMS), help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.program:  # the measured process
        run_program(args.program, args.count)
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("callgrind.py: needs valgrind on PATH (apt-get install valgrind)")
    counts: dict[str, dict[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="callgrind-") as folder:
        for program in PROGRAMS:
            counts[program] = {
                n: measure(program, n, pathlib.Path(folder), valgrind) for n in args.steps
            }
    print(
        f"Python {sys.version.split()[0]}, {valgrind}; instructions per step = "
        f"(Ir({args.steps[1]}) - Ir({args.steps[0]})) / {args.steps[1] - args.steps[0]}.\n"
    )
    print(report(counts))


if __name__ == "__main__":
    main()
