"""The engine under the `events` attention policy: residents are asked what they do only
where something calls for a choice, and follow their plans by code otherwise."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import pytest

from concordia_like.agents.actions import Say
from concordia_like.agents.attention import AttentionPolicy
from concordia_like.engine.hooks import Announcement, StepHook, StepInput
from concordia_like.engine.runs import resume_run, start_run
from concordia_like.engine.simulation import ENGINES, Simulation
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.memory.plans import DayPlan, PlanBlock
from concordia_like.world.state import ScheduledEvent

from support.engine import MINI, close, force, lm_factory, run_steps, timeline

ANN, BOB, CY = "Ann Reed", "Bob Vale", "Cy Moss"
MONDAY = datetime(2025, 4, 14)
EVENTS = AttentionPolicy(idle_steps=50)
#: where each resident's day happens: Ann and Bob start at the square, Cy in the lane
PLACES = {ANN: "square", BOB: "park", CY: "lane"}
WORDS = "The apples came in early today, so come by the shop before noon."


def give_plans(sim: Simulation, places: dict[str, str | None]) -> None:
    """A one-item day for each resident, at the place given, 07:00 to 22:00."""
    start, end = MONDAY.replace(hour=7), MONDAY.replace(hour=22)
    for name, place in places.items():
        block = PlanBlock(start, end, f"spends the day at {place}", place)
        sim.agents[name].plan = DayPlan(name, MONDAY.date(), start, end, [block])


def scripted(says: dict[str, str] | None = None) -> ScriptedBackend:
    """Residents asked what they do carry on with their plans, but for `says`
    (speaker -> addressee) while the addressee is there; speech is one good line;
    nothing matters enough to change a plan."""
    backend = ScriptedBackend()
    says = says or {}

    def mundane(req):
        n = sum(line.startswith("- ") for line in req.messages[-1].content.splitlines())
        return {"scores": [2] * n}

    force(backend, "importance", mundane)

    def act(req):
        to = says.get(req.agent or "")
        if to is not None and to in req.messages[-1].content:
            return {"kind": "say", "to": to}
        return {"kind": "continue"}

    force(backend, "act", act)
    force(backend, "converse", exchange)
    force(backend, "speech", lambda req: None)
    backend.add_rule(".", WORDS, "speech")
    backend.rules.insert(0, backend.rules.pop())  # the line, before the generic rule
    return backend


LINES = [
    "The apples came in early today, so come by the shop before noon.",
    "I saw the cart on the lane this morning, it was full of crates.",
    "The square looks tidy, somebody swept it before the rain came.",
    "My sister wants to sell pears at the market on Saturday.",
    "Have you seen how high the river got after last night?",
    "The baker says flour will cost more from next month.",
    "I am thinking of painting the door of my house green.",
    "Our neighbour lost a goat and found it in the church yard.",
]


TAILS = [
    "Tell me what you make of that.",
    "My cousin heard the same from the miller.",
    "We could walk over there after lunch.",
    "Nobody at the inn believes a word of it.",
    "I wrote it down so I would not forget.",
    "Let us keep that between the two of us.",
    "The mayor will want to hear about it.",
    "It reminds me of the summer of the floods.",
]


def line(digest: bytes) -> str:
    """One of 64 lines, two picked halves (two turns rarely say the same)."""
    return f"{LINES[digest[0] % len(LINES)]} {TAILS[digest[1] % len(TAILS)]}"


def exchange(req) -> dict:
    """A conversation: each turn the schema asks for, in order, with words from `LINES`
    picked by a hash of the request (a different line for each turn)."""
    answer = {}
    for name, prop in req.json_schema["properties"].items():
        turn = req.json_schema["$defs"][prop["$ref"].rsplit("/", 1)[-1]]["properties"]
        speaker = turn["speaker"]["const"]
        key = f"{req.messages[-1].content}|{req.sampling.seed}|{name}|{speaker}"
        answer[name] = {
            "speaker": speaker,
            "addressee": turn["addressee"]["const"],
            "text": line(hashlib.sha256(key.encode()).digest()),
        }
    return answer


def events_run(runs_root, backend, engine="simultaneous", places=PLACES) -> Simulation:
    sim = start_run(
        MINI, lm_factory(backend), engine=engine, seed=3, root=runs_root, attention=EVENTS.record()
    )
    assert sim.attention == EVENTS
    give_plans(sim, places)
    return sim


def calls(sim: Simulation, purpose: str | None = None) -> int:
    usage = sim.lm.usage
    return (usage.by_purpose[purpose] if purpose else usage.total).calls


def step_events(sim: Simulation, step: int) -> list[tuple]:
    return [e for e in timeline(sim) if e[0] == step]


def why_of(sim: Simulation, step: int, actor: str) -> list[str] | None:
    """Why `actor` was asked in `step` (None: it was not asked)."""
    for e in step_events(sim, step):
        if e[4] == actor and e[3] in ("action", "speech", "failure"):
            return e[7].get("why")
    return None


@pytest.mark.parametrize("engine", ENGINES)
async def test_dead_air_steps_make_no_model_call(runs_root, engine):
    sim = events_run(runs_root, scripted(), engine)
    await run_steps(sim, 1)  # the hour's plans; Ann and Bob meet; Bob leaves for the park
    for _ in range(4):  # 08:10 to 08:40: everyone where the plan says, alone or met
        before = calls(sim)
        await sim.run_step()
        assert calls(sim) == before
    await run_steps(sim, 1)  # 08:50
    before_act = calls(sim, "act")
    await sim.run_step()  # 09:00: the new hour's plans are due, and made
    assert calls(sim, "act") == before_act
    assert calls(sim, "plan") > 0
    await close(sim)


async def test_residents_follow_their_plans_by_code_and_are_seen_moving(runs_root):
    sim = events_run(runs_root, scripted(), places={ANN: "square", BOB: "square", CY: "square"})
    await run_steps(sim, 1)
    walk = [e for e in step_events(sim, 1) if e[4] == CY]
    assert walk and walk[0][7].get("autopilot") is True
    assert walk[0][6] == "Cy Moss goes from Lane to Square."
    assert "Cy Moss goes from Lane to Square." in sim.agents[ANN].observations
    assert sim.state.location(CY) == "square"
    await run_steps(sim, 1)  # Cy arrived where Ann and Bob are: company, for all three
    assert "company" in (why_of(sim, 2, CY) or [])
    assert "company" in (why_of(sim, 2, ANN) or [])
    await run_steps(sim, 1)  # together still: nobody is asked again
    assert all(why_of(sim, 3, n) is None for n in (ANN, BOB, CY))
    await close(sim)


class Says(StepHook):
    """A player's resident: `speaker` says a line to `to` at `step`, and waits else."""

    name = "says"

    def __init__(self, speaker: str, to: str, step: int) -> None:
        self.speaker, self.to, self.step = speaker, to, step

    async def before_acting(self, sim, step):
        if step != self.step:
            return None
        line = Say(kind="say", to=self.to, text="Did you hear the bridge may close next week?")
        return StepInput(actions={self.speaker: line})


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_resident_addressed_and_not_answering_within_the_step_is_asked_in_the_next(
    runs_root, engine
):
    sim = events_run(runs_root, scripted(), engine, places={ANN: "square", BOB: "square"})
    sim.hooks.append(Says(ANN, BOB, 3))
    await run_steps(sim, 4)
    spoken = [(e[0], e[4], e[7]["action"]["to"]) for e in timeline(sim) if e[3] == "speech"]
    assert (3, ANN, BOB) in spoken  # the player's line, which Bob had no chance to answer
    for step, _, to in spoken:
        answered = any(s == step and sp == to for s, sp, _ in spoken)
        assert ("addressed" in (why_of(sim, step + 1, to) or [])) == (not answered)
    assert "addressed" in (why_of(sim, 4, BOB) or [])
    assert sim.lm.usage.by_why["act:addressed"].calls == 1
    await close(sim)


