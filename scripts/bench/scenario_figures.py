"""The shipped scenarios on the embedded model, cut to fit a small machine: the figures
the README shows beside the papers'.

A scenario as shipped runs every seed for its whole length (the fishery's twelve
rounds, the party's whole morning with the whole town): hours on two CPU cores. This
writes a cut copy of one (fewer steps, fewer seeds, for the party a smaller cast and a
later start with the notice and the party kept inside the run), runs it with
`concordia-like experiment` on the embedded model, and leaves the experiment's folder
(tables, manifest, plot) in `--out`; `--figures DIR` also copies its summary and plot
there under the scenario's name. What is cut is printed first, and the cut file is
kept in the experiment's folder (`scenario.yaml`), so the manifest's hash names it.

    .venv/bin/python scripts/bench/scenario_figures.py fishery --out experiments/fishery-cut
    .venv/bin/python scripts/bench/scenario_figures.py market --seeds 2 --steps 6 --out ...
    .venv/bin/python scripts/bench/scenario_figures.py party --out ... --figures docs/figures
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SCENARIOS = Path(__file__).resolve().parents[2] / "worlds" / "scenarios"

#: the party cut: the host and five townsfolk, from 10:40, the notice at 10:50 and the
#: party at 11:30 as in the file, so the run is 7 steps of 10 minutes
PARTY_CAST = ["Rafael Quint", "Margo Vell", "Samuel Okonjo", "Nell Ashby", "Tobias Marlowe"]


def cut(name: str, steps: int | None) -> tuple[dict[str, Any], list[str]]:
    """The scenario `name` cut for a small machine, and what was cut, in words."""
    path = SCENARIOS / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    data["world"] = str((path.parent / data["world"]).resolve())
    said = []
    if name == "party":
        data["cast"] = PARTY_CAST
        data["start"] = "10:40"
        data["interventions"]["notice"]["at"] = "2025-04-14 10:50"
        said.append(f"cast of {len(PARTY_CAST)} ({', '.join(PARTY_CAST)}), from 10:40")
        said.append("the notice at 10:50 (in the file: 09:10), the party at 11:30 as shipped")
    elif steps is not None:
        stop = dict(data["stop"])
        stop.pop("until", None)
        stop["steps"] = min(steps, stop.get("steps") or steps)
        data["stop"] = stop
        said.append(f"{stop['steps']} steps")
    return data, said


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", choices=("fishery", "market", "party", "bread_price"))
    ap.add_argument("--out", type=Path, required=True, help="the experiment's folder")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6, help="steps at most (not the party)")
    ap.add_argument("--figures", type=Path, help="copy summary.csv and the plot here")
    args = ap.parse_args()
    data, said = cut(args.scenario, args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    scenario = args.out / "scenario.yaml"
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if not scenario.exists() or scenario.read_text() != text:
        scenario.write_text(text)
    print(f"{args.scenario}: {args.seeds} seeds; cut: {'; '.join(said) or 'nothing'}")
    print(f"load average: {os.getloadavg()[0]:.2f}", flush=True)
    cli = Path(sys.executable).parent / "concordia-like"
    start = time.perf_counter()
    cmd = [str(cli), "experiment", str(scenario), "--seeds", str(args.seeds)]
    cmd += ["--out", str(args.out / "experiment"), "--backend", "embedded"]
    rc = subprocess.call(cmd)
    print(f"wall {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}")
    if rc != 0:
        sys.exit(rc)
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        for src, dst in (("summary.csv", "summary.csv"), ("measurements.png", "plot.png")):
            shutil.copyfile(args.out / "experiment" / src, args.figures / f"{args.scenario}-{dst}")
        print(f"copied the summary and the plot into {args.figures}")


if __name__ == "__main__":
    main()
