"""Planning: a day plan at wake-up, the hour under way broken into steps, and replanning
when something important happens.

As in Generative Agents, an agent plans its day in broad strokes from who it is, how
yesterday went and what it has concluded lately; the block under way is decomposed into
steps of 5 to 60 minutes; an observation important enough may change the rest of the
day. The inputs are plain (names, persona text, times, strings: `PlanContext`) so the
agent layer can call this however it models personas. Every call of a kind in a step
goes to the model in one batch, and plans are stored as `plan` memories so that agents
can recall them.

A model answer that is unusable never stops the simulation: a failed day plan falls
back to the agent's routine (without one, to a one-block day), a failed decomposition
to the block itself, a failed replan to the plan as it was, each logged.

An agent with a usual day whose memory since its last plan holds nothing new (no news
it perceived, no intervention, no whisper: `PlanContext.news`) takes its routine as the
day's plan with no model call, as a person keeps to the usual day unless something
gives a reason to change it. Otherwise it plans from it: its routine is the skeleton, and what the
model proposes is merged into it (the model's entry wins at its hour); a proposal that
repeats an activity already in the plan, or is degenerate, is dropped, so a plan cannot
be one activity repeated (a small model asked for free activities with hours wrote one
activity eight times). A decomposition's repeated steps are dropped the same way, and
an hour of the routine is not decomposed at all: its own words are the hour's step.

Every item the model writes must read as an activity a person plans (a phrase with a
verb, not a name, a date, a greeting or a fragment: `degenerate.activity_problem`);
one that does not is dropped with its reason logged, and the routine's item stands.
Each plan item carries the typed place it happens at: the routine's, or the one the
model picked from the world's under the plan grammar (None: free time)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from concordia_like.agents.degenerate import activity_problem, is_loop, normalized
from concordia_like.agents.planning.context import (
    PlanContext,
    PlanningConfig,
    day_bounds,
    from_routine,
    needs_day_plan,
    routine_stands,
    with_place,
)
from concordia_like.agents.planning.requests import day_request, replan_request, steps_request
from concordia_like.llm.client import LanguageModel
from concordia_like.llm.triage import triage
from concordia_like.memory.plans import (
    STEP_MIN,
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
from concordia_like.memory.writes import MemoryWrites
from concordia_like.text import squash

log = logging.getLogger(__name__)


def not_an_activity(text: str, agent: str, names: Sequence[str], what: str) -> bool:
    """Whether a plan item the model wrote for `agent` fails to read as an activity
    (logged with the reason: what stands instead is `what`)."""
    problem = activity_problem(text, names, agent)
    if problem is not None:
        log.info("plan item %r of %s dropped (%s); %s stands", text, agent, problem, what)
    return problem is not None


def merge_into_skeleton(
    routine: Sequence[tuple[int, str, str | None]],
    proposals: Sequence[tuple[int, str, str | None]],
    wake_hour: int,
    agent: str = "",
    names: Sequence[str] = (),
) -> list[tuple[int, str, str | None]]:
    """(hour, activity, place) items of a day: the routine's from `wake_hour` on, then
    each proposal (hour, activity, place) in turn replacing the entry at its hour or
    adding one, unless it repeats an activity already in the plan at another hour, or
    does not read as an activity (`names`: of people and places, which an item is not)."""
    plan: dict[int, tuple[str, str | None]] = {}
    for minutes, activity, place in routine:
        if minutes // 60 >= wake_hour:
            plan.setdefault(minutes // 60, (with_place(activity, place), place))
    for hour, activity, place in proposals:
        text = with_place(activity, place)
        if is_loop(text) or not_an_activity(activity, agent, names, "the routine"):
            continue
        key = normalized(activity)
        if any(
            key == normalized(v) or key in normalized(v) for h, (v, _) in plan.items() if h != hour
        ):
            continue
        plan[hour] = (text, place)
    return [(h, text, place) for h, (text, place) in sorted(plan.items())]


def distinct_steps(proposals: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """(activity, minutes) proposals without a step said twice, or looping."""
    seen: set[str] = set()
    kept = []
    for text, minutes in proposals:
        key = normalized(text)
        if key and key not in seen and not is_loop(text):
            seen.add(key)
            kept.append((text, minutes))
    return kept


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
        writes: MemoryWrites | None = None,
    ) -> None:
        self.lm = lm
        self.store = store
        self.config = config
        #: with `writes`, plan memories join them for the caller to store (an engine
        #: writes them in its step's transaction) instead of being written here
        self.writes = writes

    # -- the whole step -------------------------------------------------------------

    async def step(
        self, contexts: Sequence[PlanContext], plans: dict[str, DayPlan], now: datetime
    ) -> dict[str, Activity]:
        """Bring every agent's plan up to `now` and say what each is doing: a day plan for
        each agent awake without one for today, a decomposition wherever the block under
        way has no step for now (two batched rounds at most). Updates `plans` in place."""
        waking = [c for c in contexts if needs_day_plan(c, plans.get(c.agent), now)]
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
        """A plan for the day of `now` for each agent, made in one batch of calls; an
        agent whose routine stands (`routine_stands`: nothing new since its last plan)
        takes it as it is, with no call, and the reason is logged."""
        day = now.date()
        asked = [c for c in contexts if not routine_stands(c)]
        requests = [
            day_request(c, day, self._reflections(c), self.config).model_copy(
                update={"why": "+".join(c.news) if c.news else None}
            )
            for c in asked
        ]
        answers = iter(await self.lm.complete_many(requests, return_exceptions=True))
        plans: dict[str, DayPlan] = {}
        for ctx in contexts:
            if routine_stands(ctx):
                log.info("day plan of %s: its routine, nothing new since its last plan", ctx.agent)
                answer: Any = None
            else:
                answer = next(answers)
            wake, bed = day_bounds(ctx, day)
            parsed = _parsed(answer, "day plan", ctx.agent) if answer is not None else None
            items: list[tuple[int, str, str | None]]
            if ctx.routine:
                proposals = [(i.hour, i.activity, i.place) for i in parsed.items] if parsed else []
                named = merge_into_skeleton(
                    ctx.routine, proposals, wake.hour, ctx.agent, ctx.places
                )
                items = [(h, text, ctx.place_ids.get(p or "")) for h, text, p in named]
            else:
                items = [
                    (i.hour, i.activity, None)
                    for i in (parsed.items if parsed is not None else [])
                    if not not_an_activity(i.activity, ctx.agent, ctx.places, "the rest")
                ]
            blocks = blocks_from_hours(items, wake, bed)
            if not blocks:
                blocks = [PlanBlock(wake, bed, "go about the usual daily routine")]
            plans[ctx.agent] = DayPlan(ctx.agent, day, wake, bed, blocks)
        self._remember(
            [(p.agent, f"Plan for {day:%A %B %d}: {p.describe()}") for p in plans.values()], now
        )
        return plans

    def _reflections(self, ctx: PlanContext) -> Sequence[str]:
        """What the agent has concluded lately: as given, else its newest reflections."""
        if ctx.reflections is not None:
            return ctx.reflections
        if self.store is None:
            return []
        recs = self.store.recent(ctx.agent, self.config.reflections_quoted, kinds=("reflection",))
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
            ctx = who.get(plan.agent)
            if block is not None and ctx is not None and from_routine(block.description, ctx):
                # the routine's own words for the hour, no call: a small model breaks
                # them into worse ones ("whitenashby feed", "stepsOneOneM consistsOf")
                plan.steps = _with_steps(plan, window, [(block.description, 60)])
                continue
            todo.append((plan, window))
        if not todo:
            return
        requests = [
            steps_request(p, w, who.get(p.agent) or PlanContext(p.agent), self.config)
            for p, w in todo
        ]
        answers = await self.lm.complete_many(requests, return_exceptions=True)
        for (plan, window), answer in zip(todo, answers, strict=True):
            parsed = _parsed(answer, "decomposition", plan.agent)
            block = plan.block_at(now)
            proposals = [
                (text, minutes)
                for text, minutes in distinct_steps(
                    [(s.activity, s.minutes) for s in parsed.steps] if parsed is not None else []
                )
                if not not_an_activity(text, plan.agent, (), "the block's own words")
            ]
            fallback = [(block.description if block else "carry on", 60)]
            plan.steps = _with_steps(plan, window, proposals, fallback)

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
            replan_request(plans[a], best[a], now, who.get(a) or PlanContext(a), self.config)
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
            ctx = who.get(agent) or PlanContext(agent)
            items: list[tuple[int, str, str | None]] = [
                (i.hour, i.activity, ctx.place_ids.get(getattr(i, "place", None) or ""))
                for i in parsed.items
                if not not_an_activity(i.activity, agent, ctx.places, "the plan as it was")
            ]
            reaction = squash(parsed.reaction)
            if reaction and not not_an_activity(reaction, agent, ctx.places, "no reaction"):
                # what the agent does right now comes first (free: it chooses where)
                items = [(cut.hour, reaction, None), *[it for it in items if it[0] > cut.hour]]
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

    def _remember(self, notes: Sequence[tuple[str, str]], now: datetime) -> None:
        memories = [NewMemory(a, t, "plan", now, self.config.plan_importance) for a, t in notes]
        if self.writes is not None:
            self.writes.add(memories)
        elif self.store is not None and memories:
            self.store.add_many(memories, now=now)
