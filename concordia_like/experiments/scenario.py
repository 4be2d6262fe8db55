"""Loading a scenario file: its schema (`experiments.spec`), its references to its world
(residents, places, items, attributes, times) and the world it runs in.

Like a world file, a scenario is read under the YAML loader's limits (a hostile file is
refused fast) and every problem is reported at once at its file, line and field:

    worlds/scenarios/rumour.yaml:31: interventions.rumour.place: unknown place 'cafee'

Times (`at` of an intervention or a measurement, `stop.until`) become step numbers: a
time names the first step that begins at or after it."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from concordia_like.engine.runs import set_start_time
from concordia_like.experiments.app_measures import intervention_problems, measurement_problems
from concordia_like.experiments.spec import (
    CODE_KINDS,
    MAX_STEPS,
    AddCodeRule,
    AttributeStat,
    Check,
    EventCount,
    Harvest,
    ItemCount,
    Message,
    PlantMemory,
    ResidentsAt,
    ScenarioSpec,
    SetProperty,
    Trades,
)
from concordia_like.world.code_rules import RegrowRule, rule_problems
from concordia_like.world.loader import World, load_world
from concordia_like.world.persona import SeedMemory
from concordia_like.world.state import Clock, WorldState, name_key
from concordia_like.yaml_loader import ConfigFileError, Issue, YamlDoc, read_yaml, validate_doc


@dataclass
class Scenario:
    path: Path
    spec: ScenarioSpec
    world_path: Path
    #: the world as the scenario builds it (a fresh copy for each run: `build_world`)
    world: World
    #: intervention name -> the step at whose start it happens
    steps: dict[str, int] = field(default_factory=dict)
    #: measurement name -> steps at which it is taken (besides the end); None: every step
    measure_steps: dict[str, set[int] | None] = field(default_factory=dict)
    #: the last step a run may take (from stop.steps and stop.until)
    max_steps: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def control(self) -> str:
        return self.spec.control

    @property
    def conditions(self) -> list[str]:
        """The control first, then the others in the file's order."""
        return [self.control, *(c for c in self.spec.conditions if c != self.control)]

    def interventions_of(self, condition: str) -> dict[str, Any]:
        return {n: self.spec.interventions[n] for n in self.spec.conditions[condition]}

    def shared_steps(self) -> int:
        """How many steps every condition has in common: those before the first
        intervention of any condition."""
        used = {n for names in self.spec.conditions.values() for n in names}
        first = min((self.steps[n] for n in used), default=self.max_steps + 1)
        return min(first - 1, self.max_steps)

    def build_world(self) -> World:
        """A fresh World for one run (runs mutate their world's state)."""
        return _build(self.spec, load_world(self.world_path))

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]


def load_scenario(path: str | Path) -> Scenario:
    """Load and check the scenario at `path`; ConfigFileError lists every problem."""
    path = Path(path)
    doc = read_yaml(path)
    spec = validate_doc(doc, ScenarioSpec)
    world_path = (path.parent / spec.world).resolve()
    if not world_path.is_file():
        raise ConfigFileError([doc.issue(("world",), f"world file {spec.world} does not exist")])
    world = _build(spec, load_world(world_path), doc)
    checker = _Checker(doc, spec, world)
    checker.run()
    if checker.issues:
        raise ConfigFileError(checker.issues)
    return Scenario(
        path=path,
        spec=spec,
        world_path=world_path,
        world=world,
        steps=checker.steps,
        measure_steps=checker.measure_steps,
        max_steps=checker.max_steps,
    )


