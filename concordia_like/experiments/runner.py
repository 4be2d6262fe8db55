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

For each seed, where the conditions are the same up to their first intervention, one
run goes that far ("past") and each condition goes on from a copy of it (the sandbox's
fork), so the shared steps are computed once and each comparison is paired: the same
past, then different interventions. The runs of a seed go on together in one process
and their requests meet in one batcher, so they batch; the local executor runs all
seeds so, the Ray executor runs each seed as one task on the cluster.

Every step is committed (see `engine.runs`), a run's index entry is written as soon as
it exists and its result file only once it is complete, so running the same command
again skips complete runs and resumes an interrupted one from its last committed step."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib
import io
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from concordia_like.engine.hooks import HOOKS_KEY, restore_hooks
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.engine.simulation import Simulation
from concordia_like.errors import ConfigError
from concordia_like.experiments.interventions import Interventions
from concordia_like.experiments.measures import Measurements, questions
from concordia_like.experiments.scenario import Scenario, load_scenario
from concordia_like.experiments.stats import summarize
from concordia_like.llm import LanguageModel, ResponseCache, make_backend
from concordia_like.llm.backend import Backend
from concordia_like.llm.batcher import Batcher
from concordia_like.llm.types import LLMRequest, RawCompletion
from concordia_like.sandbox.fork import fork_run

FIELDS = ["condition", "seed", "measurement", "step", "time", "value"]
PAST = "[past]"


@dataclass
class ModelOptions:
    backend: str = "embedded"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    model_path: str | None = None

    def make(self) -> Backend:
        from concordia_like.cli.common import backend_options

        path = Path(self.model_path) if self.model_path else None
        return make_backend(
            self.backend,
            **backend_options(self.backend, self.base_url, self.model, self.api_key, path),
        )

    def recorded(self) -> dict[str, Any]:
        """What a run records of its model (never the key)."""
        return {"backend": self.backend, "model": self.model, "base_url": self.base_url}


@dataclass
class Settings:
    out: Path
    seeds: list[int]
    model: ModelOptions = field(default_factory=ModelOptions)
    #: continue every condition of a seed from one run of their shared past
    fork: bool = True
    cache_mode: str = "readwrite"


class Tracker:
    """What the runner says of its progress (the CLI draws bars); no-ops here."""

    def run_started(self, key: str, total: int, done: int) -> None: ...
    def step_done(self, key: str) -> None: ...
    def run_finished(self, key: str, note: str) -> None: ...


