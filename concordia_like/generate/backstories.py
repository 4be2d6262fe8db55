"""Backstories written by a model for drawn cards: all asked at once, under a schema,
each checked like any card.

A drawn card knows its person's age, work, home, household, traits and values but has
no past. With `--backstories` each card's own text (`PersonaCard.prompt_text`) is sent
with a request for a few sentences of history, all the cards' requests together so the
model layer batches them; the answer's schema bounds its length, and the card with its
backstory is validated again. An answer that fails its schema leaves that card without
a backstory (and is counted), rather than failing a population of thousands. Each
request's sampling seed comes from the population's seed and the card's place in it,
so the same seed asks the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from concordia_like.llm import LanguageModel, LLMRequest, StructuredOutputError
from concordia_like.text import squash
from concordia_like.world.persona import PersonaCard

BACKSTORY_MAX = 600
PURPOSE = "backstory"
SYSTEM = (
    "You write short, concrete backstories for the residents of a simulated city. "
    "Answer with JSON only."
)
#: seeds of the requests stay in the range every backend takes
SEED_SPAN = 2**31


class Backstory(BaseModel):
    """What the model answers: the backstory, in a few sentences."""

    model_config = ConfigDict(extra="forbid")

    backstory: str = Field(min_length=20, max_length=BACKSTORY_MAX)


@dataclass(frozen=True)
class Written:
    """The cards, with the backstories the model wrote; how many it failed to."""

    cards: list[PersonaCard]
    failed: int


def backstory_request(card: PersonaCard, seed: int, index: int, city: str) -> LLMRequest:
    prompt = (
        f"{card.prompt_text()}\n\nYou live in {city}. In two or three sentences, in the "
        "third person, write this person's backstory: where they come from, one thing "
        "that shaped them and one thing they worry about now. Do not repeat the "
        "details above word for word."
    )
    return LLMRequest.chat(
        prompt,
        system=SYSTEM,
        schema=Backstory,
        purpose=PURPOSE,
        agent=card.name,
        temperature=0.8,
        top_p=0.95,
        max_tokens=220,
        seed=(seed * 1_000_003 + index) % SEED_SPAN,
    )


async def write_backstories(
    lm: LanguageModel, cards: list[PersonaCard], seed: int, city: str
) -> Written:
    """`cards` with a backstory each where the model wrote one that fits its schema."""
    requests = [backstory_request(c, seed, i, city) for i, c in enumerate(cards)]
    answers = await lm.complete_many(requests, return_exceptions=True)
    out, failed = [], 0
    for card, answer in zip(cards, answers, strict=True):
        if isinstance(answer, StructuredOutputError):
            failed += 1
            out.append(card)
            continue
        if isinstance(answer, BaseException):
            raise answer
        text = squash(answer.parsed.backstory)
        data = card.model_dump()
        data["backstory"] = text
        out.append(PersonaCard.model_validate(data))
    return Written(out, failed)