@pytest.mark.parametrize("engine", ENGINES)
async def test_residents_who_meet_talk_in_one_call_and_both_have_their_say(runs_root, engine):
    sim = events_run(runs_root, scripted(), engine, places={ANN: "square", BOB: "square"})
    await run_steps(sim, 1)
    said = [
        (e[4], e[7]["action"]["to"], e[7]["why"]) for e in step_events(sim, 1) if e[3] == "speech"
    ]
    assert sorted(said) == sorted([(ANN, BOB, ["company"]), (BOB, ANN, ["company"])])
    assert calls(sim, "converse") == 1 and calls(sim, "speech") == 0
    assert not any(k.startswith("act:") and "company" in k for k in sim.lm.usage.by_why)
    assert sim.lm.usage.by_why["converse:company"].calls == 1
    rows = sim.recorder.utterances(sim.run_id)
    assert {(r.speaker, tuple(r.addressees)) for r in rows} == {(ANN, (BOB,)), (BOB, (ANN,))}
    assert all(sim.agents[n].reply_to is None for n in (ANN, BOB))  # both had their say
    # talking took their step: their activities are shown as they carry on, the next
    assert not [e for e in step_events(sim, 1) if e[4] in (ANN, BOB) and e[3] != "speech"]
    await run_steps(sim, 1)
    assert {
        e[4]
        for e in step_events(sim, 2)
        if e[6].startswith(("Ann Reed carries on", "Bob Vale carries on"))
    } == {ANN, BOB}
    assert why_of(sim, 2, ANN) is None and why_of(sim, 2, BOB) is None
    await close(sim)


