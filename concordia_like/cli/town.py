"""`concordia-like town [WORLD]`: the interactive town sandbox (concordia_like/sandbox).

A new town of WORLD, or an earlier one (`--open RUN`), or the list of them (`--list`).
Commands come from the prompt at a terminal, from `--script FILE`, or from stdin when
it is not a terminal; `--tour` runs a short built-in tour instead (what `make run`
does when its input is not a terminal)."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

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
    describe,
    user_errors,
)
from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.runs import DEFAULT_ROOT, read_run, resume_run, start_run, store_url_for
from concordia_like.engine.simulation import Simulation
from concordia_like.errors import ConfigError
from concordia_like.llm import BackendOptions, open_model, run_models
from concordia_like.llm.cache import CACHE_MODES
from concordia_like.sandbox.session import TownSession
from concordia_like.sandbox.terminal import bounded_lines, commands_or, run_lines, run_prompt
from concordia_like.text import shown
from concordia_like.world.persona import parse_hhmm

DEFAULT_WORLD = Path("worlds/town.yaml")
HISTORY = ".town_history"


def tour(sim: Simulation) -> list[str]:
    """The built-in tour: a look, two steps, one resident inspected and interviewed."""
    first = sorted(sim.agents)[0]
    return [
        "look",
        "step 2",
        f"inspect {first}",
        f"interview {first} What are you up to this morning?",
        "stats",
        "quit",
    ]


def list_towns(console: Console, root: Path, store: str | None) -> None:
    """One line per town: id (and label), world, clock, steps, backend, origin; then one
    line per store that cannot be read (the others are listed all the same)."""
    if store is None and root.exists() and not root.is_dir():
        raise ConfigError(f"--root {root} is not a folder")
    urls = [store] if store else [store_url_for(d, None) for d in sorted(root.glob("*/"))]
    lines = []
    unread: list[str] = []
    for url in urls:
        if store is None and not Path(url.split("///", 1)[-1]).exists():
            continue
        try:
            lines += _towns(url)
        except Exception as exc:  # one unreadable store does not hide the others
            why = describe(exc)
            if why is None:
                raise
            unread.append(why if url in why else f"{url}: {why}")
    console.print(f"{len(lines)} towns in {root}" + (":" if lines else ""), soft_wrap=True)
    for _, line in sorted(lines):
        console.print(f"  {shown(line)}", soft_wrap=True)
    for line in unread:
        console.print(f"  cannot read {shown(line)}", soft_wrap=True)


def _towns(url: str) -> list[tuple[datetime, str]]:
    """The list lines of the towns of one store."""
    lines = []
    recorder = RunRecorder(url)
    try:
        for row in recorder.runs():
            cp = recorder.last_checkpoint(row.id)
            when = f"{cp.sim_time:%a %d %b %H:%M}" if cp is not None else "not started"
            config = row.config or {}
            label = f" ({config['label']})" if config.get("label") else ""
            fork = config.get("forked_from")
            origin = f", forked from {fork['run']} step {fork['step']}" if fork else ""
            lines.append(
                (
                    row.created_at,
                    (
                        f"{row.id}{label}  {row.world_name}, {when}, "
                        f"{row.steps_done} steps, {row.backend}{origin}"
                    ),
                )
            )
    finally:
        recorder.close()
    return lines


@user_errors
def town(
    world: Annotated[
        Path, typer.Argument(help="world file (default: worlds/town.yaml)")
    ] = DEFAULT_WORLD,
    open_: Annotated[str | None, typer.Option("--open", help="an earlier town's run id")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the towns and exit")] = False,
    script: Annotated[
        Path | None, typer.Option(help="read commands from this file instead of the prompt")
    ] = None,
    tour_: Annotated[bool, typer.Option("--tour", help="run a short built-in tour and exit")] = (
        False
    ),
    seed: Annotated[int, typer.Option(help="seed of a new town")] = 0,
    start: Annotated[
        str | None,
        typer.Option("--start", help="a new town begins at this time (HH:MM) of its first day"),
    ] = None,
    engine: Annotated[str, typer.Option(help="simultaneous or sequential")] = "simultaneous",
    store: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the store (default: SQLite per town)")
    ] = None,
    root: Annotated[Path, typer.Option(help="folder where towns keep their stores")] = DEFAULT_ROOT,
    cache_mode: Annotated[str, typer.Option(help="off, readwrite or replay")] = "readwrite",
    attention: AttentionOpt = None,
    idle_steps: IdleStepsOpt = None,
    allow_change: Annotated[
        bool,
        typer.Option(
            help="reopen even with another backend, model or world content (the change is "
            "recorded in the town)"
        ),
    ] = False,
    request_timeout: RequestTimeoutOpt = None,
    step_timeout: StepTimeoutOpt = None,
    backend: OptionalBackendOpt = None,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """The interactive town: step, look, inspect, interview, whisper, inject, play, fork."""
    store = checked_store(store)
    interactive = script is None and not tour_ and sys.stdin.isatty()
    console = Console(highlight=False) if interactive else Console(highlight=False, width=100)
    if list_:
        list_towns(console, root, store)
        return
    check_seed(seed)
    check_seconds(request_timeout, "--request-timeout")
    check_seconds(step_timeout, "--step-timeout")
    check_root(root)
    if cache_mode not in CACHE_MODES:
        raise ConfigError(
            f"--cache-mode must be one of {', '.join(CACHE_MODES)}, not {cache_mode!r}"
        )
    if start is not None:
        if open_ is not None:
            raise ConfigError("--start begins a new town; a reopened one goes on from its clock")
        try:
            parse_hhmm(start)
        except ValueError as exc:
            raise ConfigError(f"--start: {exc}") from None
    if script is not None and not script.exists():
        raise ConfigError(f"script {script} does not exist")
    if script is not None and script.is_dir():
        raise ConfigError(f"script {script} is a folder, not a file of commands")
    attend = attention_overrides(attention, idle_steps)
    if attend and open_ is not None:
        raise ConfigError(
            "--attention and --idle-steps set a new town's; a reopened one keeps its own"
        )
    options = BackendOptions(backend, model, base_url, api_key, model_path, request_timeout)
    if open_ is not None:
        row = read_run(open_, store=store, root=root)
        options = options.or_recorded(row.config or {})
        world = Path(row.world_path)
    if not world.is_file():
        raise ConfigError(f"world file {world} does not exist")
    # one loaded model for the session: the town and every fork of it borrow it
    lm = open_model(options)
    lm_factory = run_models(lm, cache_mode)  # type: ignore[arg-type]

    def opener(run_id: str) -> Simulation:
        opened = resume_run(
            run_id, lm_factory, world_path=world, store=store, root=root, allow_change=allow_change
        )
        opened.step_timeout_s = step_timeout
        return opened

    if open_ is not None:
        sim = opener(open_)
        what = f"reopened town {sim.run_id} after step {sim.step}"
    else:
        sim = start_run(
            world,
            lm_factory,
            engine=engine,  # type: ignore[arg-type]
            seed=seed,
            store=store,
            root=root,
            start_time=start,
            attention=attend,
            config={**options.recorded(), "sandbox": True},
        )
        sim.step_timeout_s = step_timeout
        what = f"new town {sim.run_id}"
    note = (
        " [yellow](scripted backend: a test double, not a model)[/]"
        if options.name == "scripted"
        else ""
    )
    console.print(
        f"{shown(sim.world.name)}: {what}, {len(sim.agents)} residents; "
        f"store {shown(sim.recorder.url)}{note}",
        soft_wrap=True,
    )
    console.print("type help for the commands, quit to leave", soft_wrap=True)

    async def main() -> None:
        async with (
            lm,
            TownSession(
                sim, console, opener=opener, root=root, store=store, live=interactive
            ) as session,
        ):
            if interactive:
                await run_prompt(session, root / HISTORY)
            elif tour_:
                await run_lines(session, tour(sim))
            elif script is not None:
                with script.open("rb") as f:
                    await run_lines(session, bounded_lines(f, str(script)))
            else:  # stdin, not a terminal: its commands, or the tour if it has none
                lines = bounded_lines(sys.stdin.buffer, "stdin")
                await run_lines(session, commands_or(lines, tour(sim)))
            console.print(
                f"closed town {session.sim.run_id} after step {session.sim.step}; "
                f"reopen with: concordia-like town --open {session.sim.run_id}",
                soft_wrap=True,
            )

    asyncio.run(main())
