"""Planning: a day plan at wake-up, the hour under way broken into steps, and replanning
when something important happens.

As in Generative Agents, an agent plans its day in broad strokes from who it is, how
yesterday went and what it has concluded lately; the block under way is decomposed into
steps of 5 to 60 minutes; an observation important enough may change the rest of the
day. The inputs are plain (names, persona text, times, strings) so the agent layer can
call this however it models personas. Every call of a kind in a step goes to the model
in one batch, and plans are stored as `plan` memories so that agents can recall them.

Prompts are bounded (persona, yesterday and reflections are cut to fixed lengths), and a
model answer that is unusable never stops the simulation: a failed day plan falls back
to a one-block day of the agent's usual routine, a failed decomposition to the block
itself, a failed replan to the plan as it was, each logged.

An agent with a usual day (`PlanContext.routine`) plans from it: its routine is the
skeleton, shown as one line per activity, and the model keeps, changes or adds
activities under a grammar whose hours are the waking day's and whose places are the
world's (`skeleton_plan_schema`). What it proposes is merged into the skeleton (the
model's entry wins at its hour), and a proposal that repeats an activity already in
the plan, or is degenerate, is dropped, so a plan cannot be one activity repeated
(SmolLM2-135M, asked for free activities with hours, wrote one activity eight times).
A decomposition's repeated steps are dropped the same way."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, create_model

from concordia_like.agents.degenerate import is_loop, normalized
from concordia_like.llm.client import LanguageModel
from concordia_like.llm.triage import triage
from concordia_like.llm.types import LLMRequest
from concordia_like.memory.constraints import int_enum
from concordia_like.memory.plans import (
    STEP_MAX,
    STEP_MIN,
    STEP_UNIT,
    Activity,
    DayPlan,
    PlanBlock,
    activities_in,
    blocks_from_hours,
    floor_to_unit,
    replace_rest_of_day,
)
from concordia_like.memory.records import MemoryRecord, NewMemory
from concordia_like.memory.stream import MemoryStore

log = logging.getLogger(__name__)

SYSTEM = "You plan a person's day. Answer with JSON only."
PLAN_SYSTEM = "You plan a person's day from their usual day."


@dataclass(frozen=True)
class PlanningConfig:
    #: observations at least this important are put to the agent as a reason to replan
    replan_importance: int = 7
    #: an agent is asked to replan at most once in this many minutes: news keeps coming,
    #: and a day rewritten every step is no plan (nor cheap)
    replan_cooldown_minutes: int = 60
    plan_importance: int = 5
    max_blocks: int = 8
    max_steps: int = 6
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
    #: the agent's stable prefix (persona and rules, the system message of its act
    #: calls): where given, plan calls open with it too, so a backend that keeps
    #: prefixes decodes an agent's persona once for all its calls; the persona is then
    #: not repeated in the question
    prefix: str = ""


#: an activity in words: two to six words of letters, single spaces, no digits
#: (SmolLM2 filled free strings with "dre 12, 13, 14" and "The  OLD BED" padded with
#: spaces up to max_tokens), short. The words' lengths are bounded in the pattern itself:
#: a grammar built from a pattern ignores maxLength, so a bound only in maxLength let the
#: model write past it and the whole plan was refused. The pattern is the only bound
#: (3 to ACTIVITY_MAX characters): vLLM's xgrammar refuses a pattern with length bounds
ACTIVITY_PATTERN = r"^[A-Za-z][A-Za-z',-]{0,11}( [A-Za-z',-]{1,12}){1,5}$"
ACTIVITY_MAX = 12 + 5 * 13  # what the pattern allows at most
Activity_ = Annotated[str, StringConstraints(pattern=ACTIVITY_PATTERN)]
#: how many changes to the routine a skeleton plan proposes at most (the routine is
#: the rest of the day): each entry costs some 30 tokens of decoding
SKELETON_CHANGES = 3
SKELETON_STEPS = 3


@lru_cache(maxsize=256)
def skeleton_plan_schema(
    first_hour: int, last_hour: int, places: tuple[str, ...], max_blocks: int
) -> type[BaseModel]:
    """Activities of a day made from a routine: the hour each starts (the waking
    day's), the place (a real one) and what is done there."""
    item = create_model(
        f"PlanEntry{first_hour}_{last_hour}",
        hour=(int_enum(first_hour, last_hour), ...),
        place=(Literal[places] if places else str, ...),  # type: ignore[valid-type]
        activity=(Activity_, ...),
    )
    return create_model(
        f"SkeletonPlan{first_hour}_{last_hour}",
        items=(Annotated[list[item], Field(min_length=1, max_length=max_blocks)], ...),  # type: ignore[valid-type]
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


def _with_place(activity: str, place: str | None) -> str:
    text = " ".join(activity.split()).rstrip(".")
    if place and normalized(place) not in normalized(text):
        return f"{text} at {place}"
    return text


def _with_steps(
    plan: DayPlan,
    window: tuple[datetime, datetime],
    proposals: Sequence[tuple[str, int]],
    fallback: Sequence[tuple[str, int]] = (),
) -> list[Activity]:
    """The plan's steps with `window` filled from (activity, minutes) proposals, or
    else from `fallback`."""
    steps = activities_in(window, proposals) or activities_in(window, fallback)
    kept = [s for s in plan.steps if s.end <= window[0] or s.start >= window[1]]
    return sorted(kept + steps, key=lambda s: s.start)


def merge_into_skeleton(
    routine: Sequence[tuple[int, str, str | None]],
    proposals: Sequence[tuple[int, str, str | None]],
    wake_hour: int,
) -> list[tuple[int, str]]:
    """(hour, activity) items of a day: the routine's from `wake_hour` on, then each
    proposal (hour, activity, place) in turn replacing the entry at its hour or adding
    one, unless it repeats an activity already in the plan at another hour, is a loop
    or is under two words."""
    plan: dict[int, str] = {}
    for minutes, activity, place in routine:
        if minutes // 60 >= wake_hour:
            plan.setdefault(minutes // 60, _with_place(activity, place))
    for hour, activity, place in proposals:
        text = _with_place(activity, place)
        if len(normalized(activity).split()) < 2 or is_loop(text):
            continue
        key = normalized(activity)
        if any(key == normalized(v) or key in normalized(v) for h, v in plan.items() if h != hour):
            continue
        plan[hour] = text
    return sorted(plan.items())


Text = Annotated[str, StringConstraints(min_length=3, max_length=80)]


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
        items=(Annotated[list[item], Field(min_length=1, max_length=max_blocks)], ...),  # type: ignore[valid-type]
    )


@lru_cache(maxsize=8)
def steps_schema(max_steps: int, in_words: bool = False) -> type[BaseModel]:
    """Steps of a block; `in_words`: activities as ACTIVITY_PATTERN has them."""
    free = Annotated[str, StringConstraints(min_length=3, max_length=60)]
    step = create_model(
        "PlanStepWords" if in_words else "PlanStep",
        activity=(Activity_ if in_words else free, ...),
        minutes=(int_enum(STEP_MIN, STEP_MAX, STEP_UNIT), ...),
    )
    return create_model(
        "PlanStepsWords" if in_words else "PlanSteps",
        steps=(Annotated[list[step], Field(min_length=1, max_length=max_steps)], ...),
    )


@lru_cache(maxsize=64)
def replan_schema(first_hour: int, last_hour: int, max_blocks: int) -> type[BaseModel]:
    """Whether to change the day; if so, what to do now and the rest of the day."""
    item = _plan_item(first_hour, last_hour)
    return create_model(
        f"Replan{first_hour}_{last_hour}",
        change=(bool, ...),
        reaction=(Annotated[str, StringConstraints(max_length=80)], ""),
        items=(Annotated[list[item], Field(max_length=max_blocks)], []),  # type: ignore[valid-type]
    )


def _day_bounds(ctx: PlanContext, day: date) -> tuple[datetime, datetime]:
    wake = datetime.combine(day, time(hour=min(max(ctx.wake_hour, 0), 22)))
    bed = datetime.combine(day, time(hour=min(max(ctx.bedtime_hour, wake.hour + 1), 23)))
    return wake, bed


def _needs_day_plan(ctx: PlanContext, plan: DayPlan | None, now: datetime) -> bool:
    """Awake, and without a plan for today."""
    awake = now >= _day_bounds(ctx, now.date())[0]
    return awake and (plan is None or plan.day != now.date())


def _parsed(answer: Any, what: str, agent: str) -> Any:
    answer = triage(answer)  # anything but unusable output aborts the step
    if isinstance(answer, BaseException):
        log.warning("%s of %s skipped: unusable model output: %s", what, agent, answer)
        return None
    return answer.parsed


class Planner:
    def __init__(
        self,
        lm: LanguageModel,
        store: MemoryStore | None = None,
        config: PlanningConfig = PlanningConfig(),
        *,
        defer: bool = False,
    ) -> None:
        self.lm = lm
        self.store = store
        self.config = config
        #: with `defer`, plan memories wait in `pending` for the caller to store (an
        #: engine writes them in its step's transaction) instead of being written here
        self.defer = defer
        self.pending: list[NewMemory] = []
        #: plan from the routine where an agent has one (False: the old free plans, kept
        #: only to measure against)
        self.skeleton = True

    # -- the whole step -------------------------------------------------------------

    async def step(
        self, contexts: Sequence[PlanContext], plans: dict[str, DayPlan], now: datetime
    ) -> dict[str, Activity]:
        """Bring every agent's plan up to `now` and say what each is doing: a day plan for
        each agent awake without one for today, a decomposition wherever the block under
        way has no step for now (two batched rounds at most). Updates `plans` in place."""
        waking = [c for c in contexts if _needs_day_plan(c, plans.get(c.agent), now)]
        if waking:
            plans.update(await self.plan_days(waking, now))
        todo = [plans[c.agent] for c in contexts if c.agent in plans]
        await self.decompose(todo, now, {c.agent: c for c in contexts})
        out: dict[str, Activity] = {}
        for c in contexts:
            plan = plans.get(c.agent)
            if plan is not None and plan.day == now.date():
                out[c.agent] = plan.current(now)
            else:
                out[c.agent] = Activity(floor_to_unit(now), STEP_MIN, "sleeping")
        return out

    # -- day plans ------------------------------------------------------------------

    async def plan_days(self, contexts: Sequence[PlanContext], now: datetime) -> dict[str, DayPlan]:
        """A plan for the day of `now` for each agent, made in one batch of calls."""
        day = now.date()
        requests = [self._day_request(c, day) for c in contexts]
        answers = await self.lm.complete_many(requests, return_exceptions=True)
        plans: dict[str, DayPlan] = {}
        for ctx, answer in zip(contexts, answers, strict=True):
            wake, bed = _day_bounds(ctx, day)
            parsed = _parsed(answer, "day plan", ctx.agent)
            if self._uses_skeleton(ctx):
                proposals = [(i.hour, i.activity, i.place) for i in parsed.items] if parsed else []
                items = merge_into_skeleton(ctx.routine, proposals, wake.hour)
            else:
                items = [(i.hour, i.activity) for i in parsed.items] if parsed is not None else []
            blocks = blocks_from_hours(items, wake, bed)
            if not blocks:
                blocks = [PlanBlock(wake, bed, "go about the usual daily routine")]
            plans[ctx.agent] = DayPlan(ctx.agent, day, wake, bed, blocks)
        self._remember(
            [(p.agent, f"Plan for {day:%A %B %d}: {p.describe()}") for p in plans.values()], now
        )
        return plans

    def _uses_skeleton(self, ctx: PlanContext) -> bool:
        return self.skeleton and bool(ctx.routine)

    def _skeleton_request(self, ctx: PlanContext, day: date, lines: list[str]) -> LLMRequest:
        wake, bed = _day_bounds(ctx, day)
        first = ctx.agent.split(" ")[0]
        usual = [
            f"{m // 60:02d}:{m % 60:02d} {_with_place(a, p)}"
            for m, a, p in ctx.routine
            if m // 60 >= wake.hour
        ]
        lines.append(f"Today is {day:%A %B %d}. {ctx.agent}'s usual day:")
        lines.extend(usual)
        lines.append(
            f"What will {first} do differently today, from {wake:%H:%M} to {bed:%H:%M}? "
            f"Give one to {SKELETON_CHANGES} activities, each at the hour it starts, that "
            f"change the usual day or add to it, for what is on {first}'s mind. Each "
            "activity in a few plain words."
        )
        places = tuple(sorted(set(ctx.places) | {p for _, _, p in ctx.routine if p}))
        return _request(
            ctx,
            lines,
            PLAN_SYSTEM,
            schema=skeleton_plan_schema(wake.hour, bed.hour - 1, places, SKELETON_CHANGES),
            max_tokens=50 * SKELETON_CHANGES + 16,
        )

    def _day_request(self, ctx: PlanContext, day: date) -> LLMRequest:
        cfg = self.config
        wake, bed = _day_bounds(ctx, day)
        reflections = ctx.reflections
        if reflections is None:
            reflections = self._reflections(ctx.agent)
        lines = [self._about(ctx)]
        if ctx.yesterday:
            lines.append(f"Yesterday: {ctx.yesterday[: cfg.yesterday_chars]}")
        quoted = [r[: cfg.reflection_chars] for r in list(reflections)[: cfg.reflections_quoted]]
        if quoted:
            lines.append(
                f"{ctx.agent} has concluded lately:\n" + "\n".join(f"- {r}" for r in quoted)
            )
        if self._uses_skeleton(ctx):
            return self._skeleton_request(ctx, day, lines)
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

    def _reflections(self, agent: str) -> list[str]:
        if self.store is None:
            return []
        recs = self.store.recent(agent, self.config.reflections_quoted, kinds=("reflection",))
        return [r.text for r in recs]

    # -- decomposition --------------------------------------------------------------

    async def decompose(
        self,
        plans: Sequence[DayPlan],
        now: datetime,
        who: Mapping[str, PlanContext] | None = None,
    ) -> None:
        """Break the block under way into steps for what is left of the hour, for every
        plan that has no step for `now` (one batch of calls). `who`: each agent's
        context, for its persona or prefix."""
        who = who or {}
        todo = []
        for plan in plans:
            window = plan.window(now) if plan.needs_decomposition(now) else None
            if window is None:
                continue
            block = plan.block_at(now)
            if self._from_routine(block, who.get(plan.agent)):
                # the routine's own words for the hour, no call: a small model breaks
                # them into worse ones ("whitenashby feed", "stepsOneOneM consistsOf")
                plan.steps = _with_steps(plan, window, [(block.description, 60)])
                continue
            todo.append((plan, window))
        if not todo:
            return
        requests = [
            self._steps_request(p, w, who.get(p.agent) or PlanContext(p.agent)) for p, w in todo
        ]
        answers = await self.lm.complete_many(requests, return_exceptions=True)
        for (plan, window), answer in zip(todo, answers, strict=True):
            parsed = _parsed(answer, "decomposition", plan.agent)
            block = plan.block_at(now)
            proposals = (
                [(s.activity, s.minutes) for s in parsed.steps] if parsed is not None else []
            )
            if self.skeleton:  # a step said twice, or looping, is no step
                seen: set[str] = set()
                kept = []
                for text, minutes in proposals:
                    key = normalized(text)
                    if key and key not in seen and not is_loop(text):
                        seen.add(key)
                        kept.append((text, minutes))
                proposals = kept
            fallback = [(block.description if block else "carry on", 60)]
            plan.steps = _with_steps(plan, window, proposals, fallback)

    def _from_routine(self, block: PlanBlock | None, ctx: PlanContext | None) -> bool:
        """Whether a block is an entry of the agent's routine, as a skeleton plan keeps
        it (not one the model proposed)."""
        if block is None or ctx is None or not self._uses_skeleton(ctx):
            return False
        return any(block.description == _with_place(a, p) for _, a, p in ctx.routine)

    def _steps_request(
        self, plan: DayPlan, window: tuple[datetime, datetime], ctx: PlanContext
    ) -> LLMRequest:
        cfg = self.config
        start, end = window
        total = int((end - start).total_seconds() // 60)
        block = plan.block_at(start)
        prompt = (
            f"{plan.agent} plans to {block.description if block else 'carry on'} "
            f"from {start:%H:%M} to {end:%H:%M}. Break this into 1 to {cfg.max_steps} steps "
            f"of {STEP_MIN} to {STEP_MAX} minutes that fill the {total} minutes.\n"
            'Answer as JSON: "steps", a list of {"activity", "minutes"}.'
        )
        n = SKELETON_STEPS if self.skeleton else cfg.max_steps
        return _request(
            ctx,
            [self._about(ctx), prompt.replace(f"1 to {cfg.max_steps} steps", f"1 to {n} steps")],
            SYSTEM,
            schema=steps_schema(n, self.skeleton),
            max_tokens=36 * n + 16,
        )

    def _about(self, ctx: PlanContext) -> str:
        """The persona for the question, where no prefix carries it."""
        return "" if ctx.prefix else ctx.persona[: self.config.persona_chars]

    # -- replanning -----------------------------------------------------------------

    async def react(
        self,
        observations: Sequence[MemoryRecord],
        plans: dict[str, DayPlan],
        now: datetime,
        who: Mapping[str, PlanContext] | None = None,
    ) -> dict[str, bool]:
        """Offer each agent its most important new observation, if important enough to
        change the day, and let it replan the rest of the day (one batch). Returns, per
        agent asked, whether its plan changed; `plans` is updated in place."""
        best: dict[str, MemoryRecord] = {}
        for obs in observations:
            plan = plans.get(obs.agent)
            if obs.importance < self.config.replan_importance or plan is None:
                continue
            if plan.day != now.date() or plan.block_at(now) is None:
                continue
            cooldown = timedelta(minutes=self.config.replan_cooldown_minutes)
            if plan.asked is not None and now - plan.asked < cooldown:
                continue
            if obs.agent not in best or obs.importance > best[obs.agent].importance:
                best[obs.agent] = obs
        if not best:
            return {}
        who = who or {}
        agents = list(best)
        for a in agents:
            plans[a].asked = now
        requests = [
            self._replan_request(plans[a], best[a], now, who.get(a) or PlanContext(a))
            for a in agents
        ]
        answers = await self.lm.complete_many(requests, return_exceptions=True)
        changed: dict[str, bool] = {}
        notes: list[tuple[str, str]] = []
        for agent, answer in zip(agents, answers, strict=True):
            parsed = _parsed(answer, "replan", agent)
            changed[agent] = False
            if parsed is None or not parsed.change:
                continue
            plan = plans[agent]
            cut = floor_to_unit(now)
            items = [(i.hour, i.activity) for i in parsed.items]
            reaction = " ".join(parsed.reaction.split())
            if reaction:  # what the agent does right now comes first
                items = [(cut.hour, reaction), *[(h, a) for h, a in items if h > cut.hour]]
            blocks = blocks_from_hours(items, cut, plan.bedtime)
            if not blocks:
                continue
            new_plan = replace_rest_of_day(plan, now, blocks)
            plans[agent] = new_plan
            changed[agent] = True
            note = (
                f"Changed plan at {cut:%H:%M} after: {best[agent].text[:120]}. "
                f"Rest of the day: {new_plan.describe(cut)}"
            )
            notes.append((agent, note))
        self._remember(notes, now)
        if notes:
            await self.decompose([plans[a] for a, _ in notes], now, who)
        return changed

    def _replan_request(
        self, plan: DayPlan, obs: MemoryRecord, now: datetime, ctx: PlanContext
    ) -> LLMRequest:
        cfg = self.config
        cut = floor_to_unit(now)
        prompt = (
            f"It is {cut:%H:%M}. {plan.agent}'s plan for the rest of the day: "
            f"{plan.describe(cut)}\n{plan.agent} has just observed: {obs.text[:200]}\n"
            f"Should {plan.agent} change the plan because of this? If so, say what "
            f"{plan.agent} does now (reaction) and give the new plan until "
            f"{plan.bedtime:%H:%M}.\n"
            'Answer as JSON: "change" (true or false), "reaction" (what to do now), '
            '"items", a list of {"hour", "activity"} for the rest of the day.'
        )
        return _request(
            ctx,
            [self._about(ctx), prompt],
            SYSTEM,
            schema=replan_schema(cut.hour, max(cut.hour, plan.bedtime.hour - 1), cfg.max_blocks),
            max_tokens=32 * cfg.max_blocks + 40,
        )

    def _remember(self, notes: Sequence[tuple[str, str]], now: datetime) -> None:
        memories = [NewMemory(a, t, "plan", now, self.config.plan_importance) for a, t in notes]
        if self.defer:
            self.pending.extend(memories)
        elif self.store is not None and memories:
            self.store.add_many(memories, now=now)

    def take_pending(self) -> list[NewMemory]:
        """The plan memories deferred so far, handed over once."""
        out, self.pending = self.pending, []
        return out
