"""`concordia-like dialogues`: synthetic dialogue data from a world, or from earlier runs.

    concordia-like dialogues --world W --conversations N --turns T --out FILE
        [--format openai|sharegpt|trl|records] [--parquet DIR] ...
    concordia-like dialogues --from-run RUN [--from-run RUN2 ...] --out FILE ...

Generation is resumable: its state lives in a work folder (FILE's name with `.work`,
or `--work`); the same command run again after a kill goes on where it stopped. The
output, its statistics (`FILE`'s name with `.stats.json`) and the Parquet folder are
each written whole at the end, or not at all."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from concordia_like.cli.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ModelOpt,
    ModelPathOpt,
    checked_store,
    console,
    user_errors,
)
from concordia_like.dialogue.exporters import (
    FORMATS,
    PARQUET_OUTPUTS,
    TRAIN_ON,
    TRL_STYLES,
    all_samples,
    write_jsonl,
    write_parquet,
)
from concordia_like.dialogue.filters import FilterConfig, select, statistics_of
from concordia_like.engine.runs import DEFAULT_ROOT, read_run, run_folder, store_url_for
from concordia_like.errors import ConfigError
from concordia_like.files import check_replaceable, write_atomic
from concordia_like.llm.sampling import parse_overrides
from concordia_like.text import shown
from concordia_like.world.loader import World, load_world


def stats_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.stats.json")


def work_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.work")


def _print_stats(stats: dict[str, Any], out: Path, samples: int) -> None:
    t = Table(
        title=f"{shown(out)}: {samples} samples from {stats['kept']} conversations",
        title_justify="left",
    )
    t.add_column("what")
    t.add_column("value", overflow="fold")
    t.add_row(
        "conversations",
        f"{stats['conversations']} ({stats['kept']} kept, {stats['dropped']} dropped)",
    )
    for reason, n in stats["dropped_by_reason"].items():
        t.add_row(f"  dropped: {shown(reason)}", str(n))
    t.add_row("turns (median, p95)", f"{stats['turns']['median']}, {stats['turns']['p95']}")
    t.add_row(
        "words per turn (median, p95)",
        f"{stats['turn_words']['median']}, {stats['turn_words']['p95']}",
    )
    t.add_row("speaker balance (top share)", str(stats["speaker_balance"]["mean_top_share"]))
    cov = stats["persona_coverage"]
    t.add_row("persona coverage", f"{cov['covered']} of {cov['of']}")
    t.add_row("distinct-2", str(stats["distinct_2"]))
    console.print(t)


def _from_runs(
    runs: list[str], root: Path, store: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    from concordia_like.dialogue.records import conversations_of_run
    from concordia_like.engine.recorder import RunRecorder

    worlds: dict[str, World] = {}
    records: list[dict[str, Any]] = []
    personas: set[str] = set()
    for run_id in runs:
        row = read_run(run_id, store=store, root=root)
        if row.world_path not in worlds:
            if not Path(row.world_path).is_file():
                raise ConfigError(
                    f"run {run_id}: its world file {row.world_path} does not exist (it is "
                    "needed for the personas and the situation)"
                )
            worlds[row.world_path] = load_world(row.world_path)
        world = worlds[row.world_path]
        personas |= set(world.personas)
        recorder = RunRecorder(store_url_for(run_folder(run_id, root), store))
        try:
            records += conversations_of_run(recorder, run_id, world)
        finally:
            recorder.close()
    return records, sorted(personas)


@user_errors
def dialogues(
    out: Annotated[Path, typer.Option("--out", help="output file (JSON Lines)")],
    world: Annotated[
        Path | None, typer.Option("--world", help="world file to generate conversations in")
    ] = None,
    conversations: Annotated[
        int | None,
        typer.Option(help="conversations to keep (generated until the filters keep this many)"),
    ] = None,
    turns: Annotated[int, typer.Option(help="turns (utterances) per conversation")] = 6,
    fmt: Annotated[
        str, typer.Option("--format", help="openai, sharegpt, trl or records")
    ] = "openai",
    trl_style: Annotated[
        str, typer.Option(help="trl: messages (conversational) or prompt_completion")
    ] = "messages",
    train_on: Annotated[
        str,
        typer.Option(help="openai: all assistant turns, or only the last (weight 0 on others)"),
    ] = "all",
    parquet: Annotated[
        Path | None, typer.Option(help="also write a Hugging Face datasets folder here")
    ] = None,
    from_run: Annotated[
        list[str] | None,
        typer.Option("--from-run", help="export the conversations of this run (repeatable)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the job: who, where, about what")] = 0,
    parallel: Annotated[int, typer.Option(help="conversations run together")] = 8,
    max_attempts: Annotated[
        int | None,
        typer.Option(help="conversations generated at most (default: 3 x --conversations)"),
    ] = None,
    min_turns: Annotated[int, typer.Option(help="a kept conversation's fewest turns")] = 2,
    dedup_threshold: Annotated[
        float, typer.Option(help="Jaccard similarity above which conversations are duplicates")
    ] = 0.7,
    dedup: Annotated[
        bool, typer.Option("--dedup/--no-dedup", help="drop near-duplicates (or keep them)")
    ] = True,
    work: Annotated[
        Path | None, typer.Option(help="work folder of the job (default: OUT's name + .work)")
    ] = None,
    sampling: Annotated[
        list[str] | None,
        typer.Option(help="sampling of one purpose, PURPOSE=T or PURPOSE.top_p=P; repeatable"),
    ] = None,
    root: Annotated[Path, typer.Option(help="where --from-run runs live")] = DEFAULT_ROOT,
    store: Annotated[str | None, typer.Option(help="SQLAlchemy URL of --from-run's store")] = None,
    backend: Annotated[
        str, typer.Option("--backend", "-b", help="embedded, openai, vllm, langchain or scripted")
    ] = "embedded",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
) -> None:
    """Generate persona-grounded conversations in a world (or export earlier runs') as
    training data, filtered and deduplicated, with statistics."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if trl_style not in TRL_STYLES:
        raise ConfigError(f"--trl-style must be one of {', '.join(TRL_STYLES)}, not {trl_style!r}")
    if train_on not in TRAIN_ON:
        raise ConfigError(f"--train-on must be one of {', '.join(TRAIN_ON)}, not {train_on!r}")
    if (world is None) == (not from_run):
        raise ConfigError("give either --world (to generate) or --from-run RUN (to export)")
    if turns < 2:
        raise ConfigError(f"--turns must be at least 2, not {turns}")
    if conversations is not None and conversations < 1:
        raise ConfigError(f"--conversations must be at least 1, not {conversations}")
    if parallel < 1:
        raise ConfigError(f"--parallel must be at least 1, not {parallel}")
    if max_attempts is not None and max_attempts < 1:
        raise ConfigError(f"--max-attempts must be at least 1, not {max_attempts}")
    store = checked_store(store)
    if not 0.0 < dedup_threshold <= 1.0:
        raise ConfigError(f"--dedup-threshold must be within (0, 1], not {dedup_threshold}")
    if out.exists() and out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file")
    try:
        overrides = parse_overrides(sampling or [])
    except ValueError as exc:
        raise ConfigError(f"--sampling: {exc}") from None
    if parquet is not None:
        check_replaceable(parquet, PARQUET_OUTPUTS)
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--parquet needs pyarrow: pip install 'concordia-like[parquet]'"
            ) from None
    filters = FilterConfig(min_turns=min_turns, dedup_threshold=dedup_threshold, dedup=dedup)
    if from_run:
        records, personas = _from_runs(list(from_run), root, store)
        selection = select(records, filters, limit=conversations)
    else:
        assert world is not None
        if conversations is None:
            raise ConfigError("--conversations N is needed to generate")
        if not world.exists():
            raise ConfigError(f"world file {world} does not exist")
        from concordia_like.dialogue.job import check_work

        check_work(work or work_path(out))
        loaded = load_world(world)
        if len(loaded.personas) < 2:
            raise ConfigError(f"world file {world}: a conversation needs two residents")
        selection, personas = _generate(
            loaded,
            conversations=conversations,
            turns=turns,
            seed=seed,
            parallel=parallel,
            filters=filters,
            max_attempts=max_attempts or 3 * conversations,
            work=work or work_path(out),
            overrides=overrides,
            backend=backend,
            base_url=base_url,
            model=model,
            api_key=api_key,
            model_path=model_path,
        )
    rows = all_samples(selection.kept, fmt, trl_style=trl_style, train_on=train_on)
    stats = statistics_of(selection, personas, filters)
    stats.update(format=fmt, samples=len(rows), output=str(out))
    if parquet is not None:
        write_parquet(parquet, rows, fmt=fmt, stats=stats, records=selection.kept)
    write_atomic(stats_path(out), json.dumps(stats, indent=1, ensure_ascii=False) + "\n")
    write_jsonl(out, rows)
    _print_stats(stats, out, len(rows))
    if conversations is not None and len(selection.kept) < conversations:
        console.print(
            f"[yellow]note: only {len(selection.kept)} of {conversations} conversations "
            "passed the filters[/] (see the drops in the statistics; raise --max-attempts "
            "to generate more)",
            soft_wrap=True,
        )
    console.print(f"statistics: {shown(stats_path(out))}", soft_wrap=True)
    if parquet is not None:
        console.print(f"parquet: {shown(parquet)}", soft_wrap=True)