async def test_a_degenerate_turn_is_dropped_and_never_stored_as_speech(runs_root):
    backend = scripted()

    def echo(req):
        answer = exchange(req)
        for turn in list(answer.values())[1:]:
            turn["text"] = answer["turn_1"]["text"]  # the opening said back: a copy
        return answer

    backend.rules.insert(0, backend.rules.pop())
    force(backend, "converse", echo)
    backend.rules.insert(0, backend.rules.pop())
    sim = events_run(runs_root, backend, places={ANN: "square", BOB: "square"})
    await run_steps(sim, 1)
    kinds = [(e[3], e[7].get("reason", "")) for e in step_events(sim, 1) if e[4] in (ANN, BOB)]
    assert [k for k, _ in kinds].count("speech") == 1
    assert any(k == "failure" and r.startswith("speech dropped") for k, r in kinds)
    assert len(sim.recorder.utterances(sim.run_id)) == 1
    await close(sim)


async def test_a_say_of_an_act_call_opens_a_conversation_the_listener_answers(runs_root):
    sim = events_run(
        runs_root, scripted({CY: ANN}), places={ANN: "square", BOB: "park", CY: "square"}
    )
    await run_steps(sim, 3)  # Cy walks to the square and meets Ann; they talk
    sim.plant_memory(CY, "Ann was asking about the pears.")
    await run_steps(sim, 1)
    step = sim.step
    said = [
        (e[4], e[7]["action"]["to"], e[7]["why"])
        for e in step_events(sim, step)
        if e[3] == "speech"
    ]
    assert said[0] == (CY, ANN, ["whisper"])  # its act call's say opens it
    assert (ANN, CY, ["addressed"]) in said  # Ann, free, answers within the step
    assert calls(sim, "speech") == 0
    assert why_of(sim, step + 1, ANN) is None or "addressed" not in why_of(sim, step + 1, ANN)
    await run_steps(sim, 1)
    assert "addressed" not in (why_of(sim, step + 1, ANN) or [])
    await close(sim)


async def test_a_whisper_an_intervention_and_news_each_ask_the_next_step(runs_root):
    sim = events_run(runs_root, scripted())
    await run_steps(sim, 2)
    sim.plant_memory(CY, "Someone left a note for you at the shop.")
    await run_steps(sim, 1)
    assert why_of(sim, 3, CY) == ["whisper"]

    class Inject(StepHook):
        name = "inject"

        async def before_acting(self, sim, step):
            if step == 4:
                return StepInput(announcements=[Announcement("A cart overturns.", "lane")])
            return None

    sim.hooks.append(Inject())
    await run_steps(sim, 2)
    assert why_of(sim, 5, CY) == ["intervention"]
    assert why_of(sim, 5, ANN) is None  # not in the lane, did not perceive it

    bell = ScheduledEvent("bell", sim.state.now, "The bell rings across the town.")
    sim.state.events.append(bell)
    await run_steps(sim, 2)
    assert all(why_of(sim, 7, n) == ["news"] for n in (ANN, BOB, CY))
    await close(sim)


async def test_a_free_plan_item_asks_where_to_go(runs_root):
    sim = events_run(runs_root, scripted(), places={ANN: "square", BOB: "park", CY: "lane"})
    start, end = MONDAY.replace(hour=7), MONDAY.replace(hour=22)
    nine = MONDAY.replace(hour=8, minute=20)
    plan = sim.agents[CY].plan
    assert plan is not None
    plan.blocks = [
        PlanBlock(start, nine, "studies", "lane"),
        PlanBlock(nine, end, "has free time", None),
    ]
    await run_steps(sim, 4)
    assert "plan_start" in (why_of(sim, 3, CY) or [])
    assert why_of(sim, 4, CY) is None
    await close(sim)


