"""Starting a run, and resuming one from its last committed step.

A run lives in a folder (`memory/<run id>/` by default): its SQL store (unless a store
URL puts it elsewhere, such as PostgreSQL), its Chroma index and its response cache.
A run records what makes it that run (world and how it was built, engine, backend and
model, seed, sampling, attention): a resume that would change any of them would silently make it
another run, so it is refused unless asked for, and then recorded in the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from concordia_like.agents.agent import Agent
from concordia_like.agents.attention import AttentionPolicy
from concordia_like.engine.newcomers import NEWCOMERS_KEY, restore_newcomers
from concordia_like.engine.recorder import RunRecorder, new_run_id
from concordia_like.engine.simulation import ENGINES, EngineKind, Simulation
from concordia_like.errors import ConfigError
from concordia_like.llm import LanguageModel
from concordia_like.llm.sampling import SamplingPolicy
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
    world_path = world.path
    run_id = new_run_id()
    folder = run_folder(run_id, root)
    folder.mkdir(parents=True, exist_ok=True)
    policy = SamplingPolicy().with_overrides(world.spec.sampling).with_overrides(sampling or {})
    attend = AttentionPolicy.of_world(world.spec).with_overrides(**(attention or {}))
    lm = lm_factory(folder)
    lm.sampling = policy
    recorder = RunRecorder(store_url_for(folder, store))
    memory = MemoryStore.open(folder, run_id=run_id, engine=recorder.engine, chroma_url=chroma_url)
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
        world_path=str(world_path),
        world_name=world.name,
        engine=engine,
        backend=lm.name,
        seed=seed,
        config={
            **(config or {}),
            "sampling": policy.model_dump(),
            "attention": attend.record(),
            "world_build": world.built,
            "chroma_url": chroma_url,
            "start_time": start_time,
        },
        extra=seed_memories,
    )
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
    world (rebuilt as it was built), engine, backend and model, sampling, attention and
    seed. Another engine, backend, model, sampling or attention is refused unless
    `allow_change`, and
    then recorded in the run's config under "changes". A World (`world_path`) is taken
    as it is, for runs of a world built in code (a scenario's cast and overrides)."""
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
    lm = lm_factory(folder)
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
    if changes and not allow_change:
        what = "; ".join(
            f"{k} {a!r}, not {b!r}" if k not in ("sampling", "attention") else f"other {k}"
            for k, (a, b) in changes.items()
        )
        raise ConfigError(
            f"run {run_id} was recorded with {what}: resuming it so would make it another "
            "run; pass --allow-change to resume anyway (the change is recorded in the run)"
        )
    recorder = RunRecorder(store_url_for(folder, store))
    # the index is where the run put it (SQL is the truth: opening reconciles with it)
    memory = MemoryStore.open(
        folder, run_id=run_id, engine=recorder.engine, chroma_url=row.config.get("chroma_url")
    )
    sim = Simulation(
        world,
        lm,
        recorder,
        memory,
        run_id,
        engine or row.engine,  # type: ignore[arg-type]
        row.seed,
        _agents(world),
    )
    sim.attention = attend_now
    cp = recorder.last_checkpoint(run_id)
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
    if changes:
        recorder.record_change(run_id, {"after_step": sim.step, **changes})
    return sim
