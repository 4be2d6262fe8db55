"""The Python API, for notebooks and scripts: open or resume a run as an async context
manager, step it, inject events and whisper to residents, read what it holds as pandas
DataFrames, and run an experiment to its tidy table.

It adds no mechanism of its own: a run is `engine.runs`' run on a model from
`llm.open_model` that the run owns (or borrows, when a model is passed in), injections
are the sandbox's step hook, and an experiment is `experiments.run_experiment`. What
`concordia-like run` and `town` guarantee holds here too: every step is committed, so a
run left at any moment resumes from its last committed step.

    async with open_run("worlds/town.yaml", backend="scripted", seed=1) as run:
        await run.step(3)
        run.inject("The bakery's oven catches fire.", place="Marlowe's Bakery")
        await run.step()
        events = run.events()
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from concordia_like.engine.runs import DEFAULT_ROOT, read_run, resume_run, start_run
from concordia_like.engine.simulation import EngineKind, Simulation, StepReport
from concordia_like.errors import ConfigError
from concordia_like.llm import BackendOptions, LanguageModel, open_model, run_models
from concordia_like.sandbox.inject import Injections
from concordia_like.world.loader import World, load_world

if TYPE_CHECKING:
    import pandas as pd

    from concordia_like.experiments.outputs import Report

__all__ = ["Experiment", "Run", "load_world", "open_run", "resume", "run_experiment"]


def _frame(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(list(rows), columns=list(columns))


@dataclass
class Run:
    """An open run. Read it at any time; `step` moves it on and commits each step."""

    sim: Simulation
    injections: Injections

    @property
    def id(self) -> str:
        return self.sim.run_id

    @property
    def steps_done(self) -> int:
        return self.sim.step

    @property
    def now(self) -> Any:
        return self.sim.state.now

    @property
    def residents(self) -> list[str]:
        return sorted(self.sim.agents)

    async def step(self, n: int = 1) -> list[StepReport]:
        """Run `n` steps, each committed before the next begins."""
        if n < 1:
            raise ConfigError(f"step: n must be at least 1, not {n}")
        return [await self.sim.run_step() for _ in range(n)]

    def inject(self, text: str, place: str | None = None) -> None:
        """An event announced in the next step, to everyone at `place` (a place's name)
        or, with no place, to everyone; it counts as news to whoever perceives it."""
        if place is not None:
            place = self._place_id(place)
        self.injections.add(text, place)

    def whisper(self, resident: str, text: str) -> None:
        """A memory planted in a resident now (committed at once); it has it in mind
        from the next step on."""
        if resident not in self.sim.agents:
            raise ConfigError(f"whisper: no resident {resident!r}; residents: {self.residents}")
        self.sim.plant_memory(resident, text)

    def where(self) -> dict[str, str]:
        """Each resident's place, by name."""
        state = self.sim.state
        return {a: state.places[state.location(a)].name for a in self.residents}

    def events(
        self, *, actor: str | None = None, place: str | None = None, kinds: list[str] | None = None
    ) -> pd.DataFrame:
        """The run's event log in order: step, seq, time, kind, actor, place, text, data."""
        place_id = self._place_id(place) if place is not None else None
        rows = self.sim.recorder.events(self.id, agent=actor, place=place_id, kinds=kinds)
        columns = ("step", "seq", "sim_time", "kind", "actor", "place", "text", "data")
        return _frame([{c: getattr(r, c) for c in columns} for r in rows], columns)

    def utterances(self, *, speaker: str | None = None) -> pd.DataFrame:
        """What residents said, in order, with whom it was said to."""
        rows = self.sim.recorder.utterances(self.id, speaker=speaker)
        columns = ("step", "sim_time", "conversation", "speaker", "addressees", "place", "text")
        return _frame([{c: getattr(r, c) for c in columns} for r in rows], columns)

    def memories(
        self, resident: str | None = None, *, kinds: list[str] | None = None
    ) -> pd.DataFrame:
        """Residents' memories (one resident's, or everyone's), oldest first."""
        who = [resident] if resident is not None else self.sim.memory.agents()
        total = self.sim.memory.count(resident)
        records = [m for a in who for m in self.sim.memory.recent(a, total, kinds=kinds)]
        rows = [asdict(m) for m in sorted(records, key=lambda m: m.id)]
        columns = rows[0].keys() if rows else ("id", "agent", "text", "kind", "created")
        return _frame(rows, list(columns))

    def usage(self) -> dict[str, Any]:
        """Model calls, tokens and time of the whole run, by purpose."""
        return self.sim.usage()

    def _place_id(self, place: str) -> str:
        places = self.sim.state.places
        if place in places:
            return place
        for pid, p in places.items():
            if p.name.casefold() == place.casefold():
                return pid
        names = sorted(p.name for p in places.values())
        raise ConfigError(f"no place {place!r} in {self.sim.world.name}; places: {names}")


def _options(backend: str | BackendOptions | None) -> BackendOptions:
    return backend if isinstance(backend, BackendOptions) else BackendOptions(backend)


@asynccontextmanager
async def _opened(
    make: Any, model: LanguageModel | None, options: BackendOptions, cache: str
) -> AsyncIterator[Run]:
    lender = model or open_model(options)
    try:
        sim: Simulation = make(run_models(lender, cache))  # type: ignore[arg-type]
        injections = Injections()
        sim.hooks.append(injections)
        try:
            yield Run(sim, injections)
        finally:
            await sim.aclose()
    finally:
        if model is None:
            await lender.aclose()


def open_run(
    world: str | Path | World,
    *,
    backend: str | BackendOptions | None = None,
    model: LanguageModel | None = None,
    seed: int = 0,
    engine: EngineKind = "simultaneous",
    root: str | Path = DEFAULT_ROOT,
    store: str | None = None,
    start_time: str | None = None,
    attention: dict[str, Any] | None = None,
    cache: str = "off",
) -> Any:
    """A new run of `world` (a file or a loaded World), as `async with`. Its model is
    opened from `backend` (a backend's name or BackendOptions; the embedded model by
    default) and closed with the run, or borrowed from `model` and left open."""
    options = _options(backend)

    def make(factory: Any) -> Simulation:
        return start_run(
            world,
            factory,
            engine=engine,
            seed=seed,
            store=store,
            root=Path(root),
            config=options.recorded(),
            start_time=start_time,
            attention=attention,
        )

    return _opened(make, model, options, cache)


def resume(
    run_id: str,
    *,
    backend: str | BackendOptions | None = None,
    model: LanguageModel | None = None,
    root: str | Path = DEFAULT_ROOT,
    store: str | None = None,
    allow_change: bool = False,
    cache: str = "off",
) -> Any:
    """Go on with a run from its last committed step, as `async with`, on the backend
    it was recorded with unless told otherwise (a change is refused unless
    `allow_change`)."""
    row = read_run(run_id, store=store, root=Path(root))
    options = _options(backend).or_recorded(row.config or {})

    def make(factory: Any) -> Simulation:
        return resume_run(run_id, factory, store=store, root=Path(root), allow_change=allow_change)

    return _opened(make, model, options, cache)


@dataclass
class Experiment:
    """An experiment's results: the tidy table (condition, seed, measurement, step,
    time, value), the summary with intervals, and where its files are."""

    table: pd.DataFrame
    summary: pd.DataFrame
    out: Path
    report: Report


async def run_experiment(
    scenario: str | Path,
    *,
    out: str | Path,
    seeds: int | None = None,
    backend: str | BackendOptions | None = None,
    fork: bool = True,
    attention: dict[str, Any] | None = None,
) -> Experiment:
    """Run (or finish) the scenario over `seeds` seeds (the scenario's own by default)
    into `out`, as `concordia-like experiment` does, and return its tables. It runs in a
    worker thread, so it can be awaited from a notebook's running event loop."""
    from concordia_like.experiments.runner import run_experiment as run
    from concordia_like.experiments.scenario import load_scenario
    from concordia_like.experiments.settings import Settings

    spec = load_scenario(scenario)
    model = _options(backend).or_recorded(spec.spec.model.model_dump())
    settings = Settings(
        out=Path(out),
        seeds=spec.spec.seed_list(seeds),
        model=model,
        fork=fork,
        attention=attention or {},
    )
    report = await asyncio.to_thread(run, spec, settings)
    table = _frame(report.rows, list(report.rows[0]) if report.rows else [])
    summary = _frame(report.summary, list(report.summary[0]) if report.summary else [])
    return Experiment(table, summary, Path(out), report)
