"""`concordia-like experiment SCENARIO --seeds K --out DIR`: every condition of a scenario
for every seed, with a progress bar per run and one overall, then the summary table;
`concordia-like experiment report DIR [--compare DIR2]` prints a summary again."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from concordia_like.cli.common import (
    ApiKeyOpt,
    AttentionOpt,
    BaseUrlOpt,
    IdleStepsOpt,
    ModelOpt,
    ModelPathOpt,
    OptionalBackendOpt,
    RequestTimeoutOpt,
    attention_overrides,
    check_root,
    check_seconds,
    console,
    user_errors,
)
from concordia_like.errors import ConfigError
from concordia_like.experiments.outputs import Report
from concordia_like.experiments.settings import Settings, Tracker
from concordia_like.llm import BackendOptions
from concordia_like.llm.cache import CACHE_MODES
from concordia_like.text import shown


class BarTracker(Tracker):
    """A bar per run and one overall (runs complete of all)."""

    def __init__(self, progress: Progress, runs: int) -> None:
        self.progress = progress
        self.overall = progress.add_task("[bold]experiment (runs)", total=runs)
        self.tasks: dict[str, TaskID] = {}

    def run_started(self, key: str, total: int, done: int) -> None:
        if key in self.tasks:
            self.progress.update(self.tasks[key], total=total, completed=done)
        else:
            self.tasks[key] = self.progress.add_task(key, total=total, completed=done)

    def step_done(self, key: str) -> None:
        self.progress.advance(self.tasks[key])

    def run_finished(self, key: str, note: str) -> None:
        if key in self.tasks:
            self.progress.remove_task(self.tasks.pop(key))
        if not key.endswith("shared past"):
            self.progress.advance(self.overall)
        self.progress.console.print(f"  {shown(key)}: done ({shown(note)})", highlight=False)


def _fmt(v: Any) -> str:
    if v in (None, ""):
        return ""
    x = float(v)
    return "" if math.isnan(x) else f"{x:.3g}"


def _interval(m: Any, lo: Any, hi: Any) -> str:
    if not _fmt(m):
        return ""
    return f"{_fmt(m)} [{_fmt(lo)}, {_fmt(hi)}]" if _fmt(lo) else _fmt(m)


def summary_table(rows: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=shown(title), title_justify="left")
    t.add_column("measurement")
    t.add_column("condition")
    t.add_column("n", justify="right")
    t.add_column("mean [95% CI]", justify="right")
    t.add_column("vs control [95% CI]", justify="right")
    for r in rows:
        t.add_row(
            shown(r["measurement"]),
            shown(r["condition"]),
            str(r["n"]),
            _interval(r["mean"], r["ci_low"], r["ci_high"]),
            _interval(r["diff"], r["diff_low"], r["diff_high"]),
        )
    return t


def read_summary(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest, summary = folder / "manifest.json", folder / "summary.csv"
    if not manifest.is_file() or not summary.is_file():
        raise ConfigError(f"{folder} holds no finished experiment (manifest.json, summary.csv)")
    with summary.open() as f:
        return json.loads(manifest.read_text()), list(csv.DictReader(f))


def _report(folder: Path, compare: Path | None) -> None:
    manifest, rows = read_summary(folder)
    if compare is None:
        console.print(summary_table(rows, f"{manifest['scenario_name']} ({folder})"))
        return
    _, other = read_summary(compare)
    by_key = {(r["measurement"], r["condition"]): r for r in other}
    t = Table(title=shown(f"{folder} vs {compare}"), title_justify="left")
    for col in ("measurement", "condition", f"mean ({folder.name})", f"mean ({compare.name})"):
        t.add_column(shown(col))
    keys = [(r["measurement"], r["condition"]) for r in rows]
    keys += [k for k in by_key if k not in set(keys)]
    mine = {(r["measurement"], r["condition"]): r for r in rows}
    for k in keys:
        a, b = mine.get(k), by_key.get(k)
        a_mean, b_mean = _fmt(a["mean"]) if a else "-", _fmt(b["mean"]) if b else "-"
        t.add_row(shown(k[0]), shown(k[1]), a_mean, b_mean)
    console.print(t)


@user_errors
def experiment(
    target: Annotated[
        str, typer.Argument(help="scenario file (worlds/scenarios/*.yaml), or `report`")
    ],
    folder: Annotated[
        Path | None, typer.Argument(help="with `report`: the experiment's --out folder")
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help="run seeds 0..K-1 (default: the scenario's seeds)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="folder of the experiment's runs and tables")
    ] = None,
    executor: Annotated[str, typer.Option(help="local (one process) or ray")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: start a local one)")
    ] = None,
    fork: Annotated[
        bool, typer.Option(help="continue each condition from one run of the shared past")
    ] = True,
    cache_mode: Annotated[
        str, typer.Option(help="off or readwrite (the runs' caches)")
    ] = "readwrite",
    attention: AttentionOpt = None,
    idle_steps: IdleStepsOpt = None,
    compare: Annotated[
        Path | None, typer.Option(help="with `report`: another experiment side by side")
    ] = None,
    request_timeout: RequestTimeoutOpt = None,
    backend: OptionalBackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Run every condition of a scenario for every seed; write the tidy table, the
    summary, a manifest and a plot into --out (`experiment report DIR` shows it again)."""
    if target == "report":
        if folder is None:
            raise ConfigError("experiment report DIR: name the experiment's folder")
        _report(folder, compare)
        return
    if folder is not None:
        raise ConfigError(f"unexpected argument {folder} (only `report` takes a folder)")
    from concordia_like.experiments.runner import run_experiment
    from concordia_like.experiments.scenario import load_scenario

    if out is None:
        raise ConfigError("--out DIR is needed: where the experiment keeps its runs and tables")
    if seeds is not None and not 1 <= seeds <= 1000:
        raise ConfigError(f"--seeds must be from 1 to 1000, not {seeds}")
    if cache_mode not in CACHE_MODES or cache_mode == "replay":
        raise ConfigError(f"--cache-mode must be off or readwrite, not {cache_mode!r}")
    if executor not in ("local", "ray"):
        raise ConfigError(f"--executor must be local or ray, not {executor!r}")
    check_root(out, "--out")
    check_seconds(request_timeout, "--request-timeout")
    attend = attention_overrides(attention, idle_steps)
    scenario = load_scenario(target)
    # the flags given, and the scenario's model for what they leave unset
    options = BackendOptions(
        backend, model, base_url, api_key, model_path, request_timeout
    ).or_recorded(scenario.spec.model.model_dump())
    if options.name == "scripted":
        console.print("[yellow]note: the scripted backend is a test double, not a model[/]")
    settings = Settings(
        out=out,
        seeds=scenario.spec.seed_list(seeds),
        model=options,
        fork=fork,
        cache_mode=cache_mode,
        attention=attend,
    )
    runs = len(settings.seeds) * len(scenario.conditions)
    console.print(
        f"experiment [bold]{shown(scenario.name)}[/]: {len(scenario.conditions)} conditions x "
        f"{len(settings.seeds)} seeds, {scenario.max_steps} steps each"
        + (
            f", the first {scenario.shared_steps()} shared"
            if fork and scenario.shared_steps()
            else ""
        )
        + f"; out: {out}",
        soft_wrap=True,
        highlight=False,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        report = run_experiment(
            scenario,
            settings,
            tracker=BarTracker(progress, runs),
            executor=executor,
            address=address,
        )
    print_report(report, scenario.name)


def print_report(report: Report, name: str) -> None:
    done = sum(s["ran"] for s in report.seeds)
    skipped = sum(s["skipped"] for s in report.seeds)
    resumed = sum(s["resumed"] for s in report.seeds)
    console.print(
        f"{done} runs done ({resumed} resumed), {skipped} already complete skipped; "
        f"{sum(s['steps_run'] for s in report.seeds)} steps run now",
        highlight=False,
    )
    console.print(summary_table(report.summary, name))
    console.print(
        f"forks from the shared past: {report.steps_computed} steps computed for "
        f"{report.steps_total} steps of runs ({report.saved_share:.0%} saved)",
        highlight=False,
    )
    written = ", ".join(
        p.name
        for p in (
            report.out / n
            for n in (
                "measurements.csv",
                "measurements.parquet",
                "summary.csv",
                "manifest.json",
                "measurements.png",
            )
        )
        if p.exists()
    )
    console.print(f"wrote {written} in {shown(report.out)}", soft_wrap=True, highlight=False)