class SharedBackend(Backend):
    """One backend seen by many runs: each run's model closes it, so closing is left
    to whoever made it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch = inner.max_batch
        self.concurrent_batches = inner.concurrent_batches

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        return await self.inner.generate_batch(requests)


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing (a kill leaves the old one or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


# -- one seed ----------------------------------------------------------------------------


class SeedRunner:
    """Every condition of a scenario for one seed, in one process and one batcher."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        settings: Settings,
        backend: Backend,
        batcher: Batcher,
        tracker: Tracker | None = None,
    ) -> None:
        self.scenario, self.seed, self.settings = scenario, seed, settings
        self.backend, self.batcher = backend, batcher
        self.tracker = tracker or Tracker()
        self.root = settings.out / "runs" / f"seed-{seed}"
        self.index_path = self.root / "index.json"
        self.index: dict[str, str] = (
            json.loads(self.index_path.read_text()) if self.index_path.exists() else {}
        )
        self.steps_run = 0

    def result_path(self, condition: str) -> Path:
        return self.root / "results" / f"{condition}.json"

    def _save_index(self) -> None:
        write_atomic(self.index_path, _json(self.index))

    def _factory(self, folder: Path) -> LanguageModel:
        mode = self.settings.cache_mode
        cache = None if mode == "off" else ResponseCache(folder / "cache.sqlite", mode)  # type: ignore[arg-type]
        lm = LanguageModel(SharedBackend(self.backend), cache=cache)
        lm.batcher = self.batcher  # the runs of this process meet in one batcher
        return lm

    def _start(self, label: str) -> Simulation:
        spec = self.scenario.spec
        sim = start_run(
            self.scenario.build_world(),
            self._factory,
            engine=spec.engine,
            seed=self.seed,
            root=self.root,
            sampling={p: o.model_dump(exclude_none=True) for p, o in spec.sampling.items()},
            config={
                **self.settings.model.recorded(),
                "experiment": spec.name,
                "condition": label,
            },
        )
        self.index[label] = sim.run_id
        self._save_index()
        return sim

    def _open(self, run_id: str, hooks: list[Any]) -> Simulation:
        sim = resume_run(
            run_id, self._factory, world_path=self.scenario.build_world(), root=self.root
        )
        self._hook(sim, hooks, resumed=True)
        return sim

    @staticmethod
    def _hook(sim: Simulation, hooks: list[Any], *, resumed: bool) -> None:
        sim.hooks.extend(hooks)
        if resumed:
            cp = sim.recorder.last_checkpoint(sim.run_id)
            restore_hooks(sim.hooks, cp.agents.get(HOOKS_KEY) if cp is not None else None)

    def _stopped(self, sim: Simulation, measures: Measurements, limit: int) -> bool:
        if sim.step >= limit:
            return True
        when = self.scenario.spec.stop.when
        return when is not None and sim.step > 0 and measures.predicate(sim, when)

    async def _advance(
        self,
        sim: Simulation,
        measures: Measurements,
        limit: int,
        key: str,
        interventions: Interventions | None = None,
    ) -> None:
        self.tracker.run_started(key, limit, sim.step)
        while not self._stopped(sim, measures, limit):
            if interventions is not None:
                interventions.plant_due(sim, sim.step + 1)
            await sim.run_step()
            self.steps_run += 1
            self.tracker.step_done(key)

    async def run(self) -> dict[str, Any]:
        """Run what is left of this seed; what was done, for the report."""
        conditions = self.scenario.conditions
        pending = [c for c in conditions if not self.result_path(c).exists()]
        skipped = len(conditions) - len(pending)
        shared = self.scenario.shared_steps() if self.settings.fork else 0
        resumed = sum(1 for c in pending if c in self.index)
        past: Simulation | None = None
        if shared > 0 and any(c not in self.index for c in pending):
            measures = Measurements(self.scenario)
            if PAST in self.index:
                past = self._open(self.index[PAST], [measures])
            else:
                past = self._start(PAST)
                self._hook(past, [measures], resumed=False)
            await self._advance(past, measures, shared, f"seed {self.seed} shared past")
            self.tracker.run_finished(f"seed {self.seed} shared past", f"{past.step} steps")
        try:
            await asyncio.gather(*(self._condition(c, past, shared) for c in pending))
        finally:
            if past is not None:
                await past.aclose()
        return {
            "seed": self.seed,
            "skipped": skipped,
            "resumed": resumed,
            "ran": len(pending),
            "steps_run": self.steps_run,
        }

    async def _condition(self, condition: str, past: Simulation | None, shared: int) -> None:
        key = f"seed {self.seed} {condition}"
        interventions = Interventions(self.scenario, condition)
        measures = Measurements(self.scenario)
        if condition in self.index:
            sim = self._open(self.index[condition], [interventions, measures])
        elif past is not None:
            self.index[condition] = fork_run(past, self.root, None, condition)
            self._save_index()
            sim = self._open(self.index[condition], [interventions, measures])
        else:
            sim = self._start(condition)
            self._hook(sim, [interventions, measures], resumed=False)
        row = sim.recorder.run(sim.run_id)
        from_past = int((row.config.get("forked_from") or {}).get("step", 0))
        async with sim:
            await self._advance(sim, measures, self.scenario.max_steps, key, interventions)
            measures.take_end(sim)
            asked = await questions(sim, self.scenario)
            usage = sim.usage()["total"]
        when = measures.rows[-1]["time"] if measures.rows else sim.state.now.isoformat()
        rows = [*measures.rows]
        rows += [
            {"measurement": n, "step": sim.step, "time": when, "value": v} for n, v, _ in asked
        ]
        result = {
            "condition": condition,
            "seed": self.seed,
            "run_id": sim.run_id,
            "steps": sim.step,
            "from_past": from_past,
            "model_calls": usage.get("calls", 0),
            "rows": [{"condition": condition, "seed": self.seed, **r} for r in rows],
            "answers": {n: d for n, _, d in asked},
        }
        write_atomic(self.result_path(condition), _json(result))
        self.tracker.run_finished(key, f"{sim.step} steps")


# -- the experiment ----------------------------------------------------------------------


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


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("concordia-like")
    except PackageNotFoundError:
        return "unknown"


def _world_digest(scenario: Scenario) -> str:
    import hashlib

    h = hashlib.sha256(scenario.world_path.read_bytes())
    for card in sorted(scenario.world.personas):
        h.update(card.encode())
    return h.hexdigest()[:16]


def check_out(scenario: Scenario, out: Path) -> dict[str, Any] | None:
    """The manifest of an experiment already in `out`, refused if of another scenario
    (or not an experiment's folder at all)."""
    manifest = out / "manifest.json"
    if not manifest.exists():
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"--out {out} is not empty and holds no experiment: choose another")
        return None
    old = json.loads(manifest.read_text())
    if old.get("scenario_hash") != scenario.digest():
        raise ConfigError(
            f"--out {out} holds an experiment of another scenario ({old.get('scenario')}, or "
            "this file changed since): choose another folder"
        )
    return old


