"""Attention: when a resident's model is asked what it does.

A resident gets its act call when, and only when, something calls for a choice, and
each call records why:

- `addressed`: someone spoke to it;
- `message`: something reached it through an app, wherever it is (a message, a
  payment, a reply to its post: `world.apps`);
- `news`: it perceived an event that is not routine movement (an announcement, a
  scheduled event, an outcome that involves it, such as something given to it);
- `intervention`: something from outside the world reached it (a scenario's
  intervention, the sandbox's `inject`, a message);
- `whisper`: a memory was planted in it between steps;
- `company`: someone is where it is whom it has not met during this plan item (at most
  once per pair and plan item, so two people standing together do not ask every step);
- `plan_start`: a plan item begins that names no place (free time: it chooses where);
- `idle`: it has gone `idle_steps` steps without a call (a chance to do something
  unplanned).

A sandbox player's resident acts as the player says (`player`); everyone else with no
reason follows its plan by code (`agents.autopilot`). Under the `always` policy every
awake resident is asked every step, as before attention existed, and the reasons are
still recorded.

Who is new to a resident is found without a list of everyone where it is: someone can
be new only if they or the resident arrived since its last step (or its plan item
began), so the resident remembers where it was when last asked and the latest few it
met, not a crowd (`arrivals`). A busy square costs each resident there the people
who arrive, not everyone present.

What a resident's attention remembers between steps (reasons waiting for its next
step, whom it has lately met during the plan item and where, when it was last asked,
where it said it could not get to) round-trips through `to_dict`/`restore`, with the
resident, so a resumed run decides exactly as an uninterrupted one."""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from concordia_like.agents.autopilot import plan_item

if TYPE_CHECKING:
    from concordia_like.agents.agent import Agent
    from concordia_like.world.state import WorldState

AttentionMode = Literal["events", "always"]
#: what an act call offers (`choices_for`): everything, the people here, or next door
#: where someone is
Choices = Literal["any", "people", "company"]
ATTENTION_MODES: tuple[str, ...] = ("events", "always")
#: every reason a resident may be asked for, in the order they are recorded
REASONS: tuple[str, ...] = (
    "addressed",
    "message",
    "news",
    "intervention",
    "whisper",
    "company",
    "plan_start",
    "idle",
    "always",
)
#: the reasons perceived in one step that ask for the resident's choice in the next
CARRIED = ("news", "intervention", "whisper", "message")
#: reasons that call for a choice among the people here, not of where to go: asked for
#: these alone (under `events`), a resident's choices leave out moving elsewhere and
#: thinking aloud, and carrying on with its plan is how it walks on (a small model
#: asked to choose among "go to X" options picks one at random, and walks away from its
#: plan; offered itself to speak to, it talks to itself in company)
SOCIAL = frozenset({"addressed", "company"})
#: of the people met during a plan item, how many a resident remembers (the latest met):
#: those who stay where it is are not new whether remembered or not (they did not
#: arrive), so the bound only lets someone forgotten who comes back be met anew, and a
#: busy square's passers-by do not pile up in a state checkpointed each step it changes
#: (a town never reaches it)
MET_MAX = 12
#: an hour of the town's ten-minute steps: a chance an hour to do something unplanned
DEFAULT_IDLE_STEPS = 6


