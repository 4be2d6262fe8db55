"""A persistent response cache in SQLite, and the replay mode built on it.

Keyed by backend, model, request and seed (see `LLMRequest.key`). In `replay` mode a miss
is an error, not a model call: a replayed run either reproduces the original exactly or
says which request it has never seen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Literal

from concordia_like.errors import ConfigError
from concordia_like.llm.errors import CacheMissError
from concordia_like.llm.types import RawCompletion

log = logging.getLogger(__name__)

CacheMode = Literal["off", "readwrite", "replay"]
CACHE_MODES: tuple[str, ...] = ("off", "readwrite", "replay")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class ResponseCache:
    def __init__(self, path: str | Path, mode: CacheMode = "readwrite") -> None:
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode must be one of {', '.join(CACHE_MODES)}, not {mode!r}")
        self.path = Path(path)
        self.mode = mode
        self.hits = 0
        self.misses = 0
        if mode == "replay" and not self.path.exists():
            raise CacheMissError(f"replay cache {self.path} does not exist")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"response cache {self.path} cannot be opened: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except sqlite3.Error as exc:
            self._db.close()
            raise ConfigError(
                f"response cache {self.path} is not a response cache ({exc}); name another "
                "file with --cache, or --cache-mode off"
            ) from None
        self._flush_scheduled = False
        self._closed = False
        self._failed = False

    def get(self, key: str) -> RawCompletion | None:
        row = self._db.execute(
            "SELECT text, prompt_tokens, completion_tokens, finish_reason "
            "FROM responses WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            self.misses += 1
            if self.mode == "replay":
                raise CacheMissError(
                    f"replay cache {self.path} has no response for request {key[:12]}: "
                    "the run differs from the recorded one"
                )
            return None
        self.hits += 1
        return RawCompletion(
            text=row[0], prompt_tokens=row[1], completion_tokens=row[2], finish_reason=row[3]
        )

    def put(self, key: str, backend: str, model: str, raw: RawCompletion) -> None:
        if self.mode == "replay" or self._failed:
            return
        try:
            self._insert(key, backend, model, raw)
        except sqlite3.Error as exc:
            log.warning("response cache %s cannot be written: %s", self.path, exc)
            self._failed = True
            return
        # one commit per batch, not per response: the responses of a batch reach their
        # callers in one turn of the event loop, and the commit waits for the next
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._commit()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    def _insert(self, key: str, backend: str, model: str, raw: RawCompletion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                backend,
                model,
                raw.text,
                raw.prompt_tokens,
                raw.completion_tokens,
                raw.finish_reason,
                time.time(),
            ),
        )

    def flush(self) -> None:
        """Commit the responses put since the last flush. The cache only spares calls: a
        disk that is full or read-only loses them (said once in the log), never the run
        and never with a traceback from the event loop."""
        self._flush_scheduled = False
        if not self._closed:
            self._commit()

    def _commit(self) -> None:
        try:
            self._db.commit()
        except sqlite3.Error as exc:
            if not self._failed:
                log.warning("response cache %s cannot be written: %s", self.path, exc)
            self._failed = True
            with contextlib.suppress(sqlite3.Error):
                self._db.rollback()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._commit()
            finally:
                self._db.close()
