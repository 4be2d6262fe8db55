"""`concordia-like run WORLD --steps N`: run a world, or resume a run, with a progress
bar and a short digest of each step."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from concordia_like.cli.common import (
    ApiKeyOpt,
    AttentionOpt,
    BaseUrlOpt,
    IdleStepsOpt,
    ModelOpt,
    ModelPathOpt,
    OptionalBackendOpt,
    RequestTimeoutOpt,
    StepTimeoutOpt,
    attention_overrides,
    check_root,
    check_seconds,
    check_seed,
    checked_store,
    console,
    user_errors,
)
from concordia_like.engine.runs import DEFAULT_ROOT, read_run, resume_run, start_run
from concordia_like.engine.simulation import Simulation, StepAborted, StepReport
from concordia_like.errors import ConfigError
from concordia_like.llm import BackendOptions, LanguageModel, open_model, run_models
from concordia_like.llm.cache import CACHE_MODES
from concordia_like.llm.sampling import parse_overrides
from concordia_like.text import shown
from concordia_like.world.persona import parse_hhmm


def digest(report: StepReport, limit: int = 3) -> str:
    kinds: dict[str, int] = {}
    for e in report.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    lines = [f"[bold]step {report.step}[/] {report.sim_time:%a %H:%M} ({counts})"]
    picked = [e for e in report.events if e.kind in ("speech", "announcement", "failure")]
    picked += [e for e in report.events if e.kind == "action"]
    lines += [f"  {shown(e.text[:110])}" for e in picked[:limit]]
    return "\n".join(lines)


async def _run(
    lm: LanguageModel, sim: Simulation, steps: int, quiet: bool, resume_cmd: str
) -> None:
    """Run to `steps`, closing the run and the model on every path; an aborted step
    becomes one error line that says what is committed and how to go on."""
    async with lm, sim:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task(f"{sim.world.name}", total=steps, completed=sim.step)
            while sim.step < steps:
                try:
                    report = await sim.run_step()
                except StepAborted as exc:
                    raise ConfigError(
                        f"{exc}; last committed step: {exc.last_committed}; "
                        f"resume with: {resume_cmd}"
                    ) from exc
                progress.update(task, advance=1)
                if not quiet:
                    progress.console.print(digest(report), highlight=False)


@user_errors
def run(
    world: Annotated[Path, typer.Argument(help="world file, e.g. worlds/town.yaml")],
    steps: Annotated[
        int, typer.Option(help="total steps of the run (a resumed run goes on to it)")
    ] = 10,
    engine: Annotated[str | None, typer.Option(help="simultaneous (default) or sequential")] = None,
    seed: Annotated[
        int | None, typer.Option(help="seed of the run: order, sampling (default 0)")
    ] = None,
    sampling: Annotated[
        list[str] | None,
        typer.Option(
            help="sampling of one purpose (act, speech, resolve, plan, reflect, importance): "
            "PURPOSE=TEMPERATURE or PURPOSE.top_p=P; repeatable"
        ),
    ] = None,
    allow_change: Annotated[
        bool,
        typer.Option(
            help="resume even with another backend, model, engine, sampling, attention or "
            "world content (the change is recorded in the run)"
        ),
    ] = False,
    attention: AttentionOpt = None,
    idle_steps: IdleStepsOpt = None,
    store: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL of the store (default: SQLite in the run folder)"),
    ] = None,
    chroma_url: Annotated[
        str | None,
        typer.Option(
            help="Chroma server for the vector index (default: chroma/ in the run folder)"
        ),
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="run id to resume from its last committed step")
    ] = None,
    root: Annotated[Path, typer.Option(help="folder where runs keep their stores")] = DEFAULT_ROOT,
    cache_mode: Annotated[str, typer.Option(help="off, readwrite or replay")] = "readwrite",
    cache: Annotated[
        Path | None, typer.Option(help="response cache file (default: in the run folder)")
    ] = None,
    faults: Annotated[
        float, typer.Option(help="inject faulty model output into this fraction of calls")
    ] = 0.0,
    quiet: Annotated[bool, typer.Option(help="no per-step digest")] = False,
    request_timeout: RequestTimeoutOpt = None,
    step_timeout: StepTimeoutOpt = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", help="begin at this time (HH:MM) of the world's first day (a new run)"
        ),
    ] = None,
    backend: OptionalBackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Run a world for N steps (or resume a run) and print the run id and its store."""
    store = checked_store(store)
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, not {steps}")
    if cache_mode not in CACHE_MODES:
        raise ConfigError(
            f"--cache-mode must be one of {', '.join(CACHE_MODES)}, not {cache_mode!r}"
        )
    if not 0.0 <= faults <= 1.0:
        raise ConfigError(f"--faults must be within 0..1, not {faults}")
    check_seed(seed)
    check_seconds(request_timeout, "--request-timeout")
    check_seconds(step_timeout, "--step-timeout")
    check_root(root)
    if cache is not None and cache.exists() and not cache.is_file():
        raise ConfigError(f"--cache {cache} is not a file")
    if not world.is_file():
        raise ConfigError(f"world file {world} does not exist")
    if start is not None:
        if resume is not None:
            raise ConfigError("--start begins a new run; a resumed run goes on from its clock")
        try:
            parse_hhmm(start)
        except ValueError as exc:
            raise ConfigError(f"--start: {exc}") from None
    try:
        overrides = parse_overrides(sampling or [])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    attend = attention_overrides(attention, idle_steps)
    options = BackendOptions(backend, model, base_url, api_key, model_path, request_timeout)
    if resume is not None:
        # a resume goes on as the run was recorded: its backend options, seed and faults
        row = read_run(resume, store=store, root=root)
        recorded = row.config or {}
        options = options.or_recorded(recorded)
        if seed is not None and seed != row.seed:
            raise ConfigError(f"run {resume} has seed {row.seed}; --seed {seed} cannot change it")
        if chroma_url is not None and chroma_url != recorded.get("chroma_url"):
            raise ConfigError(
                f"run {resume} keeps its index at {recorded.get('chroma_url') or 'chroma/'}; "
                "--chroma-url cannot move it"
            )
        seed, faults = row.seed, recorded.get("faults", faults)
    seed = 0 if seed is None else seed
    if options.name == "scripted":
        console.print("[yellow]note: the scripted backend is a test double, not a model[/]")
    lm = open_model(options, faults=faults, fault_seed=seed)
    lm_factory = run_models(lm, cache_mode, cache)  # type: ignore[arg-type]

    if resume is not None:
        sim = resume_run(
            resume,
            lm_factory,
            world_path=world,
            store=store,
            root=root,
            engine=engine,
            sampling=overrides,
            attention=attend,
            allow_change=allow_change,
        )
        console.print(f"resuming run [bold]{sim.run_id}[/] after step {sim.step}", soft_wrap=True)
    else:
        sim = start_run(
            world,
            lm_factory,
            engine=engine or "simultaneous",  # type: ignore[arg-type]
            seed=seed,
            store=store,
            root=root,
            sampling=overrides,
            attention=attend,
            chroma_url=chroma_url,
            start_time=start,
            config={**options.recorded(), "faults": faults},
        )
        # now, not only at the end: a run killed on the way is resumed by this id
        console.print(
            f"run [bold]{sim.run_id}[/] started; store: {sim.recorder.url}", soft_wrap=True
        )
    sim.step_timeout_s = step_timeout
    resume_cmd = f"concordia-like run {world} --steps {steps} --resume {sim.run_id}"
    if store is not None:
        resume_cmd += f" --store {store}"
    if root != DEFAULT_ROOT:
        resume_cmd += f" --root {root}"
    if cache_mode != "readwrite" or cache is not None:
        resume_cmd += f" --cache-mode {cache_mode}" + (f" --cache {cache}" if cache else "")
    asyncio.run(_run(lm, sim, steps, quiet, resume_cmd))
    total = sim.usage()["total"]
    agent_steps = max(1, sim.step * len(sim.agents))
    console.print(
        f"run [bold]{sim.run_id}[/]: {sim.step} steps of {sim.world.name}, "
        f"{total['calls']} model calls ({total['calls'] / agent_steps:.2f} per agent-step)",
        soft_wrap=True,
    )
    # unwrapped, so that the URL and the command can be copied whole
    console.print(f"store: {sim.recorder.url}", soft_wrap=True)
    console.print(f"timeline: concordia-like log {sim.run_id}", soft_wrap=True)
