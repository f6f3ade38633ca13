"""The mutation score of the core from the results ``make mutate`` left in ``mutants/``.

mutmut 3 keeps each source file's verdicts in ``mutants/src/steploop/<file>.meta`` (JSON,
``exit_code_by_key``: mutant name to the test run's exit code; ``None`` while not run). The score
is ``(killed + timeout) / (killed + timeout + survived + no tests)``, leaving out the mutants
listed in ``docs/equivalent-mutants.txt`` (one ``name: reason`` a line: mutants that cannot change
behaviour) and those not run yet. Prints a Markdown table by module, then the total.

    python tools/mutation_report.py [--survivors]
"""

from __future__ import annotations

import argparse
import json
import pathlib
from collections import Counter

META = pathlib.Path("mutants") / "src" / "steploop"  # run from the repository's root
EQUIVALENT = pathlib.Path("docs") / "equivalent-mutants.txt"

#: mutmut's exit codes (``mutmut.stats.status_by_exit_code``), as this report counts them.
STATUS = {1: "killed", 3: "killed", 0: "survived", 33: "no tests", 5: "no tests", None: "pending"}
STATUS |= dict.fromkeys((36, -24, 24, 152, 255), "timeout")


def equivalent(path: pathlib.Path = EQUIVALENT) -> dict[str, str]:
    """The mutants judged equivalent, by name, with the reason."""
    if not path.exists():
        return {}
    listed = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(":")
            listed[name.strip()] = reason.strip()
    return listed


def verdicts(meta: pathlib.Path = META) -> dict[str, dict[str, str]]:
    """Each module's mutants and their status, from the ``.meta`` files."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(meta.rglob("*.py.meta")):
        codes = json.loads(path.read_text())["exit_code_by_key"]
        module = str(path.relative_to(meta))[: -len(".meta")]
        found[module] = {key: STATUS.get(code, "other") for key, code in codes.items()}
    return found


def score(counts: Counter[str]) -> float | None:
    caught = counts["killed"] + counts["timeout"]
    judged = caught + counts["survived"] + counts["no tests"]
    return caught / judged if judged else None


def report(by_module: dict[str, dict[str, str]], skip: dict[str, str]) -> tuple[str, Counter[str]]:
    """The Markdown table and the total counts."""
    lines = [
        "| module | score | killed | timeout | survived | no tests | equivalent | not run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    total: Counter[str] = Counter()
    for module, statuses in by_module.items():
        counts: Counter[str] = Counter()
        for name, status in statuses.items():
            counts["equivalent" if name in skip and status == "survived" else status] += 1
        total.update(counts)
        value = score(counts)
        shown = "-" if value is None else f"{value:.1%}"
        lines.append(
            f"| `{module}` | {shown} | {counts['killed']} | {counts['timeout']} | "
            f"{counts['survived']} | {counts['no tests']} | {counts['equivalent']} | "
            f"{counts['pending']} |"
        )
    value = score(total)
    lines.append(
        f"| **core** | **{'-' if value is None else f'{value:.1%}'}** | {total['killed']} | "
        f"{total['timeout']} | {total['survived']} | {total['no tests']} | "
        f"{total['equivalent']} | {total['pending']} |"
    )
    return "\n".join(lines), total


def stale_names(by_module: dict[str, dict[str, str]], skip: dict[str, str]) -> list[str]:
    """The names listed as equivalent that are not surviving mutants of this run (mutmut numbers a
    function's mutants in order, so an edit to it renames them)."""
    surviving = {
        name for statuses in by_module.values() for name, status in statuses.items()
        if status == "survived"
    }
    return sorted(name for name in skip if name not in surviving)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    arguments = parser.parse_args()
    if not META.exists():
        raise SystemExit(f"no mutation results in {META}: run make mutate first")
    by_module, skip = verdicts(), equivalent()
    table, total = report(by_module, skip)
    print(table)
    run = sum(total.values()) - total["pending"]
    print(f"\n{run} of {sum(total.values())} mutants run; {len(skip)} listed as equivalent.")
    stale = stale_names(by_module, skip)
    if stale:
        print(
            f"{len(stale)} listed as equivalent did not survive this run (killed, renamed when the "
            "function changed, or gone): check them with --survivors and mutmut show"
        )
    if arguments.survivors:
        for statuses in by_module.values():
            for name, status in statuses.items():
                if status in ("survived", "no tests") and name not in skip:
                    print(status, name)


if __name__ == "__main__":
    main()