class AttentionPolicy(BaseModel):
    """Who is asked each step: `events` (only where something calls for a choice) or
    `always` (every awake resident, every step); `idle_steps`: under `events`, the
    most steps a resident goes without a call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: AttentionMode = "events"
    idle_steps: int = Field(DEFAULT_IDLE_STEPS, ge=1, le=10_000)

    def with_overrides(
        self, mode: str | None = None, idle_steps: int | None = None
    ) -> AttentionPolicy:
        """This policy with what is given replaced (a world file's keys over the
        defaults, the command line's over those); validated like the policy."""
        given = {"mode": mode, "idle_steps": idle_steps}
        changes = {k: v for k, v in given.items() if v is not None}
        return AttentionPolicy.model_validate({**self.model_dump(), **changes})

    @classmethod
    def of_world(cls, spec: Any) -> AttentionPolicy:
        """The policy a world file asks for (its `attention` and `idle_steps` keys)."""
        return cls().with_overrides(spec.attention, spec.idle_steps)

    def record(self) -> dict[str, Any]:
        """What a run records of it (and a resume compares)."""
        return self.model_dump()


@dataclass
class Attention:
    """One resident's attention between steps."""

    #: reasons perceived in the step just run, for the next one
    pending: set[str] = field(default_factory=set)
    #: the step of its latest act call (0: none yet)
    last_call: int = 0
    #: the plan item under way when last seen (a key of its start and words)
    item: str | None = None
    #: whom it has met during that item, in the order met (only the `MET_MAX` latest):
    #: `company` is asked once per pair
    met: list[str] = field(default_factory=list)
    #: where it was when last asked why (None: it was not, the step before: asleep,
    #: played, or new): who arrived since is found by it (`arrivals`)
    at: str | None = None
    #: the item whose activity was last shown (`continue`, once as it begins)
    shown: str | None = None
    #: the target it said it could not get to, during this item (said once)
    stuck: str | None = None
    #: reasons carried (news, an intervention, a whisper) since its day plan was made:
    #: with none, its next day plan is its routine, with no model call
    since_plan: set[str] = field(default_factory=set)
    #: the day of the plan those reasons are counted from
    plan_day: date | None = None
    #: whom it met in the step under way (for the conversation it has with them; not
    #: kept between steps)
    fresh: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)

    def note(self, reason: str) -> None:
        """A reason perceived now, for the resident's next step."""
        if reason not in CARRIED:
            raise ValueError(f"{reason!r} is not a reason carried to the next step")
        self.pending.add(reason)
        self.since_plan.add(reason)

    def planned(self, day: date | None) -> None:
        """Its plan under way is of `day`: a new one starts the count of what is new."""
        if day != self.plan_day:
            self.plan_day, self.since_plan = day, set()

    def begin_item(self, item: str | None) -> bool:
        """Track the plan item under way; True if it is a new one (the people met
        and the place it could not reach are then forgotten)."""
        if item == self.item:
            return False
        self.item, self.met, self.stuck = item, [], None
        return True

    def reasons(
        self,
        *,
        step: int,
        policy: AttentionPolicy,
        addressed: bool,
        present: Iterable[str],
        new_item: bool,
        item_has_place: bool,
        arrived: Container[str] | None = None,
    ) -> list[str]:
        """Why the resident is asked in `step` (empty: it follows its plan). Meeting
        people counts them as met for the item, whether or not they are why it is
        asked. `arrived`: who came where they are since the step before (`arrivals`);
        None, or the resident among them: anyone present may be new to it."""
        why = ["addressed"] if addressed else []
        why += [r for r in CARRIED if r in self.pending]
        met = set(self.met)
        if arrived is None or new_item:
            new_people = {n for n in present if n not in met}
        else:  # it was here with everyone who did not arrive, and met them then
            new_people = {n for n in present if n in arrived and n not in met}
        self.met = (self.met + sorted(new_people))[-MET_MAX:]
        self.fresh = frozenset(new_people)
        if new_people:
            why.append("company")
        if new_item and not item_has_place:
            why.append("plan_start")
        if not why and step - self.last_call >= policy.idle_steps:
            why.append("idle")
        return why

    def asked(self, step: int) -> None:
        """It got its act call in `step`: what waited for it is answered."""
        self.last_call = step
        self.pending.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": sorted(self.pending),
            "last_call": self.last_call,
            "item": self.item,
            "met": list(self.met),
            "at": self.at,
            "shown": self.shown,
            "stuck": self.stuck,
            "since_plan": sorted(self.since_plan),
            "plan_day": self.plan_day.isoformat() if self.plan_day else None,
        }

    def restore(self, data: dict[str, Any] | None) -> None:
        data = data or {}
        self.pending = set(data.get("pending", ()))
        self.last_call = int(data.get("last_call", 0))
        self.item = data.get("item")
        self.met = list(data.get("met", ()))[-MET_MAX:]
        self.at = data.get("at")
        self.shown = data.get("shown")
        self.stuck = data.get("stuck")
        self.since_plan = set(data.get("since_plan", ()))
        day = data.get("plan_day")
        self.plan_day = date.fromisoformat(day) if day else None


def arrivals(agents: Mapping[str, Agent], state: WorldState) -> set[str]:
    """Who is not where they were when last asked why (or was not asked the step
    before): read before anyone is asked in a step, since asking moves `at`."""
    return {n for n, a in agents.items() if a.attention.at != state.location(n)}


def watched(agents: Mapping[str, Agent], state: WorldState, asked: Container[str]) -> None:
    """After a step's residents were asked why: each remembers where it was, or that
    it was not asked (asleep, played), for the next step's `arrivals`."""
    for n, a in agents.items():
        a.attention.at = state.location(n) if n in asked else None


def attend(
    agent: Agent,
    state: WorldState,
    step: int,
    policy: AttentionPolicy,
    arrived: Container[str] | None = None,
) -> list[str]:
    """Why `agent` (awake, not played) is asked what it does in `step`; empty: it
    follows its plan by code. Under `always` it is asked whatever the reasons, and
    `always` stands for them where there are none. `arrived`: the step's `arrivals`
    (None: anyone present may be new to it)."""
    item = plan_item(agent, state.now)
    att = agent.attention
    att.planned(agent.plan.day if agent.plan is not None else None)
    new_item = att.begin_item(item.key)
    if arrived is not None and agent.name in arrived:
        arrived = None  # it came here (or was not asked): everyone here may be new
    why = att.reasons(
        step=step,
        policy=policy,
        addressed=agent.reply_to is not None,
        present=state.others_present(agent.name),
        new_item=new_item,
        item_has_place=item.place is not None,
        arrived=arrived,
    )
    if policy.mode == "always" and not why:
        why = ["always"]
    return why


def choices_for(policy: AttentionPolicy, reasons: Iterable[str]) -> Choices:
    """What a resident asked for `reasons` chooses among: `people` (asked for the people
    here alone, `SOCIAL`: them, or carrying on with its plan), `company` (asked only
    because it has been `idle`: anything, but it may go only next door where someone
    is; its chance to do something unplanned is the people nearby, not a walk into an
    empty lane, which a small model offered every way out picks at random), else
    `any`. Under `always`, always `any`."""
    given = set(reasons)
    if policy.mode != "events":
        return "any"
    if given <= SOCIAL:
        return "people"
    return "company" if given == {"idle"} else "any"


def why_text(reasons: Iterable[str]) -> str:
    """The reasons of one call as one label (`addressed+company`), in `REASONS` order."""
    given = set(reasons)
    order = [r for r in REASONS if r in given] + sorted(given - set(REASONS))
    return "+".join(order)