def run_experiment(
    scenario: Scenario,
    settings: Settings,
    *,
    tracker: Tracker | None = None,
    executor: str = "local",
    address: str | None = None,
    worker_setup: str | None = None,
    worker_env: dict[str, str] | None = None,
    backend: Backend | None = None,
) -> Report:
    """Run (or finish) the experiment and write its tables, manifest and plot. The
    local executor makes its backend from `settings.model` unless given one (it is
    closed at the end either way)."""
    out = settings.out
    old = check_out(scenario, out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "scenario": str(scenario.path),
        "scenario_name": scenario.name,
        "scenario_hash": scenario.digest(),
        "world": str(scenario.world_path),
        "world_hash": _world_digest(scenario),
        "package_version": _version(),
        "git_revision": _git_revision(),
        **settings.model.recorded(),
        "engine": scenario.spec.engine,
        "sampling": {p: o.model_dump(exclude_none=True) for p, o in scenario.spec.sampling.items()},
        "conditions": scenario.conditions,
        "control": scenario.control,
        "seeds": settings.seeds,
        "fork": settings.fork,
        "shared_steps": scenario.shared_steps() if settings.fork else 0,
        "executor": executor,
        "started": (old or {}).get("started") or datetime.now().isoformat(timespec="seconds"),
        "ended": None,
        "replayable": settings.cache_mode == "readwrite",
    }
    write_atomic(out / "manifest.json", _json(manifest))
    if executor == "local":
        seeds = asyncio.run(_local(scenario, settings, tracker, backend))
    elif executor == "ray":
        seeds = _ray(scenario, settings, tracker, address, worker_setup, worker_env)
    else:
        raise ConfigError(f"--executor must be local or ray, not {executor!r}")
    report = collect(scenario, settings)
    report.seeds = seeds
    write_outputs(report, scenario)
    manifest["ended"] = datetime.now().isoformat(timespec="seconds")
    manifest["steps_computed"], manifest["steps_total"] = report.steps_computed, report.steps_total
    write_atomic(out / "manifest.json", _json(manifest))
    return report


async def _local(
    scenario: Scenario, settings: Settings, tracker: Tracker | None, backend: Backend | None
) -> list[dict[str, Any]]:
    backend = backend or settings.model.make()
    batcher = Batcher(backend)
    try:
        return list(
            await asyncio.gather(
                *(
                    SeedRunner(scenario, s, settings, backend, batcher, tracker).run()
                    for s in settings.seeds
                )
            )
        )
    finally:
        await backend.aclose()


def run_seed_task(
    scenario_path: str, seed: int, settings: dict[str, Any], setup: str | None = None
) -> dict[str, Any]:
    """One seed in a worker process (the Ray executor's task)."""
    if setup:
        module, _, fn = setup.partition(":")
        getattr(importlib.import_module(module), fn)()
    scenario = load_scenario(scenario_path)
    s = Settings(
        out=Path(settings["out"]),
        seeds=[seed],
        model=ModelOptions(**settings["model"]),
        fork=settings["fork"],
        cache_mode=settings["cache_mode"],
    )

    async def go() -> dict[str, Any]:
        backend = s.model.make()
        try:
            return await SeedRunner(scenario, seed, s, backend, Batcher(backend)).run()
        finally:
            await backend.aclose()

    return asyncio.run(go())


def _ray(
    scenario: Scenario,
    settings: Settings,
    tracker: Tracker | None,
    address: str | None,
    setup: str | None,
    env: dict[str, str] | None,
) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'concordia-like[ray]'") from None
    tracker = tracker or Tracker()
    started = not ray.is_initialized()
    if started:
        runtime_env = {"env_vars": env} if env else None
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(
                num_cpus=max(1, min(len(settings.seeds), os.cpu_count() or 1)),
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                runtime_env=runtime_env,
                log_to_driver=False,
            )
    try:
        task = ray.remote(run_seed_task)
        data = {**asdict(settings), "out": str(settings.out.resolve())}
        data.pop("seeds")
        path = str(scenario.path.resolve())
        refs = {task.remote(path, s, data, setup): s for s in settings.seeds}
        for s in settings.seeds:
            tracker.run_started(f"seed {s}", 1, 0)
        done: list[dict[str, Any]] = []
        waiting = list(refs)
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1)
            for ref in ready:
                done.append(ray.get(ref))
                tracker.step_done(f"seed {refs[ref]}")
                tracker.run_finished(f"seed {refs[ref]}", "done")
        return sorted(done, key=lambda d: d["seed"])
    finally:
        if started:
            ray.shutdown()


# -- outputs -----------------------------------------------------------------------------


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
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
