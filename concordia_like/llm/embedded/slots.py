"""Prefixes kept across calls in the embedded model's context: its slots.

A request's prefix is its system message (an agent's persona and rules, the Game
Master's rules), as it opens the rendered prompt, and then each of its `heads` (an
agent's standing at a place, which lasts for steps; then its situation, which its act
and speech prompts of a step share): a level each (`prefix_levels`). The context holds
more sequences (slots) than a batch decodes at once, and a slot keeps the KV cache of
one prefix: a request whose prefix a slot holds, or the lower levels of it, decodes
only the rest there, and the slot is cut back to its prefix after the batch
(`llama_memory_seq_rm`). An agent's prompts of every step share its system level,
those at one place its standing, and its speech prompt decodes only its question, on
the situation its act prompt left.

Exactness: llama.cpp's numbers depend on what a decode call holds (a token's KV
computed beside others differs in the last bits, and a sampled token can flip), so a
prefix is always decoded the same way: each level alone, in decode calls of its own, on
the level below it. A prompt then decodes as its prefix plus the rest of it batched
with the other requests' rests, whether the prefix was decoded just now or steps ago,
so a resumed run (empty slots) goes on exactly as the uninterrupted one, and a batched
request answers as it does alone wherever it did before. Requests of one batch under
the same prefix (an agent's act and plan calls, the Game Master's, the importance
scorer's) take one slot that holds it and copies of it (`llama_memory_seq_cp`, the KV
bit for bit, so the same numbers as decoding it alone); an empty slot, or one whose
prefix another slot also holds, is emptied before a slot whose prefix is the only one
kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from concordia_like.llm.types import LLMRequest

#: decodes tokens into a slot that holds the `start` tokens below them, alone
DecodeAlone = Callable[[int, list[int], int], None]


class SlotCache:
    """The context's slots, the prefix whose KV each holds (positions 0..len-1) and
    when each was last used. `stats` counts prompt tokens, those served from kept or
    copied prefixes, and copies."""

    def __init__(self, C: Any, memory: Any, n_slots: int, decode_alone: DecodeAlone) -> None:
        self._C = C
        self._mem = memory  # llama_memory_t of the context
        self._decode_alone = decode_alone
        self.n_slots = n_slots
        self.prefix: list[tuple[int, ...]] = [() for _ in range(n_slots)]
        self._used: list[int] = [0] * n_slots
        self._uses = 0
        self.stats = {"prompt_tokens": 0, "reused_tokens": 0, "copied_prefixes": 0}

    def assign(
        self, prompt: list[int], levels: list[int], taken: list[int]
    ) -> tuple[int, int, int]:
        """A slot for a prompt whose prefix levels end at `levels` (tokens, shortest
        first); how many of its tokens the slot held already (kept or copied), and how
        many it holds now (its whole prefix). Not one of `taken` (the
        slots this batch took, appended to): one holding the prefix; else a copy of a
        taken slot holding it (the KV copied bit for bit, so the same numbers as
        decoding it alone); else an empty or expendable slot with the prefix decoded
        into it alone, level by level (see the module: always the same way)."""
        C, mem = self._C, self._mem
        self.stats["prompt_tokens"] += len(prompt)
        keys = [tuple(prompt[:n]) for n in levels]
        free = [k for k in range(self.n_slots) if k not in taken]
        slot, have = self._home(free, keys)
        if slot is None:
            slot = self._victim(free)
            C.llama_memory_seq_rm(mem, slot, -1, -1)
            self.prefix[slot] = ()
            # a slot this batch took is still at its prefix: nothing decoded there yet
            src, have = self._home(taken, keys)
            if src is not None:
                C.llama_memory_seq_cp(mem, src, slot, -1, -1)
                self.prefix[slot] = self.prefix[src]
                self.stats["copied_prefixes"] += 1
        if len(self.prefix[slot]) > have:  # a longer prefix: back to the level
            C.llama_memory_seq_rm(mem, slot, have, -1)
        self.stats["reused_tokens"] += have
        kept = have
        for n in levels:  # the levels not kept, each alone on the one below
            if n > have:
                self._decode_alone(slot, prompt[have:n], have)
                have = n
        self.prefix[slot] = keys[-1] if keys else ()
        taken.append(slot)
        self._uses += 1
        self._used[slot] = self._uses
        return slot, kept, have

    def cut_back(self, slots: Iterable[int]) -> None:
        """Every slot a batch used back to its prefix (what was decoded after it goes)."""
        for slot in slots:
            kept = len(self.prefix[slot])
            if not self._C.llama_memory_seq_rm(self._mem, slot, kept, -1):
                self._C.llama_memory_seq_rm(self._mem, slot, -1, -1)
                self.prefix[slot] = ()

    def clear(self) -> None:
        """Forget every kept prefix."""
        self._C.llama_memory_clear(self._mem, True)
        self.prefix = [() for _ in range(self.n_slots)]

    def _home(self, slots: list[int], keys: list[tuple[int, ...]]) -> tuple[int | None, int]:
        """Of `slots`, the one holding the most levels of a prefix (`keys`, shortest
        first), preferring one that holds exactly that (nothing else is lost), then the
        least recently used; and how many tokens of the prefix it holds."""
        best: tuple[int, bool, int] | None = None
        found: tuple[int | None, int] = (None, 0)
        for k in slots:
            held = self.prefix[k]
            for level in range(len(keys) - 1, -1, -1):
                key = keys[level]
                if key and held[: len(key)] == key:
                    score = (level, held == key, -self._used[k])
                    if best is None or score > best:
                        best, found = score, (k, len(key))
                    break
        return found

    def _victim(self, free: list[int]) -> int:
        """The slot to empty: an empty one, else one whose prefix another slot also
        holds (nothing is lost), else the least recently used."""
        held = Counter(self.prefix)

        def cost(k: int) -> tuple[int, int]:
            prefix = self.prefix[k]
            return (0 if not prefix else 1 if held[prefix] > 1 else 2, self._used[k])

        return min(free, key=cost)


def prefix_levels(
    req: LLMRequest, prompt: list[int], rendered: str, tokenize: Callable[[str], list[int]]
) -> list[int]:
    """Where the prompt's prefix levels end, in tokens: the rendered prompt up to the end
    of the system message's text, then up to the end of each of its `heads`, as far as
    those tokens open the prompt; at least the last prompt token is left to decode (its
    logits are needed)."""
    ends = []
    first, last = req.messages[0], req.messages[-1].content
    if first.role == "system" and first.content:
        found = rendered.find(first.content)
        if found >= 0:
            ends.append(found + len(first.content))
    opens = rendered.rfind(last) if len(req.messages) > 1 else rendered.find(last)
    if opens >= 0:  # every head opens the last message
        ends += [opens + len(h) for h in req.heads if h and last.startswith(h)]
    levels: list[int] = []
    for end in ends:
        n = min(common_prefix(tokenize(rendered[:end]), prompt), len(prompt) - 1)
        if n > (levels[-1] if levels else 0):
            levels.append(n)
    return levels


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many tokens `a` and `b` share from their start."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
