"""A conversation in one call: its schema (who may speak to whom), its prompt, and each
turn guarded like a line of speech."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from concordia_like.agents.agent import Agent
from concordia_like.agents.conversation import (
    MAX_REPLIES,
    Exchange,
    converse_request,
    exchange_schema,
    read_exchange,
)
from concordia_like.llm.errors import OutputError
from concordia_like.llm.types import Completion
from concordia_like.world import load_world

from support.engine import MINI

ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"


@pytest.fixture
def world():
    return load_world(MINI)


@pytest.fixture
def agents(world):
    return {n: Agent.create(world.personas[n], world.name, world.rules) for n in world.personas}


def meeting(speakers=(ANN, BOB)) -> Exchange:
    return Exchange("square", ANN, BOB, (ANN, BOB), tuple(speakers), "company")


def answer(request, data) -> Completion:
    text = json.dumps(data)
    parsed = request.adapter.validate_json(text)
    return Completion(text, parsed, prompt_tokens=1, completion_tokens=1, latency_s=0.0)


def test_nobody_speaks_to_itself_and_replies_are_bounded(world, agents):
    req = converse_request(agents, world.state, meeting(), world.name, 1)
    ok = {"opening": "Morning Bob, the apples came in early.", "replies": []}
    ok["replies"] = [{"speaker": BOB, "addressee": ANN, "text": "Good, I will come by later."}]
    req.adapter.validate_python(ok)
    for bad in (
        {**ok, "replies": [{"speaker": ANN, "addressee": ANN, "text": "I talk to myself now."}]},
        {**ok, "replies": []},  # someone else may speak: at least one reply
        {**ok, "replies": ok["replies"] * (MAX_REPLIES + 1)},
        {**ok, "opening": "Hi"},  # under three words
        {**ok, "opening": 'He said "no" twice.'},  # no quotes inside the words
    ):
        with pytest.raises(ValidationError):
            req.adapter.validate_python(bad)
    assert req.purpose == "converse" and req.why == "company" and req.agent == ANN


def test_a_lone_speaker_says_its_opening_only(world, agents):
    req = converse_request(agents, world.state, meeting(speakers=(ANN,)), world.name, 1)
    assert "replies" not in req.json_schema["properties"]
    assert exchange_schema((), 1) is exchange_schema((), 1)  # one schema per situation


def test_each_turn_is_guarded_and_a_degenerate_one_dropped(world, agents):
    ex = meeting()
    req = converse_request(agents, world.state, ex, world.name, 1)
    agents[BOB].last_said.append("Good, I will come by later today.")
    written = read_exchange(
        answer(
            req,
            {
                "opening": "Morning Bob, the apples came in early.",
                "replies": [
                    {"speaker": BOB, "addressee": ANN, "text": "Good, I will come by later today."},
                    {
                        "speaker": ANN,
                        "addressee": BOB,
                        "text": "Morning Bob, the apples came in early.",
                    },
                    {"speaker": BOB, "addressee": ANN, "text": "Keep me a bag of the red ones."},
                ],
            },
        ),
        ex,
        agents,
    )
    kept = [(t.speaker, t.to, t.text) for t in written.turns if t.text]
    assert kept == [
        (ANN, BOB, "Morning Bob, the apples came in early."),
        (BOB, ANN, "Keep me a bag of the red ones."),
    ]
    dropped = [t.reason for t in written.turns if t.text is None]
    assert len(dropped) == 2 and all(dropped)
    assert list(agents[BOB].last_said)[-1] == "Keep me a bag of the red ones."


def test_unusable_output_is_the_openers_turn_dropped(world, agents):
    written = read_exchange(OutputError("no JSON"), meeting(), agents)
    assert [(t.speaker, t.text) for t in written.turns] == [(ANN, None)]
    with pytest.raises(RuntimeError):
        read_exchange(RuntimeError("the server is gone"), meeting(), agents)


def test_the_prompt_names_the_people_and_who_turns_to_whom(world, agents):
    agents[ANN].activity = "tidies the square"
    text = converse_request(agents, world.state, meeting(), world.name, 1).messages[-1].content
    assert ANN in text and BOB in text and "Ann turns to Bob." in text
    assert "tidies the square" in text and "opening" not in text
