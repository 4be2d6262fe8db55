"""Shared helpers of the experiment tests: a small scenario on the mini world, written
into a test's folder, and running it on the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

from concordia_like.engine.recorder import RunRecorder
from concordia_like.experiments.runner import run_experiment
from concordia_like.experiments.scenario import load_scenario
from concordia_like.experiments.settings import Settings
from concordia_like.llm import BackendOptions, BackendUnavailableError, open_model
from concordia_like.llm.scripted import ScriptedBackend

from support.engine import MINI, store_path


class FailingAfter(ScriptedBackend):
    """The scripted model, which stops answering after `ok` batches."""

    def __init__(self, ok):
        super().__init__()
        self.ok = ok

    async def generate_batch(self, requests):
        if self.ok <= 0:
            raise BackendUnavailableError("http://127.0.0.1:9/v1 stopped answering")
        self.ok -= 1
        return await super().generate_batch(requests)


SCENARIO = f"""
name: Mini notice
world: {MINI}
seeds: 2
stop: {{steps: 5}}
interventions:
  notice: {{kind: announce, at_step: 3, place: square, text: "A notice: apples half price."}}
  letter: {{kind: message, at_step: 3, to: [Cy Moss], text: "A letter says the shop closes."}}
  tired:
    kind: effects
    at_step: 3
    effects: [{{kind: set, agent: Ann Reed, attribute: energy, value: 5}}]
  cheap: {{kind: property, at_step: 3, item: apple, holder: shop, property: price, value: 1}}
  whisper: {{kind: memory, at_step: 3, to: [Bob Vale], text: Bob remembers a debt to Ann.}}
control: control
conditions:
  control: []
  treated: [notice, letter, tired, cheap, whisper]
measurements:
  - {{name: in_square, kind: residents_at, place: square}}
  - {{name: ann_energy, kind: attribute, attribute: energy, of: [Ann Reed], stat: mean}}
  - {{name: money, kind: attribute, attribute: money}}
  - {{name: apples, kind: items, item: apple}}
  - {{name: spade_with, kind: holder, item: spade}}
  - {{name: notices, kind: events, kinds: [announcement], contains: notice}}
  - {{name: actions, kind: events, kinds: [action, speech, failure]}}
  - {{name: tired_now, kind: check, measure: ann_energy, op: lt, value: 10}}
  - {{name: heard, kind: ask, question: Did you see a notice in the square?}}
  - {{name: busy, kind: judge, question: How many people spoke?, answer: number, max: 9}}
"""


def write_scenario(folder: Path, text: str = SCENARIO, name: str = "mini.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def run(path: Path, out: Path, *, seeds=(0, 1), fork=True, backend=None, **kw):
    scenario = load_scenario(path)
    settings = Settings(
        out=out, seeds=list(seeds), model=BackendOptions(backend="scripted"), fork=fork
    )
    model = open_model(backend) if backend is not None else None
    return run_experiment(scenario, settings, model=model, **kw)


def result(out: Path, seed: int, condition: str) -> dict:
    return json.loads((out / "runs" / f"seed-{seed}" / "results" / f"{condition}.json").read_text())


def values(rows, measurement, condition=None, seed=None):
    """The values of one measurement, by step, of one condition and seed."""
    return [
        r["value"]
        for r in rows
        if r["measurement"] == measurement
        and (condition is None or r["condition"] == condition)
        and (seed is None or r["seed"] == seed)
    ]


def timeline_of(out: Path, seed: int, condition: str) -> list[tuple]:
    """The events of one condition's run of one seed, as the log shows them."""
    root = out / "runs" / f"seed-{seed}"
    run_id = json.loads((root / "index.json").read_text())[condition]
    rec = RunRecorder(f"sqlite:///{store_path(root, run_id)}")
    try:
        return [(e.step, e.seq, e.kind, e.actor, e.text) for e in rec.events(run_id)]
    finally:
        rec.close()
