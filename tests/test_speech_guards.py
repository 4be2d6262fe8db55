"""The words of a `say`: degeneracy checks, cleaning, and the guard that regenerates a
degenerate utterance once with another seed and otherwise drops it (never stored as
speech), on the scripted model."""

from __future__ import annotations

import pytest

from concordia_like.agents.degenerate import distinct_n, is_loop, plan_problem, utterance_problem
from concordia_like.agents.speech import clean
from concordia_like.engine.runs import start_run
from concordia_like.llm.scripted import ScriptedBackend

from support.engine import MINI, force, lm_factory, run_steps, timeline


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("says", "too short"),
        ("Hello there", "too short"),
        ("say text to", "only the prompt"),
        ("You remember the old_bridge. You remember the old_bridge. You r", "a loop"),
        ("the bridge the bridge the bridge the bridge is old", "a loop"),
        ("You turn to Margo Vell. What do you say?", "an echo of the prompt"),
        ("You think aloud: the day is long", "an echo of the prompt"),
        ("Just now: Margo came in with the post", "an echo of the prompt"),
        ("Good morning, love, the rye is nearly done.", None),
        ("I will see you at the meeting tonight, Samuel.", None),
    ],
)
def test_utterance_problems(text, problem):
    found = utterance_problem(text)
    assert (found is None) if problem is None else found.startswith(problem), found


def test_a_repeat_of_the_speakers_last_words_or_of_the_example_is_degenerate():
    before = ["The bridge needs fixing before May, Desmond."]
    assert utterance_problem("The bridge needs fixing before May, Desmond!", before)
    assert utterance_problem("Well, the bridge needs fixing before May, Desmond.", before)
    assert utterance_problem("Have you seen the ledger this week?", before) is None
    example = "The river rose a foot overnight, so keep your boat tied up."
    assert utterance_problem(
        "The river rose a foot overnight, so keep your boat tied up!", (), [example]
    )


def test_loops_plans_and_distinct_n():
    assert is_loop("a b c a b c a b c")
    assert is_loop("socilacum ia ia ia ia at Marlowe's Bakery")  # a word over and over
    assert not is_loop("Very, very good bread.")
    assert not is_loop("Morning. The bread is out of the oven.")
    assert plan_problem(["morning_breads"] * 6).startswith("one activity repeated")
    assert plan_problem(["bake", "sell bread", "lunch", "close the shop"]) is None
    assert plan_problem([]) == "empty"
    assert distinct_n(["a b c d"]) == 1.0
    assert distinct_n(["a b a b a b"]) == pytest.approx(2 / 5)
    assert distinct_n([]) == 0.0


def test_clean_removes_labels_quotes_and_keeps_one_line():
    assert clean('"Morning, love. Bread is up."') == "Morning, love. Bread is up."
    assert clean("Ines Marlowe: Mind the oven.\nmore") == "Mind the oven."
    assert clean("Ines says to Tobias: Mind the oven.") == "Mind the oven."
    long = "This is a sentence. " * 20
    assert len(clean(long)) <= 140 and clean(long).endswith(".")


def _say_to_bob(req):
    return {"kind": "say", "to": "Bob Vale"} if req.agent == "Ann Reed" else {"kind": "wait"}


async def test_speech_is_written_apart_and_degenerate_speech_is_regenerated_then_dropped(
    runs_root,
):
    backend = ScriptedBackend()
    force(backend, "act", _say_to_bob)
    seeds: list[int] = []
    lines = iter(
        [
            "says",  # step 1: degenerate, then a good line on the second try
            "Bob, have you seen the delivery from the mill this morning?",
            # step 2: the same line again (a repeat), then a loop: dropped
            "Bob, have you seen the delivery from the mill this morning?",
            "the mill the mill the mill the mill",
        ]
    )

    def speech(req):
        seeds.append(req.sampling.seed)
        return next(lines)

    backend.add_rule(".", speech, "speech")
    sim = start_run(MINI, lm_factory(backend), root=runs_root, seed=4)
    assert "Bob Vale" in sim.state.others_present("Ann Reed")
    await run_steps(sim, 2)
    speech_reqs = [r for r in backend.requests_seen if r.purpose == "speech"]
    assert len(speech_reqs) == 4
    # the speech prompt names no field, shares the act prompt's system prefix, one line
    assert all(r.sampling.stop == ("\n",) and r.sampling.repeat_penalty > 1 for r in speech_reqs)
    assert all("JSON" not in r.messages[-1].content for r in speech_reqs)
    assert len(set(seeds[:2])) == 2 and len(set(seeds[2:])) == 2  # another seed to retry
    events = timeline(sim)
    spoken = [e for e in events if e[3] == "speech"]
    assert [e[7]["action"]["text"] for e in spoken] == [
        "Bob, have you seen the delivery from the mill this morning?"
    ]
    dropped = [e for e in events if e[4] == "Ann Reed" and e[3] == "failure"]
    assert len(dropped) == 1 and dropped[0][7]["reason"].startswith("speech dropped: a loop")
    # never stored as speech: one utterance, the good one
    assert [u.text for u in sim.recorder.utterances(sim.run_id)] == [spoken[0][7]["action"]["text"]]
    assert sim.agents["Ann Reed"].to_dict()["last_said"] == [spoken[0][7]["action"]["text"]]
    await sim.aclose()