def _build(spec: ScenarioSpec, world: World, doc: YamlDoc | None = None) -> World:
    """The world with the scenario's cast, residents' additions, start, step and rules."""
    cast = spec.cast or list(world.personas)
    unknown = [(("cast", i), n) for i, n in enumerate(spec.cast) if n not in world.personas] + [
        (("residents", n), n) for n in spec.residents if n not in cast
    ]
    if unknown:
        if doc is None:  # checked when the scenario was loaded
            raise ValueError(f"unknown residents {[n for _, n in unknown]}")
        raise ConfigFileError(
            [doc.issue(loc, f"{n!r} is not a resident of the cast") for loc, n in unknown]
        )
    personas = {}
    for name in cast:
        card = world.personas[name]
        extra = spec.residents.get(name)
        if extra is not None:
            card = card.model_copy(
                update={
                    "goals": [*card.goals, *extra.goals][-10:],
                    "seed_memories": [
                        *card.seed_memories,
                        *(SeedMemory(text=m) if isinstance(m, str) else m for m in extra.memories),
                    ],
                }
            )
        personas[name] = card
    base = world.new_state()
    step = timedelta(minutes=spec.step_minutes) if spec.step_minutes else base.clock.step
    dropped = set(world.personas) - set(cast)
    state = WorldState(
        name=base.name,
        clock=Clock(base.clock.now, step),
        places=base.places,
        attributes=base.attributes,
        agents={n: a for n, a in base.agents.items() if n in personas},
        items={i: it for i, it in base.items.items() if it.holder not in dropped},
        events=base.events,
        max_stack=base.max_stack,
        code_rules=[*base.code_rules, *spec.code_rules],
        apps=base.apps,
    )
    built = World(
        path=world.path,
        spec=world.spec.model_copy(update={"rules": [*world.spec.rules, *spec.rules]})
        if spec.rules
        else world.spec,
        personas=personas,
        state=state,
        warnings=list(world.warnings),
    )
    if spec.start is not None:
        set_start_time(built, spec.start)
    return replace(built, _initial=built.state.to_dict())


