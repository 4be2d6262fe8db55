"""Interventions: what a condition makes happen, as a step hook.

At the start of its step (before anyone acts) an intervention is announced at a place
or everywhere, told to some residents only (a message), or changes the world: effects
in the world's effect language (validated and applied atomically, as a scheduled
event's), an item's property (a price chalked anew), or a code rule that holds from
then on (a ban on speech: part of the world's state, so checkpointed with it); the last
two are the world's own effects (`world.world_effects`), so every change passes the
world's validator. The apps' interventions (a post on the feed, its ranking switched, an
app out of service for some steps) are app effects applied the same way
(`experiments.app_interventions`). The hook
keeps no state: it acts on the step's number, so a step that fails and is run again
does the same, and its changes are rolled back with the step (the engine puts the world
back as at its last commit).

A planted memory is given between steps (`plant_due`, called by the runner before the
step), as the sandbox's whisper: it is committed at once, so it is given only where the
resident does not already have it at that time (a run killed after planting and
resumed does not plant twice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from concordia_like.engine.hooks import Announcement, StepHook, StepInput
from concordia_like.experiments.app_interventions import (
    apply_app_intervention,
    apply_outages,
    outage_announcements,
    outage_changes,
)
from concordia_like.experiments.app_spec import FeedRanking, InjectPost, Outage
from concordia_like.experiments.spec import (
    AddCodeRule,
    Announce,
    Effects,
    Intervention,
    Message,
    PlantMemory,
    SetProperty,
)
from concordia_like.memory.stream import naive_utc
from concordia_like.world.effects import EffectBase
from concordia_like.world.rules import apply_effects
from concordia_like.world.world_effects import PropertyEffect, RuleEffect

if TYPE_CHECKING:
    from concordia_like.engine.simulation import Simulation
    from concordia_like.experiments.scenario import Scenario


class Interventions(StepHook):
    name = "interventions"

    def __init__(self, scenario: Scenario, condition: str) -> None:
        self.scenario = scenario
        self.condition = condition
        self.due: dict[int, list[tuple[str, Intervention]]] = {}
        mine = scenario.interventions_of(condition)
        for name, iv in mine.items():
            self.due.setdefault(scenario.steps[name], []).append((name, iv))
        #: step -> the apps down from then on, where an outage begins or ends
        self.outages = outage_changes({n: (scenario.steps[n], iv) for n, iv in mine.items()})

    async def before_acting(self, sim: Simulation, step: int) -> StepInput | None:
        out = StepInput()
        for _name, iv in self.due.get(step, []):
            if isinstance(iv, Announce):
                out.announcements.append(Announcement(iv.text, iv.place))
            elif isinstance(iv, Message):
                out.announcements.append(Announcement(iv.text, to=tuple(iv.to)))
            elif isinstance(iv, Effects):
                result = apply_effects(sim.state, list(iv.effects))
                if iv.text:
                    text = (
                        iv.text if result.ok else f"{iv.text} (could not happen: {result.reason})"
                    )
                    out.announcements.append(Announcement(text, iv.place))
            elif isinstance(iv, AddCodeRule | SetProperty):
                # the stack may have been sold out and gone: the announcement stands
                apply_effects(sim.state, [_world_effect(iv)])
                if iv.text:
                    out.announcements.append(Announcement(iv.text, iv.place))
            elif isinstance(iv, InjectPost | FeedRanking):
                out.announcements += apply_app_intervention(iv, sim.state, sim.agents)
            elif isinstance(iv, Outage):
                out.announcements += outage_announcements(iv)
        if step in self.outages:
            out.announcements += apply_outages(sim.state, self.outages[step])
        return out if out.announcements or step in self.due or step in self.outages else None

    def plant_due(self, sim: Simulation, step: int) -> int:
        """Plant the memories due at `step` (about to run); how many were planted."""
        planted = 0
        when = naive_utc(sim.state.now)
        for _name, iv in self.due.get(step, []):
            if not isinstance(iv, PlantMemory):
                continue
            for who in iv.to:
                recent = sim.memory.recent(who, 50)
                if any(m.text == iv.text and naive_utc(m.created) == when for m in recent):
                    continue
                sim.plant_memory(who, iv.text)
                planted += 1
        return planted


def _world_effect(iv: AddCodeRule | SetProperty) -> EffectBase:
    """The world's own effect an intervention makes (`world.world_effects`)."""
    if isinstance(iv, AddCodeRule):
        return RuleEffect(rule=iv.rule)
    return PropertyEffect(item=iv.item, holder=iv.holder, property=iv.property, value=iv.value)
