"""The words of a `say`, written apart from the decision to speak, with guards.

The act call decides the kind and the addressee under the narrowed grammar; what is
said is asked for as plain text in a second, short completion (purpose "speech": a
role-play temperature, a repetition penalty, a stop at the end of the line), all the
step's speakers in one batch. An utterance that comes out degenerate anyway
(`agents.degenerate`: too short, a repeat of the speaker's last words, a loop, a copy
of the example) is asked for once more with another seed, and otherwise dropped with
its reason logged: it is never stored as speech."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from concordia_like.agents.actions import WORDS_MAX
from concordia_like.agents.agent import Agent
from concordia_like.agents.degenerate import utterance_problem
from concordia_like.agents.prompt import SPEECH_EXAMPLE
from concordia_like.llm import LanguageModel
from concordia_like.llm.triage import triage
from concordia_like.text import clip, squash

log = logging.getLogger(__name__)

#: attempts per utterance: the first and one regeneration with another seed
ATTEMPTS = 2
_LEAD = re.compile(
    r"^\s*(?:\*\*)?(?:[A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,2}\s*(?:says|said|replies|answers)?"
    r"(?: to [A-Z][\w'.-]*(?: [A-Z][\w'.-]*)?)?\s*:\s*)",
)


@dataclass
class Spoken:
    """What became of one speaker's utterance: its text, or why there is none."""

    text: str | None
    reason: str | None = None
    attempts: int = 0


def clean(text: str) -> str:
    """One line of speech as a person would write it: no speaker label, no quotes, cut
    at a sentence end within the length a `say` holds."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = _LEAD.sub("", line, count=1).strip()
    line = line.strip(" \"'“”‘’*")
    line = squash(line)
    if len(line) > WORDS_MAX:
        cut = max(line.rfind(p, 0, WORDS_MAX) for p in ".!?")
        line = line[: cut + 1] if cut >= 20 else clip(line, WORDS_MAX)
    return line


async def write_speech(
    lm: LanguageModel,
    agents: dict[str, Agent],
    wants: Sequence[tuple[str, str]],
    seed_of: Callable[[str, int], int],
) -> dict[str, Spoken]:
    """The words of each (speaker, addressee) in `wants`, all speakers batched, each
    checked, the degenerate ones asked again once with another seed (`seed_of(agent,
    attempt)`). Only output problems degrade (to no words, with the reason); anything
    else raises, and the engine aborts the step."""
    out: dict[str, Spoken] = {}
    todo = list(wants)
    for attempt in range(ATTEMPTS):
        if not todo:
            break
        requests = [agents[n].speech_request(to, seed_of(n, attempt)) for n, to in todo]
        answers = await lm.complete_many(requests, return_exceptions=True)
        again = []
        for (n, to), answer in zip(todo, answers, strict=True):
            answer = triage(answer)  # anything but unusable output aborts the step
            if isinstance(answer, BaseException):
                spoken = Spoken(None, f"unusable output: {answer}", attempt + 1)
            else:
                text = clean(answer.text)
                agent = agents[n]
                examples = [SPEECH_EXAMPLE] + ([agent.heard] if agent.heard else [])
                problem = utterance_problem(text, agent.last_said, examples)
                if problem is None:
                    spoken = Spoken(text, None, attempt + 1)
                else:
                    spoken = Spoken(None, f"{problem}: {text[:60]!r}", attempt + 1)
            out[n] = spoken
            if spoken.text is None:
                again.append((n, to))
        todo = again
    for n, spoken in out.items():
        if spoken.text is None:
            log.info("speech of %s dropped after %d tries: %s", n, spoken.attempts, spoken.reason)
    return out