class _Checker:
    def __init__(self, doc: YamlDoc, spec: ScenarioSpec, world: World) -> None:
        self.doc, self.spec, self.world = doc, spec, world
        self.state = world.state
        self.issues: list[Issue] = []
        self.steps: dict[str, int] = {}
        self.measure_steps: dict[str, set[int] | None] = {}
        self.max_steps = 0

    def problem(self, loc: tuple[str | int, ...], message: str) -> None:
        self.issues.append(self.doc.issue(loc, message))

    def step_of(self, when: datetime) -> int:
        """The first step that begins at or after `when` (step 1 begins at the start)."""
        start, step = self.state.clock.now, self.state.clock.step
        return max(1, math.ceil((when - start) / step) + 1)

    def run(self) -> None:
        s = self.spec
        start = self.state.clock.now
        bounds = []
        if s.stop.steps is not None:
            bounds.append(s.stop.steps)
        if s.stop.until is not None:
            if s.stop.until <= start:
                self.problem(("stop", "until"), f"is not after the start ({start:%Y-%m-%d %H:%M})")
            last = max(1, self.step_of(s.stop.until) - 1)
            if last > MAX_STEPS:
                self.problem(
                    ("stop", "until"),
                    f"is {last} steps after the start; a run stops within {MAX_STEPS} steps",
                )
            bounds.append(min(last, MAX_STEPS))
        self.max_steps = min(bounds)
        for i, rule in enumerate(s.code_rules):
            self._code_rule(("code_rules", i), rule)
        self._interventions()
        self._conditions()
        self._measurements()

    def _code_rule(self, loc: tuple[str | int, ...], rule: Any) -> None:
        for where, message in rule_problems(rule, self.state.places, self.state.max_stack):
            self.problem((*loc, *where), message)

    def _regrow_rules(self) -> list[RegrowRule]:
        """Every regrow rule a run may have: the world's, the scenario's, and those an
        intervention adds."""
        added = [iv.rule for iv in self.spec.interventions.values() if isinstance(iv, AddCodeRule)]
        return [r for r in [*self.state.code_rules, *added] if isinstance(r, RegrowRule)]

    def _resident(self, loc: tuple[str | int, ...], name: str) -> None:
        if name not in self.world.personas:
            self.problem(loc, f"{name!r} is not a resident of the cast")

    def _place(self, loc: tuple[str | int, ...], place: str | None) -> None:
        if place is not None and place not in self.state.places:
            self.problem(loc, f"unknown place {place!r}")

    def _interventions(self) -> None:
        for name, iv in self.spec.interventions.items():
            loc = ("interventions", name)
            # exactly one of at_step and at is given (the spec's validator)
            step = iv.at_step if iv.at_step is not None else self.step_of(cast(datetime, iv.at))
            if iv.at is not None and iv.at < self.state.clock.now:
                self.problem((*loc, "at"), "is before the start of the run")
            elif step > self.max_steps:
                self.problem(
                    (*loc, "at_step" if iv.at_step is not None else "at"),
                    f"step {step} is after the last step of a run ({self.max_steps})",
                )
            self.steps[name] = step
            self._place((*loc, "place"), getattr(iv, "place", None))
            if isinstance(iv, Message | PlantMemory):
                for i, who in enumerate(iv.to):
                    self._resident((*loc, "to", i), who)
            if isinstance(iv, AddCodeRule):
                self._code_rule((*loc, "rule"), iv.rule)
            for where, message in intervention_problems(iv, self.state, self.world.personas):
                self.problem((*loc, *where), message)
            if isinstance(iv, SetProperty):
                if not self.state.holder_exists(iv.holder):
                    self.problem((*loc, "holder"), f"no resident or place {iv.holder!r}")
                elif self.state.stack(iv.holder, iv.item) is None:
                    self.problem((*loc, "item"), f"{iv.holder} holds no {iv.item!r}")

    def _conditions(self) -> None:
        s = self.spec
        if s.control not in s.conditions:
            self.problem(("control",), f"{s.control!r} is not one of the conditions")
        for cond, names in s.conditions.items():
            for i, n in enumerate(names):
                if n not in s.interventions:
                    self.problem(("conditions", cond, i), f"unknown intervention {n!r}")

    def _measurements(self) -> None:
        seen: dict[str, str] = {}
        for i, m in enumerate(self.spec.measurements):
            loc: tuple[str | int, ...] = ("measurements", i)
            if m.name in seen:
                self.problem((*loc, "name"), f"a second measurement named {m.name!r}")
            if isinstance(m, ResidentsAt):
                self._place((*loc, "place"), m.place)
            elif isinstance(m, AttributeStat):
                if m.attribute not in self.state.attributes:
                    self.problem((*loc, "attribute"), f"unknown attribute {m.attribute!r}")
            elif isinstance(m, ItemCount):
                if m.holder is not None and not self.state.holder_exists(m.holder):
                    self.problem((*loc, "holder"), f"no resident or place {m.holder!r}")
            elif isinstance(m, EventCount):
                if m.actor is not None:
                    self._resident((*loc, "actor"), m.actor)
                self._place((*loc, "place"), m.place)
            elif isinstance(m, Harvest):
                self._place((*loc, "place"), m.place)
                if not any(
                    r.place == m.place and name_key(r.item) == name_key(m.item)
                    for r in self._regrow_rules()
                ):
                    self.problem((*loc, "item"), f"no regrow rule grows {m.item!r} at {m.place!r}")
            elif isinstance(m, Trades):
                for field_name in ("sellers", "buyers"):
                    for j, who in enumerate(getattr(m, field_name)):
                        self._resident((*loc, field_name, j), who)
                both = sorted(set(m.sellers) & set(m.buyers))
                if both:
                    self.problem((*loc, "buyers"), f"{', '.join(both)} cannot be seller and buyer")
            elif isinstance(m, Check) and seen.get(m.measure) not in CODE_KINDS:
                self.problem(
                    (*loc, "measure"), f"{m.measure!r} is not a code measurement named before it"
                )
            interventions = self.spec.interventions
            for where, message in measurement_problems(
                m, self.state, self.world.personas, interventions
            ):
                self.problem((*loc, *where), message)
            for j, who in enumerate(getattr(m, "of", [])):
                self._resident((*loc, "of", j), who)
            seen[m.name] = m.kind
            if m.kind in CODE_KINDS:
                steps = {*m.at_steps, *(self.step_of(t) for t in m.at)}
                if m.every is not None:
                    steps |= set(range(m.every, self.max_steps + 1, m.every))
                self.measure_steps[m.name] = steps or None
        when = self.spec.stop.when
        if when is not None and seen.get(when.measure) not in CODE_KINDS:
            self.problem(("stop", "when", "measure"), f"{when.measure!r} is not a code measurement")
