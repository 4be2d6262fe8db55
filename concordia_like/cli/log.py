"""`concordia-like log RUN`: the timeline of a run, filtered, or exported as JSON Lines.

The events are shown as they read (`text.shown`: no markup, no control codes) and
exported as they were stored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from concordia_like.cli.common import checked_store, console, user_errors
from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.runs import DEFAULT_ROOT, run_folder, store_url_for
from concordia_like.errors import ConfigError
from concordia_like.files import STDOUT, atomic_writer, is_stream
from concordia_like.text import shown


def open_recorder(run_id: str, store: str | None, root: Path) -> RunRecorder:
    folder = run_folder(run_id, root)
    if store is None and not (folder / "store.sqlite").exists():
        raise ConfigError(f"no run {run_id!r}: {folder / 'store.sqlite'} does not exist")
    return RunRecorder(store_url_for(folder, store))


@user_errors
def log(
    run_id: Annotated[str, typer.Argument(help="the run id that `run` printed")],
    agent: Annotated[str | None, typer.Option(help="only this agent's events")] = None,
    place: Annotated[str | None, typer.Option(help="only events at this place")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="only these kinds (repeatable)")] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="write the events to this JSON Lines file")
    ] = None,
    store: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store")] = None,
    root: Annotated[Path, typer.Option(help="folder where runs keep their stores")] = DEFAULT_ROOT,
    limit: Annotated[int, typer.Option(help="show at most this many events (0: all)")] = 0,
) -> None:
    """Print the timeline of a run (filter by agent, place, kind), or export it."""
    if limit < 0:
        raise ConfigError(f"--limit must be 0 (all) or a number of events, not {limit}")
    store = checked_store(store)
    if jsonl is not None:
        is_stream(jsonl)  # a folder or the like is refused before the store is opened
    recorder = open_recorder(run_id, store, root)
    run = recorder.run(run_id)
    events = list(recorder.events(run_id, agent=agent, place=place, kinds=kind))
    if jsonl is not None:
        with atomic_writer(jsonl) as f:
            for e in events:
                f.write(
                    json.dumps(
                        {
                            "run": run_id,
                            "step": e.step,
                            "seq": e.seq,
                            "time": e.sim_time.isoformat(),
                            "kind": e.kind,
                            "actor": e.actor,
                            "place": e.place,
                            "text": e.text,
                            "data": e.data,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        if str(jsonl) != STDOUT:  # the events themselves go there
            console.print(
                f"{len(events)} events of run {shown(run_id)} written to {shown(jsonl)}",
                soft_wrap=True,
            )
        return
    table = Table(
        title=f"run {shown(run_id)}: {shown(run.world_name)}, {run.steps_done} steps, "
        f"{shown(run.engine)}"
    )
    for col in ("step", "time", "kind", "who", "where", "what"):
        table.add_column(col, overflow="fold")
    picked = events[-limit:] if limit else events
    for e in picked:
        table.add_row(
            str(e.step),
            f"{e.sim_time:%a %H:%M}",
            shown(e.kind),
            shown(e.actor or ""),
            shown(e.place or ""),
            shown(e.text),
        )
    console.print(table)
