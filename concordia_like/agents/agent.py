"""An agent: a persona, what it has just perceived, and its one model call per step.

The agent holds only what a prompt needs between steps (recent observations, who is
waiting for its answer, the memories last retrieved, its plan); memories themselves
live in the memory store. Everything it holds round-trips through `to_dict`, so a
checkpoint restores an agent exactly."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from concordia_like.agents.actions import app_targets, decision_for
from concordia_like.agents.attention import Attention, Choices
from concordia_like.agents.autopilot import plan_hint
from concordia_like.agents.prompt import (
    OBSERVATIONS_KEPT,
    situation_body,
    speech_prompt,
    stable_prefix,
)
from concordia_like.llm import LLMRequest
from concordia_like.memory.plans import DayPlan
from concordia_like.text import text_key
from concordia_like.world.describe import describe_parts, shown_items
from concordia_like.world.persona import PersonaCard
from concordia_like.world.state import WorldState

ACT_MAX_TOKENS = 96
#: a line of speech: short, ends at the end of the line, held back from repeating itself
SPEECH_MAX_TOKENS = 40
SPEECH_REPEAT_PENALTY = 1.3
#: the speaker's last utterances an utterance must not repeat
LAST_SAID = 3


@dataclass
class Agent:
    persona: PersonaCard
    prefix: str
    observations: deque[str] = field(default_factory=lambda: deque(maxlen=OBSERVATIONS_KEPT))
    reply_to: str | None = None
    memories: list[str] = field(default_factory=list)
    #: the key (`text.text_key`) of the query those memories were retrieved for
    query_key: str | None = None
    activity: str | None = None
    #: the text of the agent's latest observation memory: what it last perceived
    news: str | None = None
    plan: DayPlan | None = None
    #: the gist of yesterday's plan, which today's is made from
    yesterday: str = ""
    #: what the agent said last (newest last), which it must not say again
    last_said: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_SAID))
    #: the words it is answering, if any (set with the act request)
    heard: str | None = None
    #: what it is asked for words it writes on its phone this step, if it chose to
    #: (`agents.actions.written_ask`); set by the engine after the act call
    writing: str | None = None
    #: when it is asked what it does (see `agents.attention`)
    attention: Attention = field(default_factory=Attention)
    _body: str = ""
    _standing: str = ""

    @classmethod
    def create(cls, persona: PersonaCard, world_name: str, rules: list[str]) -> Agent:
        return cls(persona=persona, prefix=stable_prefix(persona, world_name, rules))

    @property
    def name(self) -> str:
        return self.persona.name

    def retrieval_parts(self) -> tuple[str, ...]:
        """What the agent's memory is asked about, in parts embedded apart (see
        RetrievalQuery): its activity, which lasts, and the latest news, which is the
        text of its latest observation memory: everyone at a place shares it, and it was
        embedded when it was stored, so the news costs a query no embedding at all."""
        activity = self.activity or "my day"
        return (activity, self.news) if self.news else (activity,)

    def new_query(self) -> tuple[str, ...] | None:
        """The parts of the query its memory is to be asked (`retrieval_parts`), or None
        where it asked the same one last and keeps what it found. Only the query's key
        is kept: whether it changed is all that is asked of it."""
        parts = self.retrieval_parts()
        key = text_key(" | ".join(parts))
        if key == self.query_key:
            return None
        self.query_key = key
        return parts

    def act_request(self, state: WorldState, seed: int, *, choices: Choices = "any") -> LLMRequest:
        """The step's model call: a typed decision (kind, targets) under this agent's
        schema; the words of a `say` are asked for apart (`speech_request`). `choices`
        (`agents.attention.choices_for`): `people`, its choices are among the people
        here (no going elsewhere, no thinking aloud; carrying on with its plan, which
        may walk it on, is one); `company`, the places it may go to are those next door
        where someone is; `any`, everything it can do."""
        here = state.location(self.name)
        # the things its prompt names, no more: a schema must not grow with the world
        held = sorted({i.name for i in shown_items(state, self.name)})
        usable = sorted(set(held) | {i.name for i in shown_items(state, here)})
        social = choices == "people"
        ways = [] if social else state.reachable(self.name)
        if choices == "company":
            ways = [w for w in ways if state.agents_at(w)]
        me = None if social else self.name
        apps = None if social else app_targets(state, self.name)  # its phone, if it has one
        schema = decision_for(ways, state.others_present(self.name), held, usable, me, apps)
        # the standing first: it lasts while the agent stays (see `speech_request`)
        standing, moment = describe_parts(state, self.name)
        self._standing = standing
        self._body = situation_body(
            standing=standing,
            here=moment,
            activity=self.activity,
            plan_hint=plan_hint(self, state),
            memories=self.memories,
            observations=list(self.observations),
            reply_to=self.reply_to,
        )
        self.heard = _quoted(self.reply_to)
        self.writing = None
        return LLMRequest.chat(
            f"{self._body}\nWhat do you do next?",
            system=self.prefix,
            schema=schema,
            purpose="act",
            agent=self.name,
            max_tokens=ACT_MAX_TOKENS,
            seed=seed,
            heads=self._heads(),
        )

    def speech_request(self, to: str, seed: int) -> LLMRequest:
        """What the agent says to `to`, as plain text: the act prompt's situation (one
        of its `heads`: a backend that keeps prefixes decodes it once for both) and who
        is spoken to; one line, at a role-play temperature
        (the policy's "speech" purpose), held back from repeating itself. Made after
        `act_request` of the same step."""
        return LLMRequest.chat(
            speech_prompt(self._body, self.name, to, self.writing),
            system=self.prefix,
            purpose="speech",
            agent=self.name,
            max_tokens=SPEECH_MAX_TOKENS,
            stop=("\n",),
            temperature=0.8,
            top_p=0.95,
            repeat_penalty=SPEECH_REPEAT_PENALTY,
            seed=seed,
            heads=self._heads(),
        )

    def _heads(self) -> tuple[str, ...]:
        """The openings its act and speech prompts share with others: its standing at
        the place (the same for its steps there) and the step's whole situation (the
        same for the act and the speech call), so that a backend keeping prefixes
        decodes each once."""
        return (self._standing, self._body) if self._standing else (self._body,)

    def perceive(self, text: str) -> None:
        self.observations.append(text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "observations": list(self.observations),
            "reply_to": self.reply_to,
            "memories": list(self.memories),
            "query_key": self.query_key,
            "activity": self.activity,
            "news": self.news,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "yesterday": self.yesterday,
            "last_said": list(self.last_said),
            "attention": self.attention.to_dict(),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.observations = deque(data.get("observations", []), maxlen=OBSERVATIONS_KEPT)
        self.reply_to = data.get("reply_to")
        self.memories = list(data.get("memories", []))
        old = data.get("last_query")  # checkpoints before the key held the query itself
        self.query_key = data.get("query_key") or (text_key(old) if old else None)
        self.activity = data.get("activity")
        self.news = data.get("news")
        plan = data.get("plan")
        self.plan = DayPlan.from_dict(plan) if plan else None
        self.yesterday = data.get("yesterday", "")
        self.last_said = deque(data.get("last_said", []), maxlen=LAST_SAID)
        self.attention.restore(data.get("attention"))


def _quoted(line: str | None) -> str | None:
    """The words in a `... said to you: "..."` line."""
    if not line or '"' not in line:
        return None
    return line.split('"', 1)[1].rsplit('"', 1)[0] or None
