"""What every benchmark script here shares: interleaved rounds, ratios with their spread,
Markdown tables and the machine's description (no framework imported)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def rounds(
    contenders: dict[str, Callable[[], object]], count: int, repeat: int = 1
) -> dict[str, list[float]]:
    """Seconds of one call of each contender, one entry per round. Rounds interleave the
    contenders, so that a noisy moment hurts them alike; within a round a contender runs
    ``repeat`` times in a row (its median counts), so short calls are timed warm, as they run in a
    loop. Every contender runs once first (tracing, compiling)."""
    for run in contenders.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(count):
        for name, run in contenders.items():
            calls = []
            for _ in range(repeat):
                start = time.perf_counter()
                run()
                calls.append(time.perf_counter() - start)
            times[name].append(statistics.median(calls))
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    """The median over the rounds of each contender."""
    return {name: statistics.median(values) for name, values in times.items()}


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
