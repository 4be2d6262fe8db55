"""Speech for the scripted test double, so that a dry run of `dialogues` has something
to say: a line made of a few phrases picked by a hash of the request (its prompt and
seed), naming the one spoken to. Deterministic, varied across turns and conversations,
and never a model: for tests and dry runs only."""

from __future__ import annotations

import hashlib
import random
import re

from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.llm.types import LLMRequest

_OPEN = [
    "Morning, {to}.",
    "Listen, {to}.",
    "Well, {to},",
    "I keep thinking, {to},",
    "Tell me honestly, {to},",
    "Between us, {to},",
]
_BODY = [
    "the bridge will not hold another winter",
    "the bakery ran out of rye before nine",
    "the town meeting is on Thursday evening",
    "the county letter came with the mail coach",
    "the river rose again overnight",
    "somebody left the library lamp burning",
    "the café was packed before the rain",
    "the mayor keeps talking about process",
    "the repair quote looked high to me",
    "my knee says the weather is turning",
    "the ford was too deep for the cart",
    "we should ask the clinic about the ambulance fund",
]
_CLOSE = [
    "What do you make of it?",
    "I would like your view.",
    "We ought to do something.",
    "Does that worry you?",
    "I am not sure what to think.",
    "Shall we look into it together?",
]
_TO = re.compile(r"You turn to ([^.]+)\. What do you say")


def scripted_line(request: LLMRequest) -> str:
    digest = hashlib.sha256(
        f"{request.messages[-1].content}|{request.sampling.seed}".encode()
    ).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    m = _TO.search(request.messages[-1].content)
    to = m.group(1).split(" ")[0] if m else "friend"
    first, second = rng.sample(_BODY, 2)
    return f"{rng.choice(_OPEN).format(to=to)} {first}, and {second}. {rng.choice(_CLOSE)}"


def add_speech_rule(backend: ScriptedBackend) -> None:
    """Answer the scripted backend's speech calls with `scripted_line`."""
    backend.add_rule(r".", scripted_line, purpose="speech")
