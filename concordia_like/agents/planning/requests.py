"""The planner's model calls: their prompts and the schemas their answers decode under.

A day plan is asked from the agent's routine where it has one (`routine_request`): the
usual day, shown as one line per activity, and a grammar whose hours are the waking
day's and whose places are the world's, under which the model proposes a few changes.
Without a routine, a day is asked in broad strokes (`free_day_request`). An hour is
broken into steps whose activities are plain words (`steps_request`), and important
news may change the rest of the day (`replan_request`). Prompts are bounded: persona,
yesterday and reflections are cut to the config's lengths."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, create_model

from concordia_like.agents.planning.context import (
    PlanContext,
    PlanningConfig,
    day_bounds,
    with_place,
)
from concordia_like.llm.types import LLMRequest
from concordia_like.memory.constraints import int_enum
from concordia_like.memory.plans import STEP_MAX, STEP_MIN, STEP_UNIT, DayPlan, floor_to_unit
from concordia_like.memory.records import MemoryRecord

SYSTEM = "You plan a person's day. Answer with JSON only."
ROUTINE_SYSTEM = "You plan a person's day from their usual day."

#: an activity in words: two to six words of letters, single spaces, no digits (a small
#: model filled free strings with "dre 12, 13, 14", and with words padded with spaces up
#: to max_tokens). The words' lengths are bounded in the pattern itself: a grammar built
#: from a pattern ignores maxLength, so a bound only there let the model write past it
#: and the whole plan was refused; and vLLM's xgrammar refuses a pattern with length
#: bounds, so the pattern is the only bound
ACTIVITY_PATTERN = r"^[A-Za-z][A-Za-z',-]{0,11}( [A-Za-z',-]{1,12}){1,5}$"
ActivityWords = Annotated[str, StringConstraints(pattern=ACTIVITY_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=3, max_length=80)]


@lru_cache(maxsize=256)
def routine_plan_schema(
    first_hour: int, last_hour: int, places: tuple[str, ...], max_blocks: int
) -> type[BaseModel]:
    """Changes to a routine: the hour each starts (the waking day's), the place (a real
    one) and what is done there."""
    item = create_model(
        f"PlanEntry{first_hour}_{last_hour}",
        hour=(int_enum(first_hour, last_hour), ...),
        place=(Literal[places] if places else str, ...),  # type: ignore[arg-type]
        activity=(ActivityWords, ...),
    )
    return create_model(
        f"SkeletonPlan{first_hour}_{last_hour}",
        items=(Annotated[list[item], Field(min_length=1, max_length=max_blocks)], ...),
    )


@lru_cache(maxsize=64)
def _plan_item(first_hour: int, last_hour: int) -> type[BaseModel]:
    return create_model(
        f"PlanItem{first_hour}_{last_hour}",
        hour=(int_enum(first_hour, last_hour), ...),
        activity=(Text, ...),
    )


@lru_cache(maxsize=64)
def day_plan_schema(first_hour: int, last_hour: int, max_blocks: int) -> type[BaseModel]:
    """Activities with the hour each starts, hours bounded to the waking day."""
    item = _plan_item(first_hour, last_hour)
    return create_model(
        f"DayPlan{first_hour}_{last_hour}",
        items=(Annotated[list[item], Field(min_length=1, max_length=max_blocks)], ...),  # type: ignore[valid-type, arg-type]
    )


@lru_cache(maxsize=8)
def steps_schema(max_steps: int) -> type[BaseModel]:
    """Steps of a block, each an activity in words and its minutes."""
    step = create_model(
        "PlanStepWords",
        activity=(ActivityWords, ...),
        minutes=(int_enum(STEP_MIN, STEP_MAX, STEP_UNIT), ...),
    )
    return create_model(
        "PlanStepsWords",
        steps=(Annotated[list[step], Field(min_length=1, max_length=max_steps)], ...),
    )


@lru_cache(maxsize=64)
def _placed_item(first_hour: int, last_hour: int, places: tuple[str, ...]) -> type[BaseModel]:
    return create_model(
        f"PlacedItem{first_hour}_{last_hour}",
        hour=(int_enum(first_hour, last_hour), ...),
        place=(Literal[places], ...),  # type: ignore[arg-type]
        activity=(ActivityWords, ...),
    )


@lru_cache(maxsize=64)
def replan_schema(
    first_hour: int, last_hour: int, max_blocks: int, places: tuple[str, ...] = ()
) -> type[BaseModel]:
    """Whether to change the day; if so, what to do now and the rest of the day (each
    item at one of `places`, where the world has them)."""
    if places:
        item = _placed_item(first_hour, last_hour, places)
    else:
        item = _plan_item(first_hour, last_hour)
    return create_model(
        f"Replan{first_hour}_{last_hour}{'P' if places else ''}",
        change=(bool, ...),
        reaction=(Annotated[str, StringConstraints(max_length=80)], ""),
        items=(Annotated[list[item], Field(max_length=max_blocks)], []),  # type: ignore[valid-type, arg-type]
    )


def _request(
    ctx: PlanContext, lines: Sequence[str], system: str, *, schema: type[BaseModel], max_tokens: int
) -> LLMRequest:
    """A plan call: under the agent's own prefix where it has one (its act calls' system
    message, whose KV a backend may keep), else under the planner's generic one."""
    return LLMRequest.chat(
        "\n".join(line for line in lines if line),
        system=ctx.prefix or system,
        schema=schema,
        purpose="plan",
        agent=ctx.agent,
        max_tokens=max_tokens,
    )


