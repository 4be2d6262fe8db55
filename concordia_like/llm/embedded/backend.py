"""The embedded default: SmolLM2-135M-Instruct on llama.cpp, in process, no key, no network.

A batch is decoded as parallel sequences in one llama.cpp context: every prompt is
prefilled in shared `llama_decode` calls, then each step decodes one new token for every
live sequence in a single call. On a CPU the weights are read once per step for all
sequences, which is where the batch speed-up comes from.

Each sequence has its own sampler (greedy at temperature 0, seeded otherwise) and, for
structured requests, its own grammar (`grammar`). Prefixes are kept across calls in
the context's slots (`slots`), so a request decodes only what its prefix does not
hold. The model file is the shipped one requantized for decoding (`model_files`)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from concordia_like.errors import ConfigError
from concordia_like.llm.backend import Backend
from concordia_like.llm.embedded.grammar import GrammarSampler, grammar_for
from concordia_like.llm.embedded.slots import SlotCache, prefix_levels
from concordia_like.llm.errors import LLMError, ModelFileError, SchemaRefusedError
from concordia_like.llm.model_files import decoding_model_path
from concordia_like.llm.types import LLMRequest, RawCompletion


def _env_threads() -> int:
    """CONCORDIA_THREADS, the threads llama.cpp decodes with (default: every core). On a
    machine busy with other work, fewer threads than cores avoid llama.cpp's threads
    waiting on one another at every decode call for a core taken by something else."""
    raw = os.environ.get("CONCORDIA_THREADS", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"CONCORDIA_THREADS must be a whole number from 1, not {raw!r}")
    return int(raw)


@dataclass
class _Seq:
    """One request being decoded: its slot in the context, sampler state and output."""

    index: int
    request: LLMRequest
    prompt: list[int]
    chain: int  # llama_sampler* of the free sampler chain
    grammar: int | None  # llama_sampler* of the grammar, checked separately
    pos: int = 0
    #: the context sequence (slot) it decodes in, and how many prompt tokens were reused
    slot: int = 0
    reused: int = 0
    #: of those, how many the slot held already (the rest: levels decoded alone now)
    kept: int = 0
    #: where the prompt's prefix levels end (tokens), shortest first (see the module)
    levels: list[int] = field(default_factory=list)
    #: generated tokens fed back into the KV cache (all but the last sampled)
    fed: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    text: bytes = b""
    finish: str | None = None
    logit_idx: int = -1


class EmbeddedBackend(Backend):
    name = "embedded"
    concurrent_batches = False

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_parallel: int = 8,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        kv_unified: bool = False,
        n_slots: int | None = None,
    ) -> None:
        from llama_cpp import _internals, llama_cpp
        from llama_cpp._logger import set_verbose

        set_verbose(False)
        path = Path(model_path) if model_path is not None else decoding_model_path()
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        self._C = llama_cpp
        self.path = path
        self.max_batch = n_parallel
        self.n_ctx_seq = n_ctx
        #: sequences the context holds: more than a batch decodes at once, so that a
        #: town's agents (and the Game Master) each keep their prefix
        self.n_slots = max(n_parallel, n_slots or 3 * n_parallel)
        #: by purpose: prompt tokens decoded (not served from kept prefixes), tokens
        #: generated, and seconds in the batches (a batch counted under its first
        #: request's purpose): where a CPU's time goes
        #: purpose -> decoded and generated tokens, and seconds (a float)
        self.by_purpose: dict[str, dict[str, float]] = {}
        try:
            self._model = _internals.LlamaModel(
                path_model=str(path), params=llama_cpp.llama_model_default_params(), verbose=False
            )
        except Exception as exc:
            raise ModelFileError(f"model file {path} could not be loaded: {exc}") from None
        threads = n_threads or _env_threads() or max(1, os.cpu_count() or 1)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * self.n_slots
        params.n_batch = min(params.n_ctx, 2048)
        params.n_ubatch = 512
        params.n_seq_max = self.n_slots
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = kv_unified
        params.no_perf = True
        self._ctx = _internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._n_batch = params.n_batch
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._vocab = self._model.vocab
        self._n_vocab = self._model.n_vocab()
        self._grammar = GrammarSampler(llama_cpp, self._ctx.ctx, self._n_vocab)
        self.slots = SlotCache(llama_cpp, self._ctx.memory, self.n_slots, self._decode_alone)
        meta = self._model.metadata()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._eos = self._model.token_eos()
        eos = self._model.token_get_text(self._eos)
        bos = self._model.token_get_text(self._model.token_bos())
        self._formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"], eos_token=eos, bos_token=bos
        )
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._pieces: dict[int, bytes] = {}
        self._closed = False

    @property
    def model(self) -> str:
        return self.path.stem

    @property
    def stats(self) -> dict[str, int]:
        """Prompt tokens, those served from kept or copied prefixes, and copies."""
        return self.slots.stats

    # -- prompt -----------------------------------------------------------------------

    def render(self, request: LLMRequest) -> str:
        messages: list[Any] = [m.model_dump() for m in request.messages]
        return self._formatter(messages=messages).prompt

    def tokenize(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)

    # -- decoding ---------------------------------------------------------------------

    async def generate_batch(self, requests: list[LLMRequest]) -> list[RawCompletion | Exception]:
        if self._closed:
            raise LLMError("the embedded model has been closed")
        results: list[RawCompletion | Exception] = [LLMError("not decoded") for _ in requests]
        seqs: list[_Seq] = []
        ok = False
        try:
            for i, req in enumerate(requests):
                try:
                    seqs.append(self._start(i, req))
                except LLMError as exc:
                    results[i] = exc
            started = time.perf_counter()
            self._assign_slots(seqs)
            await self._decode(seqs)
            ok = True
            if seqs:
                self._count(seqs, time.perf_counter() - started)
            for s in seqs:
                text = s.text.decode("utf-8", errors="replace")
                text = _cut_at_stop(text, s.request.sampling.stop)
                results[s.index] = RawCompletion(
                    text=text,
                    prompt_tokens=len(s.prompt),
                    completion_tokens=len(s.out),
                    finish_reason="length" if s.finish == "length" else "stop",
                )
        finally:
            for s in seqs:
                self._C.llama_sampler_free(s.chain)
                if s.grammar is not None:
                    self._C.llama_sampler_free(s.grammar)
            if ok:  # every slot used goes back to its prefix
                self.slots.cut_back(s.slot for s in seqs)
            else:
                await self.reset_prefix_cache()
        return results

    async def reset_prefix_cache(self) -> None:
        """Forget every kept prefix (for benchmarks that must not measure the cache)."""
        if not self._closed:
            self.slots.clear()

    def _count(self, seqs: list[_Seq], seconds: float) -> None:
        for s in seqs:
            c = self.by_purpose.setdefault(s.request.purpose, cast(dict[str, float], Counter()))
            c["decoded"] += len(s.prompt) - s.kept
            c["generated"] += len(s.out)
        self.by_purpose[seqs[0].request.purpose]["seconds"] += seconds

    def _assign_slots(self, seqs: list[_Seq]) -> None:
        """Give each sequence a slot holding its prefix (see `SlotCache.assign`)."""
        taken: list[int] = []
        for s in seqs:
            s.slot, s.kept, s.reused = self.slots.assign(s.prompt, s.levels, taken)
            s.pos = s.reused

    def _decode_alone(self, slot: int, tokens: list[int], start: int = 0) -> None:
        """A prefix level into a slot holding the `start` tokens below it, in decode
        calls of its own."""
        for at in range(0, len(tokens), self._n_batch):
            self._batch.n_tokens = 0
            for j, tok in enumerate(tokens[at : at + self._n_batch]):
                self._add(tok, start + at + j, slot, False)
            self._run_decode()

    def _start(self, index: int, req: LLMRequest) -> _Seq:
        C = self._C
        rendered = self.render(req)
        prompt = self.tokenize(rendered)
        budget = self.n_ctx_seq - req.sampling.max_tokens
        if len(prompt) > budget:
            raise LLMError(
                f"prompt of {len(prompt)} tokens does not fit the embedded model's context "
                f"({self.n_ctx_seq} tokens per sequence less max_tokens="
                f"{req.sampling.max_tokens})"
            )
        s = req.sampling
        chain = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
        if s.repeat_penalty != 1.0:
            # over the tokens generated (the prompt is not fed to it): a small model's
            # loops ("You remember the bridge. You remember the bridge.") are held back
            C.llama_sampler_chain_add(
                chain,
                C.llama_sampler_init_penalties(self._n_vocab, 64, s.repeat_penalty, 0.0, 0.0),
            )
        if s.temperature <= 0:
            C.llama_sampler_chain_add(chain, C.llama_sampler_init_greedy())
        else:
            if s.top_p < 1.0:
                C.llama_sampler_chain_add(chain, C.llama_sampler_init_top_p(s.top_p, 1))
            C.llama_sampler_chain_add(chain, C.llama_sampler_init_temp(s.temperature))
            C.llama_sampler_chain_add(chain, C.llama_sampler_init_dist(s.seed & 0xFFFFFFFF))
        grammar = None
        gbnf = grammar_for(req)
        if gbnf is not None:
            grammar = C.llama_sampler_init_grammar(self._vocab, gbnf.encode(), b"root")
            if not grammar:
                C.llama_sampler_free(chain)
                raise SchemaRefusedError("the request's schema could not be turned into a grammar")
        return _Seq(
            index=index,
            request=req,
            prompt=prompt,
            chain=chain,
            grammar=grammar,
            levels=prefix_levels(req, prompt, rendered, self.tokenize),
        )

    async def _decode(self, seqs: list[_Seq]) -> None:
        # prefill: pack prompts into shared decode calls of at most n_batch tokens. Logits
        # live only until the next decode call, so a sequence whose prompt ends in this
        # call samples its first token right after it.
        pending = [(s, s.reused) for s in seqs]
        while pending:
            self._batch.n_tokens = 0
            rest, ended = [], []
            for s, start in pending:
                room = self._n_batch - self._batch.n_tokens
                if room <= 0:
                    rest.append((s, start))
                    continue
                chunk = s.prompt[start : start + room]
                last = start + len(chunk) == len(s.prompt)
                for j, tok in enumerate(chunk):
                    idx = self._add(tok, start + j, s.slot, last and j == len(chunk) - 1)
                    if last and j == len(chunk) - 1:
                        s.logit_idx = idx
                s.pos = start + len(chunk)
                if last:
                    ended.append(s)
                else:
                    rest.append((s, start + len(chunk)))
            self._run_decode()
            for s in ended:
                self._accept(s, self._sample(s))
            pending = rest
            await asyncio.sleep(0)
        live = [s for s in seqs if s.finish is None]
        while live:
            self._batch.n_tokens = 0
            for s in live:
                s.logit_idx = self._add(s.out[-1], s.pos, s.slot, True)
                s.fed.append(s.out[-1])
                s.pos += 1
            self._run_decode()
            for s in live:
                self._accept(s, self._sample(s))
            live = [s for s in live if s.finish is None]
            await asyncio.sleep(0)  # let the event loop breathe between decode steps

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        b = self._batch
        i = b.n_tokens
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = logits
        b.n_tokens = i + 1
        return i

    def _run_decode(self) -> None:
        rc = self._C.llama_decode(self._ctx.ctx, self._batch)
        if rc != 0:
            raise LLMError(f"llama_decode failed with code {rc}")

    def _sample(self, s: _Seq) -> int:
        if s.grammar is None:
            return int(self._C.llama_sampler_sample(s.chain, self._ctx.ctx, s.logit_idx))
        return self._grammar.sample(s.chain, s.grammar, s.logit_idx)

    def _accept(self, s: _Seq, tok: int) -> None:
        C = self._C
        if C.llama_vocab_is_eog(self._vocab, tok):
            s.finish = "stop"
            return
        if s.grammar is not None:
            C.llama_sampler_accept(s.grammar, tok)
        s.out.append(tok)
        s.text += self._piece(tok)
        stops = s.request.sampling.stop
        if stops and any(st in s.text.decode("utf-8", errors="ignore") for st in stops):
            s.finish = "stop"
        elif s.grammar is not None and s.text.rstrip().endswith(b"}") and self._may_end(s):
            s.finish = "stop"  # the JSON is whole: no decode call to sample its end
        elif len(s.out) >= s.request.sampling.max_tokens:
            s.finish = "length"

    def _may_end(self, s: _Seq) -> bool:
        """Whether the grammar lets the output end here (a JSON value closed at the
        root: what follows is the end of generation, or whitespace before it)."""
        if s.request.choices is not None:  # a choice may be the start of a longer one
            return False
        return s.grammar is not None and self._grammar.allows(s.grammar, self._eos)

    def _piece(self, tok: int) -> bytes:
        """The bytes of one token (memoised: the same few thousand tokens recur)."""
        piece = self._pieces.get(tok)
        if piece is None:
            buf = ctypes.create_string_buffer(64)
            n = self._C.llama_token_to_piece(self._vocab, tok, buf, len(buf), 0, False)
            piece = buf.raw[: max(n, 0)]
            self._pieces[tok] = piece
        return piece

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._C.llama_batch_free(self._batch)
            self._ctx.close()
            self._model.close()


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = len(text)
    for st in stops:
        at = text.find(st)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]
