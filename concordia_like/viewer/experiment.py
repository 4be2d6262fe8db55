"""An experiment's folder as the viewer reads it: the manifest, the summary with its
intervals, each measurement over the steps per condition (the mean over seeds and its
95% band, as `experiments.stats` computes them), and which run is which."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concordia_like.errors import ConfigError
from concordia_like.experiments.stats import mean_ci


@dataclass(frozen=True)
class ExperimentRun:
    """One run of the experiment: its id, the folder of its store, what it is."""

    id: str
    folder: Path
    seed: int
    condition: str


def is_experiment(folder: Path) -> bool:
    return (folder / "manifest.json").is_file()


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


class ExperimentView:
    def __init__(self, folder: Path) -> None:
        if not is_experiment(folder):
            raise ConfigError(f"{folder} holds no experiment (no manifest.json)")
        self.folder = folder

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "manifest.json").read_text()))

    def _csv(self, name: str) -> list[dict[str, str]]:
        path = self.folder / name
        if not path.is_file():
            return []
        with path.open(newline="") as f:
            return list(csv.DictReader(f))

    def runs(self) -> list[ExperimentRun]:
        """Every run with a store, in seed then condition order ('[past]': the shared
        past the conditions were forked from)."""
        out: list[ExperimentRun] = []
        for seed_dir in sorted((self.folder / "runs").glob("seed-*")):
            index = seed_dir / "index.json"
            if not index.is_file():
                continue
            seed = int(seed_dir.name.removeprefix("seed-"))
            for condition, rid in json.loads(index.read_text()).items():
                folder = seed_dir / rid
                if (folder / "store.sqlite").is_file():
                    out.append(ExperimentRun(rid, folder, seed, condition))
        return out

    def data(self) -> dict[str, Any]:
        manifest = self.manifest()
        summary = [
            {k: (_number(v) if k not in ("measurement", "condition") else v) for k, v in r.items()}
            for r in self._csv("summary.csv")
        ]
        conditions = list(manifest.get("conditions") or sorted({r["condition"] for r in summary}))
        values: dict[tuple[str, str, int], list[float]] = {}
        for r in self._csv("measurements.csv"):
            v = _number(r.get("value"))
            if v is not None:
                values.setdefault((r["measurement"], r["condition"], int(r["step"])), []).append(v)
        series: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for (m, c, step), vs in sorted(values.items()):
            mean, lo, hi = mean_ci(vs)
            series.setdefault(m, {}).setdefault(c, []).append(
                {"step": step, "mean": mean, "lo": _number(lo), "hi": _number(hi), "n": len(vs)}
            )
        return {
            "name": manifest.get("scenario_name", self.folder.name),
            "manifest": manifest,
            "conditions": conditions,
            "summary": summary,
            "series": series,
            "runs": [{"id": r.id, "seed": r.seed, "condition": r.condition} for r in self.runs()],
        }
