"""Batched vs one-at-a-time decoding on the embedded model, through the whole layer.

Eight role-play requests of 48 new tokens: once awaited together (they meet in one
batch and decode as parallel sequences), once awaited one after another. Both runs use
the same backend in the same process, alternating, so the ratio is fair on a noisy
machine, and each starts from an empty prefix cache: the same prompts decoded in the
pass before must not make the next one cheaper. Last line: speedup_8=<ratio>.

`--backend vllm` measures vLLM in process the same way; `--backend scripted` (no model)
only checks that the script runs."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from concordia_like.llm import LanguageModel, LLMRequest, make_backend, open_model

PERSONAS = [
    ("Mira", "the baker", "a customer complains the bread is stale"),
    ("Tomas", "the librarian", "a child returns a book three years late"),
    ("Odile", "a market trader", "the mayor walks past her stall"),
    ("Ben", "a retired sailor", "a storm is coming in over the harbour"),
    ("Ines", "the town doctor", "a patient insists he is perfectly fine"),
    ("Raul", "the carpenter", "his apprentice broke a chisel"),
    ("Lena", "the schoolteacher", "the class has not done its homework"),
    ("Gus", "the publican", "two regulars start arguing about fishing"),
]


def requests(n: int, tokens: int) -> list[LLMRequest]:
    return [
        LLMRequest.chat(
            f"{situation.capitalize()}. What do you say and do? Stay in character.",
            system=f"You are {name}, {role} in a small town. Speak in the first person.",
            max_tokens=tokens,
            purpose="bench",
            agent=name,
        )
        for name, role, situation in (PERSONAS * (n // len(PERSONAS) + 1))[:n]
    ]


async def batched(lm: LanguageModel, reqs: list[LLMRequest]) -> tuple[int, float]:
    start = time.perf_counter()
    done = await lm.complete_many(reqs)
    return sum(d.completion_tokens for d in done), time.perf_counter() - start


async def one_at_a_time(lm: LanguageModel, reqs: list[LLMRequest]) -> tuple[int, float]:
    start = time.perf_counter()
    tokens = 0
    for r in reqs:
        tokens += (await lm.complete(r)).completion_tokens
    return tokens, time.perf_counter() - start


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one round (under two minutes)")
    ap.add_argument("--backend", choices=("embedded", "vllm", "scripted"), default="embedded")
    args = ap.parse_args()
    rounds = 1 if args.quick else args.rounds
    options = {"n_parallel": args.requests} if args.backend == "embedded" else {}
    lm = open_model(make_backend(args.backend, **options))
    reqs = requests(args.requests, args.tokens)
    await lm.complete(reqs[0])  # warm-up: page the weights in
    b_rates, s_rates = [], []
    for r in range(rounds):
        order = (batched, one_at_a_time) if r % 2 == 0 else (one_at_a_time, batched)
        for fn in order:
            await lm.backend.reset_prefix_cache()
            tokens, seconds = await fn(lm, reqs)
            (b_rates if fn is batched else s_rates).append(tokens / seconds)
            print(
                f"round {r + 1} {fn.__name__:>13}: {tokens} tokens in {seconds:.2f} s "
                f"= {tokens / seconds:.1f} tok/s"
            )
    await lm.aclose()
    b, s = statistics.median(b_rates), statistics.median(s_rates)
    print(f"batched      {b:.1f} tok/s (median of {rounds})")
    print(f"one-at-a-time {s:.1f} tok/s (median of {rounds})")
    print(f"speedup_{args.requests}={b / s:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
