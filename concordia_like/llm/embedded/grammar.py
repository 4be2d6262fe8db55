"""Structured output on the embedded model: a request's GBNF grammar, and sampling under it.

Each structured request gets its own llama.cpp grammar sampler. Applying a grammar to
all of the vocabulary every step is costly, so a token is first sampled freely and
only checked against the grammar (llama.cpp's own trick); when it is rejected, the
grammar masks the `TOP_K` most likely tokens and the sampler picks among those allowed,
and only when none is allowed does the grammar mask the whole vocabulary. Sampling at
temperature > 0 is thereby limited to the top `TOP_K` tokens on the steps where the
grammar intervenes."""

from __future__ import annotations

import ctypes
import json
from typing import Any

import numpy as np

from concordia_like.llm.types import LLMRequest

#: candidates tried under the grammar before the full vocabulary is masked
TOP_K = 64

#: llama-cpp-python's converter lets a JSON string hold raw control characters (a
#: newline, a tab), which JSON forbids and pydantic refuses ("control character"): an
#: act call of the embedded model failed that way now and then. llama.cpp's own
#: converter keeps them out, as here.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def choices_grammar(choices: tuple[str, ...]) -> str:
    return "root ::= " + " | ".join(json.dumps(c) for c in choices) + "\n"


def schema_grammar(schema: dict[str, object]) -> str:
    """The GBNF grammar of a JSON schema, whose strings hold only what JSON allows."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)


def grammar_for(req: LLMRequest) -> str | None:
    """The request's grammar: its choices, else its JSON schema; None for free text."""
    if req.choices is not None:
        return choices_grammar(req.choices)
    if req.json_schema is not None:
        return schema_grammar(req.json_schema)
    return None


class GrammarSampler:
    """Samples the next token of a sequence under its grammar, and answers whether a
    grammar allows a token. Holds the candidate buffers one backend reuses for all its
    sequences (decoding is one thread)."""

    def __init__(self, C: Any, ctx: Any, n_vocab: int) -> None:
        from llama_cpp import _internals

        self._C = C
        self._ctx = ctx  # llama_context*
        self._n_vocab = n_vocab
        self._cand = _internals.LlamaTokenDataArray(n_vocab=n_vocab)
        self._one = (C.llama_token_data * 1)()
        self._one_arr = C.llama_token_data_array(
            data=ctypes.cast(self._one, C.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        self._top = np.zeros(TOP_K, dtype=self._cand.candidates_data.dtype)
        self._top_arr = C.llama_token_data_array(
            data=self._top.ctypes.data_as(C.llama_token_data_p),
            size=TOP_K,
            selected=-1,
            sorted=False,
        )

    def sample(self, chain: int, grammar: int, logit_idx: int) -> int:
        """A token from the logits at `logit_idx`, by the sampler `chain`, that
        `grammar` allows."""
        C, ctx = self._C, self._ctx
        # fast path: sample freely, then ask the grammar whether that one token is allowed
        logits_ptr = C.llama_get_logits_ith(ctx, logit_idx)
        tok = int(C.llama_sampler_sample(chain, ctx, logit_idx))
        if self.allows(grammar, tok):
            return tok
        logits = np.ctypeslib.as_array(logits_ptr, shape=(self._n_vocab,))
        # middle path: the grammar usually allows one of the most likely few dozen tokens
        top = np.argpartition(logits, -TOP_K)[-TOP_K:]
        self._top["id"] = top
        self._top["logit"] = logits[top]
        self._top["p"] = 0.0
        self._top_arr.size = TOP_K
        self._top_arr.selected = -1
        self._top_arr.sorted = False
        C.llama_sampler_apply(grammar, ctypes.byref(self._top_arr))
        if np.isfinite(self._top["logit"]).any():
            C.llama_sampler_apply(chain, ctypes.byref(self._top_arr))
            return int(self._top["id"][self._top_arr.selected])
        # slow path: mask every candidate with the grammar, then sample from what is left
        self._cand.copy_logits(logits)
        arr = ctypes.byref(self._cand.candidates)
        self._cand.candidates.selected = -1
        C.llama_sampler_apply(grammar, arr)
        C.llama_sampler_apply(chain, arr)
        sel = self._cand.candidates.selected
        return int(self._cand.candidates_data.id[sel])

    def allows(self, grammar: int, tok: int) -> bool:
        """Whether `grammar` allows `tok` next (asked of that one token)."""
        self._one[0].id = tok
        self._one[0].logit = 0.0
        self._one[0].p = 0.0
        self._one_arr.size = 1
        self._one_arr.selected = -1
        self._C.llama_sampler_apply(grammar, ctypes.byref(self._one_arr))
        return bool(np.isfinite(self._one[0].logit))
