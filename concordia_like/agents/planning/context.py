"""What an agent plans from (`PlanContext`) and how much a plan may hold
(`PlanningConfig`), with the waking day they bound."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from concordia_like.agents.degenerate import normalized
from concordia_like.memory.plans import DayPlan
from concordia_like.text import squash


@dataclass(frozen=True)
class PlanningConfig:
    #: observations at least this important are put to the agent as a reason to replan
    replan_importance: int = 7
    #: an agent is asked to replan at most once in this many minutes: news keeps coming,
    #: and a day rewritten every step is no plan (nor cheap)
    replan_cooldown_minutes: int = 60
    plan_importance: int = 5
    #: activities of a day planned without a routine, and of a replanned rest of the day
    max_blocks: int = 8
    #: changes to the routine a day plan proposes at most (the routine is the rest of
    #: the day): each costs tens of tokens of decoding
    routine_changes: int = 3
    #: steps of an hour's decomposition
    max_steps: int = 3
    persona_chars: int = 400
    yesterday_chars: int = 300
    reflections_quoted: int = 4
    reflection_chars: int = 120


@dataclass(frozen=True)
class PlanContext:
    """What an agent plans its day from. `reflections=None` takes its newest
    reflections from the memory store."""

    agent: str
    persona: str = ""
    yesterday: str = ""
    reflections: Sequence[str] | None = None
    wake_hour: int = 7
    bedtime_hour: int = 23
    #: the usual day, the skeleton of the plan: (minutes after midnight, activity,
    #: place name or None), in time order
    routine: tuple[tuple[int, str, str | None], ...] = ()
    #: the names of the places a plan may name
    places: tuple[str, ...] = ()
    #: place name -> place id, for the typed place of each plan item
    place_ids: Mapping[str, str] = field(default_factory=dict)
    #: the agent's stable prefix (persona and rules, the system message of its act
    #: calls): where given, plan calls open with it too, so a backend that keeps
    #: prefixes decodes an agent's persona once for all its calls; the persona is then
    #: not repeated in the question
    prefix: str = ""
    #: what calls for a change to the routine since the agent's last plan (news it
    #: perceived, an intervention, a whisper): with none (an empty tuple) and a routine,
    #: the routine is the day's plan and no model call is made; None: not tracked, the
    #: model is asked as always
    news: tuple[str, ...] | None = None


def day_bounds(ctx: PlanContext, day: date) -> tuple[datetime, datetime]:
    """Wake-up and bedtime on `day`, kept inside it and in that order."""
    wake = datetime.combine(day, time(hour=min(max(ctx.wake_hour, 0), 22)))
    bed = datetime.combine(day, time(hour=min(max(ctx.bedtime_hour, wake.hour + 1), 23)))
    return wake, bed


def needs_day_plan(ctx: PlanContext, plan: DayPlan | None, now: datetime) -> bool:
    """Awake, and without a plan for today."""
    awake = now >= day_bounds(ctx, now.date())[0]
    return awake and (plan is None or plan.day != now.date())


def with_place(activity: str, place: str | None) -> str:
    """A routine entry's words, with its place where they do not name it."""
    text = squash(activity).rstrip(".")
    if place and normalized(place) not in normalized(text):
        return f"{text} at {place}"
    return text


def from_routine(description: str, ctx: PlanContext) -> bool:
    """Whether a block's description is an entry of the agent's routine, as a plan
    made from the routine keeps it (not one the model proposed)."""
    return any(description == with_place(a, p) for _, a, p in ctx.routine)


def routine_stands(ctx: PlanContext) -> bool:
    """Whether the agent's routine is its day plan as it is: it has one, and nothing
    since its last plan gives it a reason to change it."""
    return bool(ctx.routine) and ctx.news is not None and not ctx.news
