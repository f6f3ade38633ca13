"""The benchmarks' results on disk: ``benchmarks/results.json`` and the chart
``benchmarks/results.png`` the README shows (no framework imported; matplotlib for the chart).

``bench.py`` writes the section ``"tensorflow"``, ``bench_jax.py`` the section ``"jax"``; each
replaces its own section and keeps the other, then redraws the chart from the whole file.
``python benchmarks/results.py`` redraws the chart alone.

The schema (``"schema": 1``; a change that breaks a reader bumps it)::

    {
      "schema": 1,
      "sections": {
        "<section>": {
          "machine": "processor, cores, Python and framework versions",
          "date": "2026-01-31T12:00:00+00:00",       # UTC, when the section was written
          "quick": false,                             # true for a --quick (smoke) run
          "rounds": 7,                                # interleaved rounds
          "rows": [
            {
              "table": "quadratic to tolerance",      # which table of the printed output
              "name": "steploop default (no speed arguments)",
              "steps": 70,                            # steps in one run, or null
              "seconds": {"median": 0.0088, "low": 0.0086, "high": 0.0091},  # one run, per round
              "ratios": [
                {
                  "against": "hand `tf.function` step loop",
                  "kind": "speed",                    # reference time / row time (> 1: faster)
                                                      # "time": row time / reference time
                  "median": 1.16, "low": 1.05, "high": 1.22,   # over the per-round ratios
                  "per_round": [1.16, 1.05, 1.22],
                  "chart": "TF quadratic to tol: default vs hand tf.function"  # or null
                }
              ]
            }
          ]
        }
      }
    }

Every ratio is the median of per-round ratios (both contenders timed in the same round) with
their min-max; the chart shows each ratio that has a ``"chart"`` label as a speed ratio (a
``"time"`` ratio inverted round by round), its bar the median and its whisker the min-max.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from timing import Ratio, Spread

SCHEMA = 1
HERE = pathlib.Path(__file__).resolve().parent
JSON_PATH = HERE / "results.json"
PNG_PATH = HERE / "results.png"


def row(
    table: str,
    name: str,
    seconds: list[float],
    steps: int | None = None,
    ratios: Iterable[Ratio] = (),
    chart: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One row of the schema: ``seconds`` one entry per round; ``chart`` maps a ratio's
    reference to its label on the chart (ratios not named there stay off it)."""
    labels = chart or {}
    return {
        "table": table,
        "name": name,
        "steps": steps,
        "seconds": _spread(Spread.of(seconds)),
        "ratios": [
            {
                "against": r.against,
                "kind": r.kind,
                **_spread(r.spread),
                "per_round": list(r.per_round),
                "chart": labels.get(r.against),
            }
            for r in ratios
        ],
    }


def _spread(spread: Spread) -> dict[str, float]:
    return {"median": spread.median, "low": spread.low, "high": spread.high}


def load(path: pathlib.Path = JSON_PATH) -> dict[str, Any]:
    """The results file, or an empty one where there is none yet."""
    if not path.exists():
        return {"schema": SCHEMA, "sections": {}}
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: expected schema {SCHEMA}, received {data.get('schema')!r}")
    return data


def save(
    section: str,
    machine: str,
    rounds: int,
    quick: bool,
    rows: list[dict[str, Any]],
    path: pathlib.Path = JSON_PATH,
) -> dict[str, Any]:
    """Replace ``section`` in the results file (the other sections stay), written atomically;
    returns the whole file's contents."""
    data = load(path)
    data["sections"][section] = {
        "machine": machine,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "rounds": rounds,
        "rows": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, suffix=".tmp", delete=False
    ) as file:
        json.dump(data, file, indent=1, ensure_ascii=False)
        file.write("\n")
    os.replace(file.name, path)
    return data


def chart_entries(data: Mapping[str, Any]) -> list[tuple[str, Spread, bool]]:
    """``(label, speed ratio, quick)`` for every charted ratio, in file order."""
    entries = []
    for section in data["sections"].values():
        for entry in section["rows"]:
            for r in entry["ratios"]:
                if r.get("chart"):
                    speed = Ratio(r["against"], r["kind"], tuple(r["per_round"])).as_speed()
                    entries.append((r["chart"], speed.spread, bool(section["quick"])))
    return entries


def draw(data: Mapping[str, Any], path: pathlib.Path = PNG_PATH) -> pathlib.Path | None:
    """A horizontal bar chart of the charted ratios (speed, log scale, whiskers min-max);
    None, drawing nothing, where matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = chart_entries(data)
    if not entries:
        return None
    labels = [label for label, _, _ in entries][::-1]
    spreads = [spread for _, spread, _ in entries][::-1]
    medians = [s.median for s in spreads]
    errors = [[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]]
    colours = ["tab:green" if m >= 1 else "tab:orange" for m in medians]
    figure, axes = plt.subplots(figsize=(10, 0.4 * len(entries) + 1.5))
    rows = range(len(entries))
    axes.barh(rows, medians, xerr=errors, color=colours, capsize=3, ecolor="black", log=True)
    axes.set_yticks(list(rows), labels, fontsize=8)
    axes.axvline(1.0, color="black", linewidth=0.8)
    axes.set_xlabel("speed vs the named reference (> 1: steploop faster), log scale", fontsize=9)
    for y, s in zip(rows, spreads, strict=True):
        axes.text(s.high * 1.04, y, f"{s.median:.2f}x", va="center", fontsize=7)
    axes.set_xlim(right=max(s.high for s in spreads) * 1.6)
    quick = any(q for _, _, q in entries)
    dates = sorted(s["date"][:10] for s in data["sections"].values())
    axes.set_title(
        "Median of per-round ratios, whiskers min-max"
        + (" (--quick run)" if quick else "")
        + (f", {dates[-1]}" if dates else ""),
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Redraw the chart from the results file.")
    parser.add_argument("--json", type=pathlib.Path, default=JSON_PATH)
    parser.add_argument("--png", type=pathlib.Path, default=PNG_PATH)
    args = parser.parse_args()
    drawn = draw(load(args.json), args.png)
    print(f"chart: {drawn}" if drawn else "chart: nothing drawn (no matplotlib or no ratios)")


if __name__ == "__main__":
    main()
