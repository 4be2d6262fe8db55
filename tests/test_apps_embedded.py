"""The town with phones on the real embedded model (SmolLM2-135M on llama.cpp): the apps'
state stays consistent whatever the small model does with them.

Whether the model chooses to message anyone is its own affair, so two choices are made
for it (by a backend that answers those two act calls and passes every other request to
the model): Elias decides to text Margo, whose words the model writes apart under the
speech guards, and Hana tries, in free text, to text Margo, which the Game Master's
model resolves under a schema that offers the message. Everything else the model
decides: follows, posts, payments, reads. Few steps: the model is slow on two cores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from concordia_like.agents.degenerate import utterance_problem
from concordia_like.agents.prompt import SPEECH_EXAMPLE
from concordia_like.engine.runs import start_run
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.backend import Backend
from concordia_like.llm.embedded import EmbeddedBackend
from concordia_like.llm.types import RawCompletion
from concordia_like.world.invariants import check_invariants
from concordia_like.world.loader import load_world
from concordia_like.world.replicate import replicate_residents

pytestmark = pytest.mark.embedded

TOWN_DIGITAL = Path(__file__).resolve().parents[1] / "worlds" / "town_digital.yaml"
ELIAS, MARGO, HANA = "Elias Thorne", "Margo Vell", "Hana Sato"
APP_KINDS = {"message", "post", "reply", "like", "follow", "read", "transfer"}
#: the act answers made for the model: (step, resident) -> decision
CHOSEN = {
    (1, ELIAS): {"kind": "message", "to": MARGO},
    (2, HANA): {"kind": "other", "text": f"I text {MARGO} that the bridge closes at noon"},
}


class Chooser(Backend):
    """The embedded model, but for the act calls in `CHOSEN` (the step counted by the
    act calls' rounds), answered as written there."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name, self.max_batch = inner.name, inner.max_batch
        self.step = 0
        self.seen: list[LLMRequest] = []

    @property
    def model(self) -> str:
        return self.inner.model

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        self.seen += requests
        out: list[RawCompletion | Exception | None] = []
        for r in requests:
            chosen = CHOSEN.get((self.step, r.agent or "")) if r.purpose == "act" else None
            out.append(RawCompletion(json.dumps(chosen), 1, 1) if chosen else None)
        todo = [r for r, o in zip(requests, out, strict=True) if o is None]
        answers = iter(await self.inner.generate_batch(todo) if todo else [])
        return [o if o is not None else next(answers) for o in out]


@pytest.fixture(scope="module")
def backend():
    b = EmbeddedBackend(n_parallel=8, n_ctx=2048)
    yield b
    b.close()


def test_the_apps_stay_consistent_on_the_embedded_model(tmp_path, backend):
    chooser = Chooser(backend)
    # its first seven residents (five with phones, Ines and Samuel without): fewer calls
    town = replicate_residents(load_world(TOWN_DIGITAL), 7)
    sim = start_run(
        town,
        lambda _folder: LanguageModel(chooser, owns_backend=False),
        root=tmp_path,
        seed=3,
        start_time="08:00",
        attention={"mode": "always"},
    )
    s = sim.state
    money = s.running_totals()["money"]
    holders: dict[int, set[str]] = {0: set(s.holders_of("phone"))}

    async def go() -> None:
        for step in (1, 2):
            chooser.step = step
            await sim.run_step()
            holders[step] = set(s.holders_of("phone"))

    asyncio.run(go())
    events = list(sim.recorder.events(sim.run_id))
    apps = s.apps

    # Elias's text to Margo: his words, written by the model and guarded, reach her
    # wherever she is, and her next step is asked for because of it
    [sent] = [m for m in apps.messages if m.sender == ELIAS and m.step == 1]
    assert sent.to == MARGO
    assert f'Message from {ELIAS}: "{sent.text}"' in " ".join(sim.agents[MARGO].observations)
    margo_2 = [e for e in events if e.step == 2 and e.actor == MARGO and e.kind != "plan"]
    assert margo_2 and "message" in margo_2[0].data.get("why", [])

    # Hana's free text went to the Game Master's model with the message open to it,
    # addressed only to residents holding a phone
    asked = [
        r
        for r in chooser.seen
        if r.purpose == "resolve" and r.agent == HANA and "noon" in r.messages[-1].content
    ]
    assert asked  # (and its retry, if its first resolution was refused)
    for resolve in asked:
        to = resolve.json_schema["$defs"]["MessageOut"]["properties"]["to"]["enum"]
        assert MARGO in to and set(to) <= holders[1] - {HANA}
        assert f"{HANA}'s phone has: messages to" in resolve.messages[-1].content

    # money is conserved, and nothing breaks the world's invariants
    assert s.running_totals()["money"] == money == s.conserved_totals()["money"]
    assert check_invariants(s) == []

    # messages and payments only between residents holding a phone when they were made
    for r in (*apps.messages, *apps.transfers):
        had = holders[r.step - 1] | holders[r.step]
        assert r.sender in had and r.to in had and r.sender != r.to, r

    # every app event in the log is in the app state, and the app state holds nothing
    # the log does not show
    done = [e for e in events if e.kind == "action" and e.data.get("effects")]
    logged = {
        kind: sorted(
            (e.step, eff["agent"], eff.get("to") or eff.get("whom") or eff.get("what") or "")
            for e in done
            for eff in e.data["effects"]
            if eff.get("kind") == kind
        )
        for kind in ("message", "post", "bank", "follow", "read")
    }
    assert logged["message"] == sorted((m.step, m.sender, m.to) for m in apps.messages)
    assert logged["post"] == sorted((p.step, p.author, "") for p in apps.posts)
    assert logged["bank"] == sorted((t.step, t.sender, t.to) for t in apps.transfers)
    assert sorted((a, b) for _, a, b in logged["follow"]) == sorted(apps.follows)
    assert logged["read"] == sorted((r.step, r.agent, r.what) for r in apps.reads)

    # nothing degenerate is stored as a message or a post
    for text in [m.text for m in apps.messages] + [p.text for p in apps.posts]:
        assert utterance_problem(text, [], [SPEECH_EXAMPLE]) is None, text
    sim.memory.close()
    sim.recorder.close()