async def test_idle_residents_are_asked_now_and_then(runs_root):
    sim = events_run(runs_root, scripted(), places={ANN: "park", BOB: "square", CY: "lane"})
    sim.attention = AttentionPolicy(idle_steps=3)
    await run_steps(sim, 7)
    asked = [s for s in range(1, 8) if why_of(sim, s, CY) == ["idle"]]
    assert asked == [3, 6]
    await close(sim)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_resident_asked_who_carries_on_is_no_news_and_costs_no_rating(runs_root, engine):
    """Carrying on follows the plan by the same code as not being asked, so its line is
    rated by rule as the autopilot's are: no importance call, and no replan even where
    the model would call every memory poignant."""
    backend = scripted()

    def poignant(req):
        n = sum(line.startswith("- ") for line in req.messages[-1].content.splitlines())
        return {"scores": [9] * n}

    force(backend, "importance", poignant)
    sim = events_run(runs_root, backend, engine, places={ANN: "park", BOB: "square", CY: "lane"})
    sim.attention = AttentionPolicy(idle_steps=3)
    await run_steps(sim, 2)
    rated, planned = calls(sim, "importance"), calls(sim, "plan")
    await run_steps(sim, 1)
    assert why_of(sim, 3, CY) == ["idle"]
    (line,) = [e[6] for e in step_events(sim, 3) if e[4] == CY]
    assert line.startswith("Cy Moss carries on: ")
    assert sim.agents[CY].news.startswith("Cy Moss carries on")
    assert calls(sim, "importance") == rated
    assert calls(sim, "plan") == planned
    assert not [e for e in step_events(sim, 3) if e[3] == "plan"]
    await close(sim)


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_resumed_events_run_equals_an_uninterrupted_one(tmp_path, runs_root, engine):
    places = {ANN: "park", BOB: "home_bob", CY: "square"}
    straight = events_run(runs_root, scripted({ANN: BOB, CY: ANN}), engine, places)
    await run_steps(straight, 10)

    other = tmp_path / "other"
    first = events_run(other, scripted({ANN: BOB, CY: ANN}), engine, places)
    await run_steps(first, 4)
    await close(first)
    resumed = resume_run(first.run_id, lm_factory(scripted({ANN: BOB, CY: ANN})), root=other)
    assert resumed.attention == EVENTS  # as recorded
    await run_steps(resumed, 6)

    assert timeline(resumed) == timeline(straight)
    assert any(e[7].get("autopilot") for e in timeline(straight))
    assert resumed.state.to_dict() == straight.state.to_dict()
    assert {n: a.to_dict() for n, a in resumed.agents.items()} == {
        n: a.to_dict() for n, a in straight.agents.items()
    }
    for sim in (straight, resumed):
        await close(sim)


async def test_a_step_run_again_after_a_failure_attends_as_the_first_try(runs_root):
    sim = events_run(runs_root, scripted(), places={ANN: "square", BOB: "square"})
    sim.hooks.append(Says(ANN, BOB, 2))
    await run_steps(sim, 2)
    before = {n: a.to_dict() for n, a in sim.agents.items()}

    class Boom(StepHook):
        name = "boom"

        def after_observing(self, sim, step, events, perceived):
            raise RuntimeError("boom")

    sim.hooks.append(Boom())
    with pytest.raises(Exception, match="boom"):
        await sim.run_step()
    assert {n: a.to_dict() for n, a in sim.agents.items()} == before
    sim.hooks.pop()
    await run_steps(sim, 1)
    assert "addressed" in (why_of(sim, 3, BOB) or [])
    await close(sim)


def test_a_step_is_ten_minutes_in_the_mini_world():
    # the step numbers above are read as 08:00 + 10 minutes each
    from concordia_like.world import load_world

    assert load_world(MINI).state.clock.step == timedelta(minutes=10)


async def test_the_town_plans_carry_the_places_of_the_routine(runs_root):
    from support.engine import TOWN

    sim = start_run(TOWN, lm_factory(scripted()), seed=1, root=runs_root, start_time="07:00")
    await run_steps(sim, 1)
    ines = sim.agents["Ines Marlowe"].plan
    assert ines is not None
    routine = {b.description: b.place for b in ines.blocks}
    assert routine["opens the shop and serves the early customers at Marlowe's Bakery"] == "bakery"
    assert all(p is None or p in sim.state.places for p in routine.values())
    await close(sim)


async def test_a_resume_refuses_another_attention_unless_allowed(runs_root):
    from concordia_like.errors import ConfigError

    sim = events_run(runs_root, scripted())
    await run_steps(sim, 1)
    await close(sim)
    with pytest.raises(ConfigError, match=r"other attention.*--allow-change"):
        resume_run(sim.run_id, lm_factory(scripted()), root=runs_root, attention={"mode": "always"})
    again = resume_run(
        sim.run_id,
        lm_factory(scripted()),
        root=runs_root,
        attention={"mode": "always"},
        allow_change=True,
    )
    assert again.attention.mode == "always"
    changes = again.recorder.run(again.run_id).config["changes"]
    assert changes[-1]["attention"][1]["mode"] == "always"
    await close(again)


