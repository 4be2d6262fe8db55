"""An experiment's tables: the results of its complete runs collected into the tidy table
and the summary, written as CSV (and Parquet, and a plot, where their extras are
installed), each file whole or not at all."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from concordia_like.errors import ConfigError
from concordia_like.experiments.stats import summarize
from concordia_like.files import atomic_path, write_atomic

if TYPE_CHECKING:
    from concordia_like.experiments.scenario import Scenario
    from concordia_like.experiments.settings import Settings

FIELDS = ["condition", "seed", "measurement", "step", "time", "value"]
SUMMARY_FIELDS = [
    "measurement",
    "condition",
    "n",
    "mean",
    "ci_low",
    "ci_high",
    "diff",
    "diff_low",
    "diff_high",
]


@dataclass
class Report:
    out: Path
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    seeds: list[dict[str, Any]]
    #: steps computed (shared past once per seed) and steps the runs hold in all
    steps_computed: int = 0
    steps_total: int = 0

    @property
    def saved_share(self) -> float:
        return 1 - self.steps_computed / self.steps_total if self.steps_total else 0.0


def to_json(data: Any) -> str:
    """The JSON of the experiment's own files (manifest, index, results)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def collect(scenario: Scenario, settings: Settings) -> Report:
    """The results of every complete run, as one report."""
    rows: list[dict[str, Any]] = []
    computed = total = 0
    for seed in settings.seeds:
        root = settings.out / "runs" / f"seed-{seed}" / "results"
        past = 0
        for c in scenario.conditions:
            path = root / f"{c}.json"
            if not path.exists():
                raise ConfigError(f"the run of {c} for seed {seed} is not complete ({path})")
            result = json.loads(path.read_text())
            rows += result["rows"]
            total += result["steps"]
            computed += result["steps"] - result["from_past"]
            past = max(past, result["from_past"])
        computed += past
    summary = summarize(rows, scenario.conditions, scenario.control)
    return Report(settings.out, rows, summary, [], computed, total)


def table_csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k) for k in fields})
    return buf.getvalue()


def write_outputs(report: Report, scenario: Scenario) -> None:
    out = report.out
    rows = sorted(
        report.rows,
        key=lambda r: (
            scenario.conditions.index(r["condition"]),
            r["seed"],
            r["step"],
            r["measurement"],
        ),
    )
    write_atomic(out / "measurements.csv", table_csv(rows, FIELDS))
    write_atomic(out / "summary.csv", table_csv(report.summary, SUMMARY_FIELDS))
    with contextlib.suppress(ImportError):
        write_parquet(rows, out / "measurements.parquet")
    with contextlib.suppress(ImportError):
        from concordia_like.experiments.plot import plot

        plot(rows, scenario.conditions, out / "measurements.png")


def write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """The tidy table as Parquet (with pyarrow, the `parquet` extra): `value` holds the
    numbers, `value_text` what is text (who holds an item)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def number(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) else None

    table = pa.table(
        {
            "condition": [r["condition"] for r in rows],
            "seed": pa.array([int(r["seed"]) for r in rows], pa.int64()),
            "measurement": [r["measurement"] for r in rows],
            "step": pa.array([int(r["step"]) for r in rows], pa.int64()),
            "time": [r["time"] for r in rows],
            "value": pa.array([number(r["value"]) for r in rows], pa.float64()),
            "value_text": pa.array(
                [None if number(r["value"]) is not None else str(r["value"]) for r in rows],
                pa.string(),
            ),
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
