"""Every condition of a scenario for one seed, in one process, over one model.

Where the conditions are the same up to their first intervention, one run goes that far
(the shared past, `PAST` in the seed's index) and each condition goes on from a fork of
it, so each comparison is paired: the same past, then different interventions. Each run
borrows the seed's model (its own usage ledger and response cache, one batcher for all),
so the runs of a seed batch together. A run's index entry is written as soon as it
exists and its result file only once it is complete, so a seed run again skips complete
runs and resumes an interrupted one from its last committed step."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from concordia_like.engine.fork import fork_run
from concordia_like.engine.hooks import HOOKS_KEY, restore_hooks
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.engine.simulation import Simulation
from concordia_like.experiments.interventions import Interventions
from concordia_like.experiments.measures import Measurements
from concordia_like.experiments.outputs import to_json
from concordia_like.experiments.questions import questions
from concordia_like.experiments.scenario import Scenario
from concordia_like.experiments.settings import Settings, Tracker
from concordia_like.files import write_atomic
from concordia_like.llm import LanguageModel, run_models

PAST = "[past]"


class SeedRunner:
    """Every condition of a scenario for one seed; its runs borrow `model`."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        settings: Settings,
        model: LanguageModel,
        tracker: Tracker | None = None,
    ) -> None:
        self.scenario, self.seed, self.settings = scenario, seed, settings
        self.tracker = tracker or Tracker()
        self.root = settings.out / "runs" / f"seed-{seed}"
        self.index_path = self.root / "index.json"
        self.index: dict[str, str] = (
            json.loads(self.index_path.read_text()) if self.index_path.exists() else {}
        )
        self.steps_run = 0
        self._models = run_models(model, settings.cache_mode)  # type: ignore[arg-type]

    def result_path(self, condition: str) -> Path:
        return self.root / "results" / f"{condition}.json"

    def _save_index(self) -> None:
        write_atomic(self.index_path, to_json(self.index))

    def _start(self, label: str) -> Simulation:
        spec = self.scenario.spec
        sim = start_run(
            self.scenario.build_world(),
            self._models,
            engine=spec.engine,
            seed=self.seed,
            root=self.root,
            sampling={p: o.model_dump(exclude_none=True) for p, o in spec.sampling.items()},
            attention=self.settings.attention,
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
            run_id, self._models, world_path=self.scenario.build_world(), root=self.root
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
        try:
            if past is not None:  # closed below however it ends (it holds the run's lease)
                await self._advance(past, measures, shared, f"seed {self.seed} shared past")
                self.tracker.run_finished(f"seed {self.seed} shared past", f"{past.step} steps")
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
        write_atomic(self.result_path(condition), to_json(result))
        self.tracker.run_finished(key, f"{sim.step} steps")