def _generate(
    world: World,
    *,
    conversations: int,
    turns: int,
    seed: int,
    parallel: int,
    filters: FilterConfig,
    max_attempts: int,
    work: Path,
    overrides: dict[str, dict[str, float]],
    backend: str,
    base_url: str | list[str] | None,
    model: str | None,
    api_key: str | None,
    model_path: Path | None,
):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from concordia_like.dialogue.job import run_job
    from concordia_like.llm import BackendOptions, open_model
    from concordia_like.llm.scripted import ScriptedBackend

    if backend == "scripted":
        console.print("[yellow]note: the scripted backend is a test double, not a model[/]")
    options = BackendOptions(backend, model, base_url, api_key, model_path)
    lm = open_model(options)
    inner = lm.backend
    if isinstance(inner, ScriptedBackend):
        from concordia_like.dialogue.scripted import add_speech_rule

        add_speech_rule(inner)
    # what the job records of its model: the model the backend reports, not the flag
    job = {**options.recorded(), "model": inner.model, "sampling": overrides or None}

    async def go():
        async with lm:
            with Progress(
                TextColumn("[bold]conversations"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task("", total=None)
                return await run_job(
                    world,
                    lm,
                    work,
                    conversations=conversations,
                    turns=turns,
                    seed=seed,
                    parallel=parallel,
                    filters=filters,
                    max_attempts=max_attempts,
                    job=job,
                    sampling=overrides or None,
                    on_done=lambda _r: progress.advance(task),
                )

    from concordia_like.engine.simulation import StepAborted

    try:
        result = asyncio.run(go())
    except StepAborted as exc:
        raise ConfigError(
            f"{exc}; the conversations finished so far are kept in {work}: run the same "
            "command again to go on"
        ) from exc
    console.print(
        f"generated {result.attempted} conversations in {shown(work)} "
        f"({shown(inner.name)}:{shown(inner.model)})",
        soft_wrap=True,
    )
    return result.selection, sorted(world.personas)
