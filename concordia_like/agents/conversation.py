"""Conversations in one model call: a short exchange among the residents at one place.

Under the `events` attention policy, residents who meet (`company`), and a resident whose
act call decided to speak, do not each take an act call and a speech call per line: one
call (purpose `converse`) writes the exchange. The code picks who opens and to whom (the
one who decided to speak, or the one who met the most people here) and the order of
the turns (`Exchange.turns`: people who meet greet each other). The schema fixes each
turn's speaker and addressee (enums of one: the people here), so that the model writes
every turn knowing who speaks to whom, a small model cannot have one person talk on
alone (it did, four turns of one speaker), and nobody is written speaking to itself;
the words of each are a bounded run of plain words. A pair that meets costs one call
for both directions of the talk, a group at one place several pairs.

Every turn passes the same guards as a line of speech (`speech.clean`,
`degenerate.utterance_problem`, against the speaker's last words, the exchange so far
and the prompt's lines about the people); a degenerate turn is dropped with its
reason, logged, and never stored as speech. The engine grounds each kept turn as a
`say` (`engine.acting`), so it is perceived, remembered and exported as any other
speech."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, StringConstraints, create_model

from concordia_like.agents.agent import Agent
from concordia_like.agents.degenerate import utterance_problem
from concordia_like.agents.prompt import SPEECH_EXAMPLE
from concordia_like.agents.speech import clean
from concordia_like.llm import LLMRequest
from concordia_like.llm.triage import triage
from concordia_like.text import clip
from concordia_like.world.state import WorldState

log = logging.getLogger(__name__)

#: people in one exchange: the opener, the one it turns to, and a few more
CAST_MAX = 4
#: turns of one exchange, at most
MAX_TURNS = 4
#: held back from saying again what was just said (over the tokens generated)
REPEAT_PENALTY = 1.2
#: words of one turn: three to twenty-five words of plain characters, each bounded, so
#: a turn can neither run on nor hold a quote, a newline or a JSON field (a pattern is
#: the only bound a grammar keeps: see `planning.requests.ACTIVITY_PATTERN`)
TURN_PATTERN = r"^[A-Za-z'(][A-Za-z0-9',.!?;:()$%&-]{0,19}( [A-Za-z0-9',.!?;:()$%&-]{1,20}){2,24}$"
TurnWords = Annotated[str, StringConstraints(pattern=TURN_PATTERN)]
TOKENS_PER_TURN = 72
SYSTEM = (
    "You write what the people of {world} say to each other when they meet: a few "
    "lines, each one person's own words to another, one or two plain sentences about "
    "what is going on, in that person's voice. For example, a ferryman to a neighbour: "
    f"{SPEECH_EXAMPLE}"
)
PERSON_MAX = 220
LINE_MAX = 160


@dataclass
class Exchange:
    """One conversation to write: at `place`, `opener` turns to `to`; `cast` are the
    people in it (the opener and `to` first) and `speakers` those of them who may speak
    (the others are spoken to only: a player, a resident deciding for itself, asleep)."""

    place: str
    opener: str
    to: str
    cast: tuple[str, ...]
    speakers: tuple[str, ...]
    #: why the call is made (the opener's reasons, as one label)
    why: str
    #: the line the opener answers (`X said to Opener: "..."`), if any
    heard: str | None = None
    #: whom each of the cast has just met (`Attention.fresh`): turned to first
    fresh: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def turns(self) -> tuple[tuple[str, str], ...]:
        """(speaker, addressee) of each turn, in order, `MAX_TURNS` at most: the opener
        to the one it turns to, that one back, then each other speaker to someone it
        has just met (else to the one who spoke before it), then the opener to those
        it has just met and not yet spoken to: people who meet greet each other."""
        plan = [(self.opener, self.to)]
        if self.to in self.speakers:
            plan.append((self.to, self.opener))
        for speaker in self.speakers:
            if speaker in (self.opener, self.to):
                continue
            new = [n for n in self.cast if n in self.fresh.get(speaker, ()) and n != speaker]
            plan.append((speaker, new[0] if new else plan[-1][0]))
        spoken_to = {to for s, to in plan if s == self.opener}
        for n in self.cast:
            if n in self.fresh.get(self.opener, ()) and n not in spoken_to and n != self.opener:
                plan.append((self.opener, n))
        return tuple(plan[:MAX_TURNS])


@dataclass
class Turn:
    """One line of an exchange: its words, or why there are none (dropped)."""

    speaker: str
    to: str
    text: str | None
    reason: str | None = None


@dataclass
class Written:
    """What became of an exchange: its turns in order (dropped ones included)."""

    exchange: Exchange
    turns: list[Turn] = field(default_factory=list)


#: `Literal` of a value known only at run time (a type checker reads no type from it)
_one_of: Any = Literal


@lru_cache(maxsize=256)
def exchange_schema(turns: tuple[tuple[str, str], ...]) -> type[BaseModel]:
    """One field per turn (`turn_1`, ...), each its speaker, its addressee and the words."""
    fields: dict[str, Any] = {
        f"turn_{i}": (
            create_model(
                f"Turn{i}",
                speaker=(_one_of[speaker], ...),
                addressee=(_one_of[to], ...),
                text=(TurnWords, ...),
            ),
            ...,
        )
        for i, (speaker, to) in enumerate(turns, 1)
    }
    return create_model("Exchange", **fields)


def _person(card: Any, cast: Sequence[str]) -> str:
    """Who one of the cast is, briefly: age, occupation and how they stand to the others
    here (not the card's manner of speech: the small model said it back as speech)."""
    text = f"{card.name} ({card.age}, {card.occupation})"
    ties = [f"{o}: {card.relationships[o]}" for o in cast if o in card.relationships]
    if ties:
        text += f"; {'; '.join(ties)}"
    return clip(text, PERSON_MAX)


def converse_request(
    agents: Mapping[str, Agent], state: WorldState, ex: Exchange, world: str, seed: int
) -> LLMRequest:
    """The call that writes `ex`: the people, what each is doing, what the opener
    remembers and has just seen, and who turns to whom (no JSON field is named)."""
    opener = agents[ex.opener]
    place = state.places[ex.place].name if ex.place in state.places else ex.place
    lines = [f"{state.now:%A %H:%M} at {place}. Here:"]
    lines += [f"- {_person(agents[n].persona, ex.cast)}" for n in ex.cast]
    doing = [f"{n} {clip(agents[n].activity or '', 80)}" for n in ex.cast if agents[n].activity]
    if doing:
        lines.append("Now: " + "; ".join(doing) + ".")
    first = ex.opener.split(" ")[0]
    recalled = [clip(m, LINE_MAX) for m in opener.memories[:2]]
    if recalled:
        lines.append(f"{first} remembers:")
        lines += [f"- {m}" for m in recalled]
    seen = [clip(o, LINE_MAX) for o in list(opener.observations)[-3:]]
    if seen:
        lines.append("Just now:")
        lines += [f"- {o}" for o in seen]
    if ex.heard:
        lines.append(clip(ex.heard, 240))
    order = list(dict.fromkeys(s.split(" ")[0] for s, _ in ex.turns[1:] if s != ex.opener))
    answer = f" {_listed(order)} answer{'s' if len(order) == 1 else ''}." if order else ""
    talk = "What do they say?" if len(ex.turns) > 1 else f"What does {first} say?"
    lines.append(f"{first} turns to {ex.to.split(' ')[0]}.{answer} {talk}")
    schema = exchange_schema(ex.turns)
    return LLMRequest.chat(
        "\n".join(lines),
        system=SYSTEM.format(world=world),
        schema=schema,
        purpose="converse",
        agent=ex.opener,
        max_tokens=TOKENS_PER_TURN * len(ex.turns) + 16,
        temperature=0.7,
        top_p=0.95,
        repeat_penalty=REPEAT_PENALTY,
        seed=seed,
    ).model_copy(update={"why": ex.why})


def read_exchange(answer: Any, ex: Exchange, agents: Mapping[str, Agent]) -> Written:
    """The turns of the model's answer, each guarded (see the module's text). An
    unusable answer is one dropped turn, the opener's; anything else that is not a
    completion is raised (the engine aborts the step)."""
    out = Written(ex)
    answer = triage(answer)
    if isinstance(answer, BaseException):
        out.turns.append(Turn(ex.opener, ex.to, None, f"unusable output: {answer}"))
        _log(out)
        return out
    parsed = answer.parsed
    raw = [
        (speaker, to, getattr(parsed, f"turn_{i}").text)
        for i, (speaker, to) in enumerate(ex.turns, 1)
    ]
    said: list[str] = []
    people = [_person(agents[n].persona, ex.cast) for n in ex.cast]  # lines of the prompt
    for speaker, to, words in raw:
        text = clean(words)
        agent = agents[speaker]
        examples = [SPEECH_EXAMPLE, *said, *people] + ([ex.heard] if ex.heard else [])
        problem = utterance_problem(text, agent.last_said, examples)
        if problem is None:
            out.turns.append(Turn(speaker, to, text))
            agent.last_said.append(text)
            said.append(text)
        else:
            out.turns.append(Turn(speaker, to, None, f"{problem}: {text[:60]!r}"))
    _log(out)
    return out


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _log(out: Written) -> None:
    for t in out.turns:
        if t.text is None:
            log.info("a turn of %s in a conversation dropped: %s", t.speaker, t.reason)
