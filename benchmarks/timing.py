"""What every benchmark script here shares: interleaved rounds, ratios with their spread,
Markdown tables and the machine's description (no framework imported).

A ratio is never the ratio of two medians: each round gives one ratio (both contenders timed in
the same round, so a noisy moment hurts them alike), and a table reports the median of those
per-round ratios with their min-max spread (``Ratio``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


def rounds(
    contenders: Mapping[str, Callable[[], object]],
    count: int,
    repeat: int | Mapping[str, int] = 1,
) -> dict[str, list[float]]:
    """Seconds of one call of each contender, one entry per round. Rounds interleave the
    contenders, so that a noisy moment hurts them alike; within a round a contender runs
    ``repeat`` times in a row (its median counts), so short calls are timed warm, as they run in a
    loop. ``repeat`` may be a mapping from name to count (missing names: 1), so that slow and fast
    contenders share the same rounds. Every contender runs once first (tracing, compiling)."""
    for run in contenders.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(count):
        for name, run in contenders.items():
            n = repeat if isinstance(repeat, int) else repeat.get(name, 1)
            calls = []
            for _ in range(n):
                start = time.perf_counter()
                run()
                calls.append(time.perf_counter() - start)
            times[name].append(statistics.median(calls))
    return times


def medians(times: Mapping[str, list[float]]) -> dict[str, float]:
    """The median over the rounds of each contender."""
    return {name: statistics.median(values) for name, values in times.items()}


@dataclass(frozen=True)
class Spread:
    """The median of some per-round values with their min and max."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        if not values:
            raise ValueError("Spread.of: expected at least one value, received none")
        return cls(statistics.median(values), min(values), max(values))

    def scaled(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.low * factor, self.high * factor)

    def format(self, spec: str = ".2f", unit: str = "") -> str:
        """``1.23x (1.10-1.40)`` for ``spec=".2f", unit="x"``: the median, then the min-max.
        ``spec="auto"``: whole numbers with thousands separators from 100 on, else 4 digits."""
        if spec == "auto":
            spec = ",.0f" if self.median >= 100 else ".4g"
        return f"{self.median:{spec}}{unit} ({self.low:{spec}}-{self.high:{spec}})"


@dataclass(frozen=True)
class Ratio:
    """One row against a reference, per round. ``kind="speed"``: the reference's time over the
    row's (above 1: the row is faster); ``kind="time"``: the row's time over the reference's
    (below 1: the row is faster). ``per_round`` holds one ratio per round."""

    against: str
    kind: str
    per_round: tuple[float, ...]
    spread: Spread = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("speed", "time"):
            raise ValueError(f"Ratio.kind: expected 'speed' or 'time', received {self.kind!r}")
        object.__setattr__(self, "spread", Spread.of(list(self.per_round)))

    def as_speed(self) -> Ratio:
        """The same ratio as a speed ratio (above 1: the row is faster), inverted per round."""
        if self.kind == "speed":
            return self
        return Ratio(self.against, "speed", tuple(1 / r for r in self.per_round))

    def format(self) -> str:
        """``1.23x (1.10-1.40)``: the median of the per-round ratios and their min-max."""
        return self.spread.format(".2f", "x")


def ratio(
    times: Mapping[str, list[float]],
    name: str,
    against: str,
    kind: str = "speed",
    per: Mapping[str, float] | None = None,
) -> Ratio:
    """``name`` against ``against`` round by round (see ``Ratio``). ``per`` divides each
    contender's seconds by its count (steps per run), for a per-step ratio."""
    scale = per or {}
    mine = [t / scale.get(name, 1) for t in times[name]]
    theirs = [t / scale.get(against, 1) for t in times[against]]
    if kind == "speed":
        values = tuple(b / a for a, b in zip(mine, theirs, strict=True))
    else:
        values = tuple(a / b for a, b in zip(mine, theirs, strict=True))
    return Ratio(against, kind, values)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """The processor, its cores and Python's version."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def command_line(
    description: str | None, quick_rounds: int, machine_line: str
) -> tuple[argparse.Namespace, int]:
    """The benchmark scripts' command line (``--quick``, ``--rounds``, ``--no-save``) and the
    number of rounds; prints the machine line every table is read with."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--no-save", action="store_true", help="write neither results.json nor results.png"
    )
    args = parser.parse_args()
    rounds = args.rounds or (quick_rounds if args.quick else 7)
    print(
        f"Machine: {machine_line}; medians of {rounds} interleaved rounds, ratios as the median "
        "of the per-round ratios (min-max).\n"
    )
    return args, rounds
