"""Running an experiment: every condition of a scenario for every seed, with forks from
a shared past, skipping what is done and resuming what was interrupted.

An experiment's folder (`--out DIR`) holds

    manifest.json        what was run, with what, when; whether it replays exactly
    measurements.csv     the tidy table: condition, seed, measurement, step, time, value
    measurements.parquet the same (with pyarrow installed: the `parquet` extra)
    summary.csv          per measurement and condition: mean, 95% interval, paired
                         difference from the control and its interval
    measurements.png     each measurement over the steps, one line and band per condition
    runs/seed-S/         the runs of seed S (run folders as `concordia-like run` keeps
                         them), index.json (which run is which condition) and
                         results/CONDITION.json (written once the run is complete)

One seed's runs (a shared past and its forks, `experiments.seed`) go on together in one
process and borrow one model, so their requests meet in one batcher; the local executor
runs all seeds so, the Ray executor (`experiments.ray_executor`) each seed as one task
on the cluster. The manifest is `experiments.manifest`, the tables
`experiments.outputs`.

Every step is committed (see `engine.runs`), so running the same command again skips
complete runs and resumes an interrupted one from its last committed step."""

from __future__ import annotations

import asyncio
from typing import Any

from concordia_like.errors import ConfigError
from concordia_like.experiments.manifest import MANIFEST, check_out, new_manifest, now
from concordia_like.experiments.outputs import Report, collect, to_json, write_outputs
from concordia_like.experiments.ray_executor import run_on_ray
from concordia_like.experiments.scenario import Scenario
from concordia_like.experiments.seed import SeedRunner
from concordia_like.experiments.settings import Settings, Tracker
from concordia_like.files import write_atomic
from concordia_like.llm import LanguageModel, open_model


def run_experiment(
    scenario: Scenario,
    settings: Settings,
    *,
    tracker: Tracker | None = None,
    executor: str = "local",
    address: str | None = None,
    worker_setup: str | None = None,
    worker_env: dict[str, str] | None = None,
    model: LanguageModel | None = None,
) -> Report:
    """Run (or finish) the experiment and write its tables, manifest and plot. The local
    executor's runs borrow `model` (left open: its owner closes it), or else a model
    opened from `settings.model` and closed at the end; Ray workers open their own."""
    out = settings.out
    old = check_out(scenario, out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(scenario, settings, executor, old)
    write_atomic(out / MANIFEST, to_json(manifest))
    if executor == "local":
        seeds = asyncio.run(_local(scenario, settings, tracker, model))
    elif executor == "ray":
        seeds = run_on_ray(scenario, settings, tracker, address, worker_setup, worker_env)
    else:
        raise ConfigError(f"--executor must be local or ray, not {executor!r}")
    report = collect(scenario, settings)
    report.seeds = seeds
    write_outputs(report, scenario)
    manifest["ended"] = now()
    manifest["steps_computed"], manifest["steps_total"] = report.steps_computed, report.steps_total
    write_atomic(out / MANIFEST, to_json(manifest))
    return report


async def _local(
    scenario: Scenario, settings: Settings, tracker: Tracker | None, model: LanguageModel | None
) -> list[dict[str, Any]]:
    if model is None:
        async with open_model(settings.model) as own:
            return await _seeds(scenario, settings, tracker, own)
    return await _seeds(scenario, settings, tracker, model)


async def _seeds(
    scenario: Scenario, settings: Settings, tracker: Tracker | None, model: LanguageModel
) -> list[dict[str, Any]]:
    runners = [SeedRunner(scenario, s, settings, model, tracker) for s in settings.seeds]
    return list(await asyncio.gather(*(r.run() for r in runners)))
