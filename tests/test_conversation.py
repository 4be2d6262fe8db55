"""A conversation in one call: its schema (who may speak to whom), its prompt, and each
turn guarded like a line of speech."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from concordia_like.agents.agent import Agent
from concordia_like.agents.conversation import (
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


def test_each_of_the_cast_who_may_speak_has_a_turn_answering_the_one_before():
    ex = Exchange("square", ANN, BOB, (ANN, BOB, CY), (ANN, BOB, CY), "company")
    assert ex.turns == ((ANN, BOB), (BOB, ANN), (CY, BOB))
    quiet_bob = Exchange("square", ANN, BOB, (ANN, BOB, CY), (ANN, CY), "news")
    assert quiet_bob.turns == ((ANN, BOB), (CY, ANN))  # Bob decides for himself this step


def test_people_who_just_met_greet_each_other():
    cast = (CY, ANN, BOB)  # Cy arrives where Ann and Bob are
    fresh = {CY: frozenset({ANN, BOB}), ANN: frozenset({CY}), BOB: frozenset({CY})}
    ex = Exchange("square", CY, ANN, cast, cast, "company", fresh=fresh)
    assert ex.turns == ((CY, ANN), (ANN, CY), (BOB, CY), (CY, BOB))


def test_the_schema_fixes_who_speaks_to_whom_and_bounds_the_words(world, agents):
    req = converse_request(agents, world.state, meeting(), world.name, 1)
    ok = {
        "turn_1": {"speaker": ANN, "addressee": BOB, "text": "Morning Bob, the apples came in."},
        "turn_2": {"speaker": BOB, "addressee": ANN, "text": "Good, I will come by later."},
    }
    req.adapter.validate_python(ok)
    for bad in (
        {**ok, "turn_2": {**ok["turn_2"], "speaker": ANN}},  # Ann again, to herself
        {"turn_1": ok["turn_1"]},  # Bob's turn is not optional
        {**ok, "turn_1": {**ok["turn_1"], "text": "Hi"}},  # under three words
        {**ok, "turn_1": {**ok["turn_1"], "text": 'He said "no" twice.'}},  # no quotes
    ):
        with pytest.raises(ValidationError):
            req.adapter.validate_python(bad)
    assert req.purpose == "converse" and req.why == "company" and req.agent == ANN
    assert exchange_schema(meeting().turns) is exchange_schema(meeting().turns)


def test_a_lone_speaker_says_its_opening_only(world, agents):
    req = converse_request(agents, world.state, meeting(speakers=(ANN,)), world.name, 1)
    assert list(req.json_schema["properties"]) == ["turn_1"]


def test_each_turn_is_guarded_and_a_degenerate_one_dropped(world, agents):
    cast = (ANN, BOB, CY)
    ex = Exchange("square", ANN, BOB, cast, cast, "company")
    req = converse_request(agents, world.state, ex, world.name, 1)
    agents[BOB].last_said.append("Good, I will come by later today.")
    said = [
        "Morning Bob, the apples came in early.",
        "Good, I will come by later today.",  # Bob's last words again
        "Morning Bob, the apples came in early.",  # Ann's words said back
    ]
    data = {
        f"turn_{i}": {"speaker": s, "addressee": to, "text": t}
        for i, ((s, to), t) in enumerate(zip(ex.turns, said, strict=True), 1)
    }
    written = read_exchange(answer(req, data), ex, agents)
    kept = [(t.speaker, t.to, t.text) for t in written.turns if t.text]
    assert kept == [(ANN, BOB, "Morning Bob, the apples came in early.")]
    dropped = [t.reason for t in written.turns if t.text is None]
    assert len(dropped) == 2 and all(dropped)
    assert list(agents[ANN].last_said)[-1] == "Morning Bob, the apples came in early."


def test_unusable_output_is_the_openers_turn_dropped(world, agents):
    written = read_exchange(OutputError("no JSON"), meeting(), agents)
    assert [(t.speaker, t.text) for t in written.turns] == [(ANN, None)]
    with pytest.raises(RuntimeError):
        read_exchange(RuntimeError("the server is gone"), meeting(), agents)


def test_the_prompt_names_the_people_and_who_turns_to_whom(world, agents):
    agents[ANN].activity = "tidies the square"
    text = converse_request(agents, world.state, meeting(), world.name, 1).messages[-1].content
    assert ANN in text and BOB in text and "Ann turns to Bob. Bob answers." in text
    assert "tidies the square" in text and "turn_" not in text
