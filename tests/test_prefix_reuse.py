"""Prefix reuse in the embedded backend: slots keep the KV cache of a prefix (the
system message), a request decodes only the rest of its prompt, and the answers are
exactly those of a backend that decoded the prefix just now; a resumed run (empty
slots) equals an uninterrupted one (slots full of earlier steps' prefixes)."""

from __future__ import annotations

import asyncio

import pytest

from concordia_like.engine.runs import resume_run, start_run
from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.embedded import EmbeddedBackend

from support.engine import MINI, timeline

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


def test_a_kept_prefix_answers_as_one_decoded_just_now():
    warm = EmbeddedBackend(n_parallel=3, n_ctx=512)
    fresh = EmbeddedBackend(n_parallel=3, n_ctx=512)
    try:
        lm_warm, lm_fresh = LanguageModel(warm), LanguageModel(fresh)
        asyncio.run(lm_warm.complete_many(_requests("07:00")))
        # one prefix for three requests: decoded alone once, copied to two more slots
        assert warm.stats["copied_prefixes"] == 2
        before = warm.stats["reused_tokens"]
        got = [c.text for c in asyncio.run(lm_warm.complete_many(_requests("07:10")))]
        want = [c.text for c in asyncio.run(lm_fresh.complete_many(_requests("07:10")))]
        assert got == want
        # the second round decoded only what follows the system message, on every slot
        prefix = warm.stats["reused_tokens"] - before
        assert prefix > warm.stats["prompt_tokens"] / 2 / 3
    finally:
        warm.close()
        fresh.close()


def test_a_reset_prefix_cache_keeps_no_prefix_and_changes_no_answer():
    backend = EmbeddedBackend(n_parallel=3, n_ctx=512)
    try:
        first = asyncio.run(backend.generate_batch(_requests("07:00")))
        fresh = dict(backend.stats)  # what an empty cache costs: copies only
        asyncio.run(backend.generate_batch(_requests("07:00")))
        assert backend.stats["reused_tokens"] > 2 * fresh["reused_tokens"]  # kept
        asyncio.run(backend.reset_prefix_cache())
        before = dict(backend.stats)
        again = asyncio.run(backend.generate_batch(_requests("07:00")))
        # nothing kept: the system message is decoded again, once, and copied twice
        assert backend.stats["reused_tokens"] - before["reused_tokens"] == fresh["reused_tokens"]
        assert backend.stats["copied_prefixes"] - before["copied_prefixes"] == 2
        assert [c.text for c in again] == [c.text for c in first]
    finally:
        backend.close()


def test_a_prefix_copied_within_a_batch_answers_as_one_decoded_alone():
    """Three requests under one system message in one batch: the prefix is decoded once
    and its KV copied to the other two slots; each answer is the one that request gets
    alone on a fresh backend (its prefix decoded alone there)."""
    batched = EmbeddedBackend(n_parallel=3, n_ctx=512)
    try:
        got = [c.text for c in asyncio.run(LanguageModel(batched).complete_many(_requests("x")))]
        assert batched.stats["copied_prefixes"] == 2
    finally:
        batched.close()
    want = []
    for request in _requests("x"):
        alone = EmbeddedBackend(n_parallel=1, n_ctx=512)
        try:
            want.append(asyncio.run(LanguageModel(alone).complete(request)).text)
            assert alone.stats["copied_prefixes"] == 0
        finally:
            alone.close()
    assert got == want


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


def _situated(standing: str, moment: str, question: str, seed: int) -> LLMRequest:
    body = f"{standing}\n{moment}"
    return LLMRequest.chat(
        f"{body}\n{question}",
        system=SYSTEM,
        heads=(standing, body),
        max_tokens=12,
        temperature=0.8,
        top_p=0.95,
        seed=seed,
        stop=("\n",),
    )


def _alone(request: LLMRequest) -> str:
    fresh = EmbeddedBackend(n_parallel=1, n_ctx=512)
    try:
        return asyncio.run(LanguageModel(fresh).complete(request)).text
    finally:
        fresh.close()


def test_kept_heads_decode_a_standing_once_per_place_and_a_situation_once_per_step():
    """An agent's act and speech prompts share their situation, and its prompts at one
    place share its standing there (`heads`): the speech call decodes only its
    question; the next step at the same place decodes only from the standing on; at
    another place, only from the system message on. Every answer is the one the
    request gets on a fresh backend."""
    bakery = "You are at the bakery: ovens at the back, the counter faces the square."
    square = "You are at the market square: stalls, a well, the church clock."
    monday = "It is Monday 07:00. Tobias burnt the loaves; customers wait."
    tuesday = "It is Tuesday 07:00. The oven is cold; Samuel is at the door."
    asks = [
        _situated(bakery, monday, "What do you do next?", 3),
        _situated(bakery, monday, "You turn to Tobias. What do you say to Tobias?", 4),
        _situated(bakery, tuesday, "You turn to Samuel. What do you say to Samuel?", 5),
        _situated(square, tuesday, "What do you do next?", 6),
    ]
    kept = EmbeddedBackend(n_parallel=1, n_ctx=512)
    try:
        lm, got, reused = LanguageModel(kept), [], []
        for request in asks:
            before = kept.stats["reused_tokens"]
            got.append(asyncio.run(lm.complete(request)).text)
            reused.append(kept.stats["reused_tokens"] - before)
        rendered = kept.render(asks[0])

        def level(text: str) -> int:  # tokens up to the end of `text` in the prompt
            return len(kept.tokenize(rendered[: rendered.index(text) + len(text)]))

        system_level, standing_level, body_level = level(SYSTEM), level(bakery), level(monday)
    finally:
        kept.close()
    assert reused[0] == 0  # a fresh backend: every level decoded alone
    assert reused[1] >= body_level - 1  # the situation was kept: only the question
    assert standing_level - 1 <= reused[2] < body_level - 1  # same place, new step
    assert system_level - 1 <= reused[3] < standing_level - 1  # another place
    assert got == [_alone(r) for r in asks]
