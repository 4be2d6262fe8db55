"""A dialogue job: N kept conversations, generated in waves until the filters keep N.

The conversations considered are always a prefix of the planned ones (indices 0, 1,
... with no gap), and the filters decide a prefix's fate from it alone, so a job ends
with the same N conversations however often it was killed on the way: a wave
generates the next `N - kept` indices (at most `max_attempts` in all), and a wave cut
short is finished by the next run before anything after it is looked at."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concordia_like.dialogue.filters import FilterConfig, Selection, select
from concordia_like.dialogue.generate import JOURNAL, Journal, generate
from concordia_like.dialogue.plan import plan_conversation
from concordia_like.dialogue.records import world_hash
from concordia_like.errors import ConfigError
from concordia_like.files import check_replaceable, write_atomic
from concordia_like.llm import LanguageModel
from concordia_like.world.loader import World

#: what a work folder's job must keep to be the same job (N and attempts may change)
FIXED = ("world_sha256", "seed", "turns", "backend", "model", "sampling")


@dataclass
class JobResult:
    selection: Selection
    records: list[dict[str, Any]]
    attempted: int


def check_work(work: Path) -> None:
    """Refuse (ConfigError) a folder no job made as a work folder: a job clears its work
    folder's `runs/` of runs it did not journal, so a folder of the user's (an
    experiment's, with its own `runs/`) must never become one. A job writes its
    `job.json` before anything else, so a folder without one is a job's only while empty."""
    if not (work / "job.json").exists():
        check_replaceable(work, (), risk="a job would clear its runs/ of what it did not journal")


def check_job(work: Path, job: dict[str, Any]) -> None:
    """Record the job in `work/job.json`, or refuse a work folder of another job or of
    none (`check_work`)."""
    check_work(work)
    path = work / "job.json"
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a job file ({exc})") from None
        for key in FIXED:
            if old.get(key) != job.get(key):
                raise ConfigError(
                    f"{path}: this work folder holds a job with {key} {old.get(key)!r}, not "
                    f"{job.get(key)!r}; use another --out or --work, or remove {work}"
                )
        return
    write_atomic(path, json.dumps(job, indent=1, sort_keys=True))


def prefix(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of indices 0, 1, 2, ... up to the first missing one."""
    by = {r["provenance"]["index"]: r for r in records}
    out: list[dict[str, Any]] = []
    while len(out) in by:
        out.append(by[len(out)])
    return out


async def run_job(
    world: World,
    model: LanguageModel,
    work: Path,
    *,
    conversations: int,
    turns: int,
    seed: int,
    parallel: int,
    filters: FilterConfig,
    max_attempts: int,
    job: dict[str, Any],
    sampling: dict[str, dict[str, float]] | None = None,
    on_done: Callable[[dict[str, Any] | None], None] | None = None,
) -> JobResult:
    check_job(work, {**job, "world_sha256": world_hash(world), "seed": seed, "turns": turns})
    config = {k: job.get(k) for k in ("backend", "model", "base_url", "model_path")}
    records = prefix(Journal(work / JOURNAL).read())
    while True:
        sel = select(records, filters, limit=conversations)
        if len(sel.kept) >= conversations or len(records) >= max_attempts:
            return JobResult(sel, records, len(records))
        need = conversations - len(sel.kept)
        hi = min(max_attempts, len(records) + need)
        specs = [plan_conversation(world, seed, i, turns) for i in range(len(records), hi)]
        got = await generate(
            world,
            specs,
            model,
            work,
            turns=turns,
            job_seed=seed,
            parallel=parallel,
            config=config,
            sampling=sampling,
            on_done=on_done,
        )
        records = prefix(got)
