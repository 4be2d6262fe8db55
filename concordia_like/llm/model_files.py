"""Model files made from the shipped one on first use and kept in the user's cache
(`CONCORDIA_CACHE_DIR`, else `$XDG_CACHE_HOME/concordia-like`, else
`~/.cache/concordia-like`), keyed by the shipped file's content: the vLLM backend's
Hugging Face folder, and the embedded backend's Q8_0 file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "CONCORDIA_CACHE_DIR"


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
