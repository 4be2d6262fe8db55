"""Starting a run, and resuming one from its last committed step.

A run lives in a folder (`memory/<run id>/` by default): its SQL store (unless a store
URL puts it elsewhere, such as PostgreSQL), its Chroma index and its response cache.
A run records what makes it that run (world and how it was built, engine, backend and
model, seed, sampling, attention, and the content of the world and its persona cards): a
resume that would change any of them would silently make it another run, so it is refused
unless asked for, and then recorded in the run. A run is written by one process at a
time: opening it for writing takes its lease (`store.leases`)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from concordia_like.agents.agent import Agent
from concordia_like.agents.attention import AttentionPolicy
from concordia_like.engine.newcomers import NEWCOMERS_KEY, restore_newcomers
from concordia_like.engine.recorder import RunRecorder, new_run_id
from concordia_like.engine.simulation import ENGINES, EngineKind, Simulation
from concordia_like.errors import ConfigError
from concordia_like.llm import LanguageModel
from concordia_like.llm.sampling import SamplingPolicy
from concordia_like.memory.layouts import run_layout
from concordia_like.memory.records import NewMemory
from concordia_like.memory.stream import MemoryStore
from concordia_like.store.base import sqlite_url
from concordia_like.store.run_tables import RunRow
from concordia_like.world.loader import World, load_world
from concordia_like.world.persona import parse_hhmm
from concordia_like.world.replicate import rebuild
from concordia_like.world.state import WorldState

DEFAULT_ROOT = Path("memory")
#: a run's model, given the run's folder (`llm.run_models`: one that borrows a shared
#: model, with its response cache in that folder); the run closes it when it closes
LMFactory = Callable[[Path], LanguageModel]


def set_start_time(world: World, hhmm: str) -> None:
    """Move a world's clock, not yet started, to `hhmm` of its first day. Raises
    ConfigError on a time that is not HH:MM."""
    try:
        minutes = parse_hhmm(hhmm)
    except ValueError as exc:
        raise ConfigError(f"--start: {exc}") from None
    clock = world.state.clock
    clock.now = clock.now.replace(hour=minutes // 60, minute=minutes % 60, second=0)


def run_folder(run_id: str, root: Path = DEFAULT_ROOT) -> Path:
    return root / run_id


def store_url_for(folder: Path, store: str | None) -> str:
    return store or sqlite_url(folder / "store.sqlite")


#: world spec fields a run records and checks on their own (sampling, attention)
_HASH_EXCLUDES = {"sampling", "attention", "idle_steps"}


def world_hash(world: World) -> str:
    """The content of a world as a run uses it: its spec (less what the run records on
    its own) and its residents' persona cards, as built. Formatting and comments of the
    files do not count; a removed resident or a changed quantity does."""
    content = {
        "spec": world.spec.model_dump(mode="json", exclude=_HASH_EXCLUDES),
        "personas": {n: c.model_dump(mode="json") for n, c in sorted(world.personas.items())},
    }
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recorded_world_hash(config: dict[str, Any]) -> str | None:
    """The world content a run goes on with: its last recorded change's, or its own
    (None for runs recorded before the hash)."""
    for change in reversed(config.get("changes") or []):
        if "world" in change:
            return str(change["world"][1])
    value = config.get("world_hash")
    return str(value) if value else None


def _agents(world: World) -> dict[str, Agent]:
    return {
        name: Agent.create(card, world.name, world.rules) for name, card in world.personas.items()
    }


def start_run(
    world_path: str | Path | World,
    lm_factory: LMFactory,
    *,
    engine: EngineKind = "simultaneous",
    seed: int = 0,
    store: str | None = None,
    root: Path = DEFAULT_ROOT,
    config: dict | None = None,
    sampling: dict[str, dict[str, float]] | None = None,
    chroma_url: str | None = None,
    start_time: str | None = None,
    attention: dict[str, Any] | None = None,
) -> Simulation:
    """A new run of a world (a file, or a World already built such as one with
    replicated residents). `sampling` overrides the world file's, which overrides the
    defaults of `SamplingPolicy`; the policy in force is recorded in the run. So with
    `attention` (`mode`, `idle_steps`: `agents.attention.AttentionPolicy`).
    `start_time` ("HH:MM") begins the run at that time of the world's first day
    instead of the time of its `start` (recorded in the run's config)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    # a World already loaded (such as one with replicated residents) is run as it is
    world = world_path if isinstance(world_path, World) else load_world(world_path)
    if start_time is not None:
        set_start_time(world, start_time)
    run_id = new_run_id()
    folder = run_folder(run_id, root)
    try:  # checked before anything is written
        policy = SamplingPolicy().with_overrides(world.spec.sampling).with_overrides(sampling or {})
    except ValidationError as exc:
        where = ".".join(str(x) for x in exc.errors()[0]["loc"])
        raise ConfigError(f"sampling {where}: {exc.errors()[0]['msg'].lower()}") from None
    attend = AttentionPolicy.of_world(world.spec).with_overrides(**(attention or {}))
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--root {root} is not a folder")
    made_root = not root.exists()
    folder.mkdir(parents=True, exist_ok=True)
    opened: list[Callable[[], Any]] = []
    try:
        return _start(
            world,
            folder,
            run_id,
            lm_factory,
            opened,
            policy,
            attend,
            engine=engine,
            seed=seed,
            store=store,
            config=config,
            chroma_url=chroma_url,
            start_time=start_time,
        )
    except BaseException:
        # a run that could not start leaves nothing behind: not its folder, not a row
        for close in reversed(opened):
            close()
        shutil.rmtree(folder, ignore_errors=True)
        if made_root:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise


def _start(
    world: World,
    folder: Path,
    run_id: str,
    lm_factory: LMFactory,
    opened: list[Callable[[], Any]],
    policy: SamplingPolicy,
    attend: AttentionPolicy,
    *,
    engine: EngineKind,
    seed: int,
    store: str | None,
    config: dict | None,
    chroma_url: str | None,
    start_time: str | None,
) -> Simulation:
    """`start_run` once its folder is made; what it opens goes into `opened`."""
    lm = lm_factory(folder)
    if lm.cache is not None:
        opened.append(lm.cache.close)
    lm.sampling = policy
    recorder = RunRecorder(store_url_for(folder, store))
    opened.append(recorder.close)
    layout = run_layout(len(world.personas))
    memory = MemoryStore.open(
        folder, run_id=run_id, engine=recorder.engine, chroma_url=chroma_url, layout=layout
    )
    opened.append(memory.close)
    start = world.state.clock.now
    seeds = [
        NewMemory(
            agent=name, text=m.text, kind="observation", created=start, importance=m.importance
        )
        for name, card in world.personas.items()
        for m in card.seed_memories
    ]

    def seed_memories(session: Session) -> None:
        memory.add_many(seeds, now=start, session=session)

    recorder.create_run(
        run_id=run_id,
        world_path=str(world.path),
        world_name=world.name,
        engine=engine,
        backend=lm.name,
        seed=seed,
        config={
            **(config or {}),
            "sampling": policy.model_dump(),
            "attention": attend.record(),
            "world_build": world.built,
            "world_hash": world_hash(world),
            "chroma_url": chroma_url,
            "memory_layout": layout,
            "start_time": start_time,
        },
        extra=seed_memories,
    )
    recorder.hold(run_id)
    sim = Simulation(world, lm, recorder, memory, run_id, engine, seed, _agents(world))
    sim.attention = attend
    return sim


def read_run(run_id: str, *, store: str | None = None, root: Path = DEFAULT_ROOT) -> RunRow:
    """The run's record (what it was started with), without opening the run."""
    folder = run_folder(run_id, root)
    if store is None and not (folder / "store.sqlite").exists():
        raise ConfigError(f"no run {run_id!r}: {folder / 'store.sqlite'} does not exist")
    recorder = RunRecorder(store_url_for(folder, store))
    try:
        return recorder.run(run_id)
    finally:
        recorder.close()


def resume_run(
    run_id: str,
    lm_factory: LMFactory,
    *,
    world_path: str | Path | World | None = None,
    store: str | None = None,
    root: Path = DEFAULT_ROOT,
    engine: str | None = None,
    sampling: dict[str, dict[str, float]] | None = None,
    attention: dict[str, Any] | None = None,
    allow_change: bool = False,
) -> Simulation:
    """Go on with a run from its last committed step, as it was recorded: the same
    world (rebuilt as it was built, with the same content), engine, backend and model,
    sampling, attention and seed. Another engine, backend, model, sampling, attention
    or world content is refused unless `allow_change`, and then recorded in the run's
    config under "changes". A World (`world_path`) is taken as it is, for runs of a
    world built in code (a scenario's cast and overrides). Raises RunBusyError when
    another process writes the run."""
    row = read_run(run_id, store=store, root=root)
    folder = run_folder(run_id, root)
    if isinstance(world_path, World):
        world = world_path
    else:
        world = rebuild(
            load_world(world_path or row.world_path), row.config.get("world_build") or {}
        )
    if world.name != row.world_name:
        raise ConfigError(
            f"run {run_id} is of world {row.world_name!r}, not {world.name!r} ({world.path})"
        )
    if engine is not None and engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    recorded = row.config.get("sampling")
    # runs recorded before sampling policies sampled as their requests said
    policy = SamplingPolicy.model_validate(recorded) if recorded else None
    wanted = policy
    if sampling:
        wanted = (policy or SamplingPolicy()).with_overrides(sampling)
    # runs recorded before attention asked every awake resident every step
    noted = row.config.get("attention")
    attend = AttentionPolicy.model_validate(noted) if noted else AttentionPolicy(mode="always")
    attend_now = attend.with_overrides(**(attention or {}))
    # runs recorded before the world's hash resume on its name alone
    content, content_now = recorded_world_hash(row.config), world_hash(world)
    recorder = RunRecorder(store_url_for(folder, store))
    opened: list[Callable[[], Any]] = [recorder.close]
    try:
        recorder.hold(run_id)  # one writer: refused here, before anything is opened
        lm = lm_factory(folder)
        if lm.cache is not None:
            opened.append(lm.cache.close)
        lm.sampling = wanted
        changes: dict[str, list[Any]] = {}
        if lm.name != row.backend:
            changes["backend"] = [row.backend, lm.name]
        if engine is not None and engine != row.engine:
            changes["engine"] = [row.engine, engine]
        if wanted != policy:
            changes["sampling"] = [recorded, wanted.model_dump() if wanted else None]
        if attend_now != attend:
            changes["attention"] = [attend.record(), attend_now.record()]
        if content is not None and content != content_now:
            changes["world"] = [content, content_now]
        if changes and not allow_change:
            raise ConfigError(
                f"run {run_id} was recorded with {_describe(changes, world)}: resuming it so "
                "would make it another run; pass --allow-change to resume anyway (the "
                "change is recorded in the run)"
            )
        # the index is where the run put it (SQL is the truth: opening reconciles with it)
        memory = MemoryStore.open(
            folder,
            run_id=run_id,
            engine=recorder.engine,
            chroma_url=row.config.get("chroma_url"),
            layout=row.config.get("memory_layout", "per_agent"),  # runs recorded before
        )
        opened.append(memory.close)
        sim = _resumed(row, world, lm, recorder, memory, engine)
        sim.attention = attend_now
        if changes:
            recorder.record_change(run_id, {"after_step": sim.step, **changes})
    except BaseException:
        for close in reversed(opened):
            close()
        raise
    return sim


def _describe(changes: dict[str, list[Any]], world: World) -> str:
    """What a resume would change, for its refusal."""
    parts = []
    for k, (a, b) in changes.items():
        if k == "world":
            parts.append(f"other world content (the files of {world.path} changed since)")
        elif k in ("sampling", "attention"):
            parts.append(f"other {k}")
        else:
            parts.append(f"{k} {a!r}, not {b!r}")
    return "; ".join(parts)


def _resumed(
    row: RunRow,
    world: World,
    lm: LanguageModel,
    recorder: RunRecorder,
    memory: MemoryStore,
    engine: str | None,
) -> Simulation:
    """The simulation of a run put back as of its last checkpoint."""
    sim = Simulation(
        world,
        lm,
        recorder,
        memory,
        row.id,
        engine or row.engine,  # type: ignore[arg-type]
        row.seed,
        _agents(world),
    )
    cp = recorder.last_checkpoint(row.id)
    if cp is None and row.config.get("start_time"):
        set_start_time(world, row.config["start_time"])
    if cp is not None:
        world.state = WorldState.from_dict(cp.world)
        sim.gm.world = world
        for name, data in cp.agents.items():
            if name in sim.agents:
                sim.agents[name].restore(data)
        sim.step = cp.step
        sim._usage_base = cp.usage
    if row.config.get(NEWCOMERS_KEY):  # residents who joined after the run began
        restore_newcomers(sim, row.config[NEWCOMERS_KEY], cp)
    return sim