def test_the_world_file_sets_the_policy_and_the_run_overrides_it():
    from concordia_like.world import load_world

    from support.engine import TOWN

    assert AttentionPolicy.of_world(load_world(TOWN).spec) == AttentionPolicy()
    mini = AttentionPolicy.of_world(load_world(MINI).spec)
    assert mini.mode == "always"
    assert mini.with_overrides(idle_steps=3) == AttentionPolicy(mode="always", idle_steps=3)


async def test_in_the_sandbox_a_whisper_an_inject_and_a_player_always_ask(runs_root):
    import io

    from rich.console import Console

    from concordia_like.sandbox.session import TownSession

    from support.engine import TOWN

    factory = lm_factory(scripted())
    sim = start_run(TOWN, factory, seed=3, root=runs_root, start_time="07:00")
    session = TownSession(
        sim,
        Console(file=io.StringIO(), width=100),
        opener=lambda run_id: resume_run(run_id, factory, world_path=TOWN, root=runs_root),
        root=runs_root,
    )
    run = session.execute
    assert await run("step 2")
    assert await run("whisper Hana the bridge fund book is at the post office")
    assert await run("step")
    assert "whisper" in (why_of(sim, 3, "Hana Sato") or [])
    where = sim.state.location("Ines Marlowe")
    assert await run(f"inject at {where} A cart overturns outside, spilling flour.")
    assert await run("step 2")
    assert "intervention" in (why_of(sim, 5, "Ines Marlowe") or [])
    pairs = [(a, b) for a in sim.agents for b in sim.state.others_present(a)]
    speaker, listener = pairs[0]
    assert await run(f"play {speaker}")
    assert await run(f"say to {listener} Morning! Have you heard about the bridge fund?")
    assert await run("step")
    assert why_of(sim, 6, speaker) == ["player"]
    assert await run("wait")
    assert await run("step")
    assert "addressed" in (why_of(sim, 7, listener) or [])
    await session.aclose()


async def test_asked_only_because_it_was_spoken_to_a_resident_chooses_among_the_others_here(
    runs_root,
):
    seen = []
    backend = scripted()
    backend.add_rule(".", lambda req: seen.append(req) or '{"kind": "continue"}', "act")
    backend.rules.insert(0, backend.rules.pop())
    sim = events_run(runs_root, backend, places={ANN: "square", BOB: "square"})
    sim.hooks.append(Says(BOB, ANN, 2))  # a player speaks to Ann, who cannot answer then
    await run_steps(sim, 3)
    schemas = [json.dumps(r.json_schema) for r in seen if r.why == "addressed"]
    assert schemas and all('"move"' not in k and '"continue"' in k for k in schemas)
    ann = [json.dumps(r.json_schema) for r in seen if r.why == "addressed" and r.agent == ANN]
    assert ann and all(f'"{ANN}"' not in k for k in ann)  # nobody to think aloud to
    sim.plant_memory(ANN, "The bridge is closing tomorrow.")
    await run_steps(sim, 1)  # a whisper: going elsewhere is a choice again
    whispered = [r for r in seen if r.why == "whisper"]
    assert whispered and '"move"' in json.dumps(whispered[0].json_schema)
    await close(sim)


async def test_asked_only_for_being_idle_a_resident_may_go_only_where_someone_is(runs_root):
    seen = []
    backend = scripted()
    backend.add_rule(".", lambda req: seen.append(req) or '{"kind": "continue"}', "act")
    backend.rules.insert(0, backend.rules.pop())
    # Cy in the lane, next door to Ann at the square and to the homes, where nobody is
    sim = events_run(runs_root, backend, places={ANN: "square", BOB: "park", CY: "lane"})
    sim.attention = AttentionPolicy(idle_steps=3)
    await run_steps(sim, 5)
    idle = [r for r in seen if r.why == "idle" and r.agent == CY]
    assert idle and all(_ways(r.json_schema) == ["square"] for r in idle)
    ways = sorted(sim.state.reachable(ANN))
    assert any(not sim.state.agents_at(w) for w in ways)  # somewhere empty to go
    sim.plant_memory(ANN, "The bridge is closing tomorrow.")
    await run_steps(sim, 1)  # a whisper: every way out is a choice again
    whispered = [r for r in seen if r.why == "whisper"]
    assert whispered and _ways(whispered[0].json_schema) == ways
    await close(sim)


def _ways(schema: dict) -> list[str]:
    """The places a decision schema offers to move to (none: no move)."""
    move = schema.get("$defs", {}).get("MoveTo")
    return sorted(move["properties"]["to"]["enum"]) if move else []
