"""Prefix reuse in the embedded backend: each slot keeps the KV cache of its last
prompt, a request decodes only what its slot does not already hold, and the answers are
exactly those of decoding every prompt whole; a resumed run (empty slots) equals an
uninterrupted one (slots full of earlier steps' prefixes)."""

from __future__ import annotations

import asyncio

import pytest
from engine_support import MINI, timeline

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.embedded import EmbeddedBackend

pytestmark = pytest.mark.embedded

SYSTEM = (
    "You are Ines Marlowe (she/her), 52, baker of Larkspur Ford. Traits: blunt, early "
    "riser, proud of her rye. You speak in short sentences and call everyone love."
)


def _requests(tag: str) -> list[LLMRequest]:
    return [
        LLMRequest.chat(
            f"It is {tag}. Tobias burnt the loaves. What do you say to customer {i}?",
            system=SYSTEM,
            max_tokens=12,
            temperature=0.8,
            top_p=0.95,
            seed=11 + i,
            repeat_penalty=1.3,
            stop=("\n",),
        )
        for i in range(3)
    ]


def test_reused_prefixes_answer_as_whole_prompts_do():
    reuse = EmbeddedBackend(n_parallel=3, n_ctx=512)
    whole = EmbeddedBackend(n_parallel=3, n_ctx=512, prefix_reuse=False)
    try:
        lm_r, lm_w = LanguageModel(reuse), LanguageModel(whole)
        for tag in ("07:00", "07:10"):
            got = [c.text for c in asyncio.run(lm_r.complete_many(_requests(tag)))]
            want = [c.text for c in asyncio.run(lm_w.complete_many(_requests(tag)))]
            assert got == want
        # the second round decoded only what follows the shared prefix
        assert reuse.stats["reused_tokens"] > reuse.stats["prompt_tokens"] / 3
        assert whole.stats["reused_tokens"] == 0
        # alone, on a slot that holds another prompt's prefix, still the same answer
        alone = asyncio.run(lm_r.complete(_requests("07:10")[1])).text
        assert alone == want[1]
    finally:
        reuse.close()
        whole.close()


def test_a_resumed_run_equals_an_uninterrupted_one_on_the_embedded_model(runs_root):
    backends: list[EmbeddedBackend] = []

    def factory(_folder):
        backends.append(EmbeddedBackend(n_parallel=4, n_ctx=1024))
        return LanguageModel(backends[-1])

    async def steps(sim, n):
        async with sim:
            for _ in range(n):
                await sim.run_step()
            return timeline(sim)

    try:
        one = start_run(MINI, factory, root=runs_root / "a", seed=5, start_time="09:00")
        straight = asyncio.run(steps(one, 2))
        assert backends[0].stats["reused_tokens"] > 0  # step 2 reused step 1's prefixes
        two = start_run(MINI, factory, root=runs_root / "b", seed=5, start_time="09:00")
        asyncio.run(steps(two, 1))
        again = resume_run(two.run_id, factory, root=runs_root / "b")
        resumed = asyncio.run(steps(again, 1))
    finally:
        for b in backends:
            b.close()
    assert [e[3:] for e in resumed] == [e[3:] for e in straight]
    assert [e[:3] for e in resumed] == [e[:3] for e in straight]
