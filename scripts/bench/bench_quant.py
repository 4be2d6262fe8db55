"""Benchmark of the embedded model's quantizations on this CPU: the shipped Q4_1 file
against the Q8_0 copy the backend decodes with (and an F16 one), on a prompt-bound batch
(8 requests of about 350 prompt tokens and 16 generated, no kept prefixes), taken in
turns so that a busy machine weighs on each alike.

    .venv/bin/python scripts/bench/bench_quant.py [--rounds 2] [--threads N]

The last line is `q8_0_speedup=<Q4_1 seconds / Q8_0 seconds>` over all rounds."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from concordia_like.llm import LanguageModel, LLMRequest
from concordia_like.llm.embedded import EmbeddedBackend
from concordia_like.llm.model_files import decoding_model_path, default_model_path

TEXT = (
    "The bakery smells of rye. Tobias burnt the loaves and customers wait at the counter; "
    "Margo asks about the bridge, the mayor is late, and the river rose a foot overnight. "
) * 8


def requests(tag: str) -> list[LLMRequest]:
    return [
        LLMRequest.chat(f"{tag} {i}. {TEXT} What do you say?", max_tokens=16, seed=i)
        for i in range(8)
    ]


def f16_copy(folder: Path) -> Path:
    from llama_cpp import llama_cpp as C

    out = folder / "SmolLM2-135M-Instruct.F16.gguf"
    params = C.llama_model_quantize_default_params()
    params.ftype, params.allow_requantize = C.LLAMA_FTYPE_MOSTLY_F16, True
    if C.llama_model_quantize(str(default_model_path()).encode(), str(out).encode(), params):
        raise SystemExit("could not make the F16 copy")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "Q4_1": default_model_path(),
            "Q8_0": decoding_model_path(),
            "F16": f16_copy(Path(tmp)),
        }
        seconds = dict.fromkeys(models, 0.0)
        for r in range(args.rounds):
            for name, path in models.items():
                backend = EmbeddedBackend(path, n_threads=args.threads)
                try:
                    start = time.perf_counter()
                    out = asyncio.run(LanguageModel(backend).complete_many(requests(f"{r}")))
                    took = time.perf_counter() - start
                finally:
                    backend.close()
                seconds[name] += took
                tokens = sum(o.prompt_tokens for o in out)
                print(f"round {r} {name:>5}: {took:6.1f} s, {tokens} prompt tokens", flush=True)
    for name, s in seconds.items():
        print(f"{name:>5}: {s:.1f} s in all, {seconds['Q4_1'] / s:.2f}x the shipped Q4_1")
    print(f"q8_0_speedup={seconds['Q4_1'] / seconds['Q8_0']:.2f}")


if __name__ == "__main__":
    main()