def _about(ctx: PlanContext, cfg: PlanningConfig) -> str:
    """The persona for the question, where no prefix carries it."""
    return "" if ctx.prefix else ctx.persona[: cfg.persona_chars]


def day_request(
    ctx: PlanContext, day: date, reflections: Sequence[str], cfg: PlanningConfig
) -> LLMRequest:
    """The day plan's call: from the routine where the agent has one."""
    lines = [_about(ctx, cfg)]
    if ctx.yesterday:
        lines.append(f"Yesterday: {ctx.yesterday[: cfg.yesterday_chars]}")
    quoted = [r[: cfg.reflection_chars] for r in list(reflections)[: cfg.reflections_quoted]]
    if quoted:
        lines.append(f"{ctx.agent} has concluded lately:\n" + "\n".join(f"- {r}" for r in quoted))
    if ctx.routine:
        return routine_request(ctx, day, lines, cfg)
    return free_day_request(ctx, day, lines, cfg)


def routine_request(
    ctx: PlanContext, day: date, lines: list[str], cfg: PlanningConfig
) -> LLMRequest:
    """Changes to the usual day, shown one activity a line (no field name)."""
    wake, bed = day_bounds(ctx, day)
    first = ctx.agent.split(" ")[0]
    n = cfg.routine_changes
    lines.append(f"Today is {day:%A %B %d}. {ctx.agent}'s usual day:")
    lines.extend(
        f"{m // 60:02d}:{m % 60:02d} {with_place(a, p)}"
        for m, a, p in ctx.routine
        if m // 60 >= wake.hour
    )
    lines.append(
        f"What will {first} do differently today, from {wake:%H:%M} to {bed:%H:%M}? "
        f"Give one to {n} activities, each at the hour it starts, that change the usual "
        f"day or add to it, for what is on {first}'s mind. Each activity in a few plain "
        "words."
    )
    places = tuple(sorted(set(ctx.places) | {p for _, _, p in ctx.routine if p}))
    return _request(
        ctx,
        lines,
        ROUTINE_SYSTEM,
        schema=routine_plan_schema(wake.hour, bed.hour - 1, places, n),
        max_tokens=50 * n + 16,
    )


def free_day_request(
    ctx: PlanContext, day: date, lines: list[str], cfg: PlanningConfig
) -> LLMRequest:
    """A day in broad strokes, for an agent without a routine."""
    wake, bed = day_bounds(ctx, day)
    lines.append(
        f"Today is {day:%A %B %d}. {ctx.agent} wakes up at {wake:%H:%M} and goes to bed at "
        f"{bed:%H:%M}. Plan {ctx.agent}'s day in broad strokes: 3 to {cfg.max_blocks} "
        f"activities, each with the hour it starts."
    )
    lines.append('Answer as JSON: "items", a list of {"hour", "activity"}.')
    return _request(
        ctx,
        lines,
        SYSTEM,
        schema=day_plan_schema(wake.hour, bed.hour - 1, cfg.max_blocks),
        max_tokens=32 * cfg.max_blocks + 16,
    )


def steps_request(
    plan: DayPlan, window: tuple[datetime, datetime], ctx: PlanContext, cfg: PlanningConfig
) -> LLMRequest:
    """The block under way, broken into steps that fill `window`."""
    start, end = window
    total = int((end - start).total_seconds() // 60)
    block = plan.block_at(start)
    n = cfg.max_steps
    prompt = (
        f"{plan.agent} plans to {block.description if block else 'carry on'} "
        f"from {start:%H:%M} to {end:%H:%M}. Break this into 1 to {n} steps "
        f"of {STEP_MIN} to {STEP_MAX} minutes that fill the {total} minutes.\n"
        'Answer as JSON: "steps", a list of {"activity", "minutes"}.'
    )
    return _request(
        ctx, [_about(ctx, cfg), prompt], SYSTEM, schema=steps_schema(n), max_tokens=36 * n + 16
    )


def replan_request(
    plan: DayPlan, obs: MemoryRecord, now: datetime, ctx: PlanContext, cfg: PlanningConfig
) -> LLMRequest:
    """Whether news changes the rest of the day, and if so to what."""
    cut = floor_to_unit(now)
    fields = '"hour", "place", "activity"' if ctx.places else '"hour", "activity"'
    prompt = (
        f"It is {cut:%H:%M}. {plan.agent}'s plan for the rest of the day: "
        f"{plan.describe(cut)}\n{plan.agent} has just observed: {obs.text[:200]}\n"
        f"Should {plan.agent} change the plan because of this? If so, say what "
        f"{plan.agent} does now (reaction) and give the new plan until "
        f"{plan.bedtime:%H:%M}.\n"
        'Answer as JSON: "change" (true or false), "reaction" (what to do now), '
        f'"items", a list of {{{fields}}} for the rest of the day.'
    )
    last = max(cut.hour, plan.bedtime.hour - 1)
    return _request(
        ctx,
        [_about(ctx, cfg), prompt],
        SYSTEM,
        schema=replan_schema(cut.hour, last, cfg.max_blocks, tuple(sorted(ctx.places))),
        max_tokens=32 * cfg.max_blocks + 40,
    )
