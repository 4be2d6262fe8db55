"""The vector index of memories: Chroma, holding only ids, owners and vectors.

Chroma is never given an embedding function (its default one downloads a model): every
add and query passes vectors made by our embedder. The index is derived data; SQL holds
the records and `MemoryStore.reconcile` rebuilds whatever the index lacks.

Layout: one collection per agent (the default) or one shared collection filtered by
`where={"agent": ...}`. Retrieval always asks for one owner's memories; with a shared
collection Chroma must filter a graph built over every agent's vectors, while a
per-agent collection is searched directly, and its small graph stays fast however many
agents the world has (see scripts/bench/bench_memory.py for the figures).

Writes are buffered per agent. Every Chroma write costs about 10-15 ms whatever its
size, so writing each agent's few new memories every step would cost a second a step at
100 agents. New vectors wait in memory until an agent has `flush_at` of them (or
`flush()`/`close()`); queries search the buffer exactly (a dot product over a few
dozen vectors) and merge it with Chroma's answer, so a buffered memory is found like any
other. A crash loses only buffered index entries, which `MemoryStore.reconcile`
re-indexes from SQL on the next open."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlparse

import numpy as np

from concordia_like.errors import ConfigError

log = logging.getLogger(__name__)

Layout = Literal["per_agent", "shared"]

#: vectors per Chroma call: Chroma caps a batch (max_batch_size) and big batches cost memory
ADD_BATCH = 2000


class IndexGoneError(RuntimeError):
    """A collection this index used was deleted on the Chroma server meanwhile."""


class Hit(NamedTuple):
    """An index's answer: a memory id and its cosine similarity to the query (1 -
    Chroma's cosine distance). A tuple: a retrieval makes dozens per resident."""

    id: int
    similarity: float


def _slug(text: str, limit: int) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[:limit]
    return s or "x"


def collection_name(run_id: str, agent: str | None) -> str:
    """A valid, collision-free Chroma name (3-512 chars of [A-Za-z0-9._-], alphanumeric
    at both ends): readable slugs plus a short hash of the exact strings."""
    key = f"{run_id}\x00{agent if agent is not None else ''}"
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    who = "all" if agent is None else _slug(agent, 40)
    return f"mem-{_slug(run_id, 40)}-{who}-{digest}"


def make_client(path: str | Path | None = None, url: str | None = None) -> Any:
    """An embedded PersistentClient at `path`, or an HttpClient for a Chroma server URL."""
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url is not None:
        parsed = urlparse(url)
        if (
            parsed.scheme not in ("http", "https")
            or not parsed.hostname
            or parsed.path not in ("", "/")
        ):
            raise ConfigError(f"Chroma URL {url!r} must look like http://host:8000")
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=settings,
        )
    if path is None:
        raise ConfigError("a Chroma index needs a folder (path) or a server (url)")
    Path(path).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def is_remote(client: Any) -> bool:
    """Whether `client` talks to a Chroma server over HTTP (not an embedded client)."""
    get_settings = getattr(client, "get_settings", None)
    if not callable(get_settings):
        return False
    return str(get_settings().chroma_api_impl).endswith("fastapi.FastAPI")


def _not_found(exc: BaseException) -> bool:
    """Whether Chroma said that a collection does not exist (NotFoundError; ValueError
    in old versions), as opposed to failing to answer at all."""
    from chromadb.errors import NotFoundError

    return isinstance(exc, NotFoundError) or (
        isinstance(exc, ValueError) and "does not exist" in str(exc)
    )


class _Pending:
    """An agent's index entries not yet written to Chroma."""

    __slots__ = ("ids", "vectors")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.vectors: list[np.ndarray] = []


class ChromaIndex:
    def __init__(
        self,
        client: Any,
        *,
        run_id: str = "default",
        layout: Layout = "per_agent",
        ef_search: int = 100,
        flush_at: int = 128,
        max_pending: int = 20_000,
    ) -> None:
        if layout not in ("per_agent", "shared"):
            raise ConfigError(f"unknown index layout {layout!r}")
        self.client = client
        self.run_id = run_id
        self.layout = layout
        self.ef_search = ef_search
        #: an agent's buffered entries are written once there are this many
        self.flush_at = flush_at
        #: all buffered entries are written once there are this many in all
        self.max_pending = max_pending
        self._collections: dict[str | None, Any] = {}
        #: collections known not to exist (an agent whose entries are all buffered)
        self._missing: set[str | None] = set()
        self._pending: dict[str, _Pending] = {}
        self._n_pending = 0
        self._pool: ThreadPoolExecutor | None = None
        #: a Chroma server over HTTP: other clients may change its collections, and a
        #: failure to answer is not an answer
        self.remote = is_remote(client)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        url: str | None = None,
        *,
        run_id: str = "default",
        layout: Layout = "per_agent",
    ) -> ChromaIndex:
        return cls(make_client(path, url), run_id=run_id, layout=layout)

    # -- collections ----------------------------------------------------------------

    def _key(self, agent: str) -> str | None:
        return agent if self.layout == "per_agent" else None

    def _collection(self, agent: str, *, create: bool) -> Any | None:
        key = self._key(agent)
        col = self._collections.get(key)
        if col is not None:
            return col
        if not create and key in self._missing:
            return None  # this index creates collections; no need to ask Chroma again
        name = collection_name(self.run_id, key)
        if create:
            meta: dict[str, Any] = {"run": self.run_id, "layout": self.layout}
            if key is not None:
                meta["agent"] = key
            col = self.client.get_or_create_collection(
                name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine", "ef_search": self.ef_search}},
                metadata=meta,
            )
        else:
            try:
                col = self.client.get_collection(name, embedding_function=None)
            except Exception as exc:  # chromadb raises NotFoundError (ValueError in old versions)
                if self.remote and not _not_found(exc):
                    # a server that does not answer must not pass for an empty index
                    raise
                self._missing.add(key)
                return None
        self._missing.discard(key)
        self._collections[key] = col
        return col

    def _run_collections(self) -> Iterator[Any]:
        for col in self.client.list_collections():
            meta = col.metadata or {}
            if meta.get("run") == self.run_id and meta.get("layout") == self.layout:
                yield col

    # -- writing --------------------------------------------------------------------

    def add(self, ids: Sequence[int], agents: Sequence[str], vectors: np.ndarray) -> None:
        """Index entries (buffered; re-adding an id overwrites it, so a repeat after a
        crash is harmless)."""
        if len(ids) != len(agents) or len(ids) != len(vectors):
            raise ValueError("ids, agents and vectors differ in length")
        full: set[str] = set()
        for mid, agent, vec in zip(ids, agents, vectors, strict=True):
            buf = self._pending.setdefault(agent, _Pending())
            buf.ids.append(int(mid))
            buf.vectors.append(np.asarray(vec, dtype=np.float32))
            self._n_pending += 1
            if len(buf.ids) >= self.flush_at:
                full.add(agent)
        if self._n_pending >= self.max_pending:
            self.flush()
        elif full:
            self.flush(sorted(full))

    def flush(self, agents: Sequence[str] | None = None) -> None:
        """Write buffered entries (of `agents`, or all) to Chroma. A failed write keeps
        its entries buffered, still searchable, for the next flush."""
        if self.layout == "shared":
            agents = None  # one collection: one write takes everyone's entries
        names = list(self._pending) if agents is None else [a for a in agents if a in self._pending]
        if not names:
            return
        groups: dict[str | None, list[str]] = {}
        for agent in names:
            groups.setdefault(self._key(agent), []).append(agent)
        for group in groups.values():
            latest: dict[int, tuple[str, np.ndarray]] = {}  # an id added twice: the last
            for agent in group:
                buf = self._pending[agent]
                latest.update((i, (agent, v)) for i, v in zip(buf.ids, buf.vectors, strict=True))
            ids = list(latest)
            owners = [latest[i][0] for i in ids]
            vecs = np.stack([latest[i][1] for i in ids])
            try:
                self._write(group[0], ids, owners, vecs)
            except Exception as exc:
                log.warning("memory index write of %d entries failed: %s", len(ids), exc)
                continue
            for agent in group:
                self._n_pending -= len(self._pending.pop(agent).ids)

    def _write(self, agent: str, ids: list[int], owners: list[str], vecs: np.ndarray) -> None:
        try:
            self._upsert(agent, ids, owners, vecs)
        except Exception as exc:
            if not (self.remote and _not_found(exc)):
                raise
            # deleted on the server since we cached it (another client, a reset server):
            # create it again and write once more (upserts: a repeat is harmless)
            self._forget(agent)
            self._upsert(agent, ids, owners, vecs)

    def _upsert(self, agent: str, ids: list[int], owners: list[str], vecs: np.ndarray) -> None:
        col = self._collection(agent, create=True)
        assert col is not None  # create=True makes it
        for start in range(0, len(ids), ADD_BATCH):
            end = start + ADD_BATCH
            col.upsert(
                ids=[str(i) for i in ids[start:end]],
                embeddings=np.ascontiguousarray(vecs[start:end]),
                metadatas=[{"agent": a} for a in owners[start:end]],
            )

    def _forget(self, agent: str) -> None:
        """Drop what this index believes about the agent's collection."""
        key = self._key(agent)
        self._collections.pop(key, None)
        self._missing.discard(key)

    @property
    def pending(self) -> int:
        return self._n_pending

    def discard(self, ids: Sequence[int]) -> None:
        """Remove entries wherever they sit (ids unknown to a collection are ignored)."""
        gone = {int(i) for i in ids}
        for agent, buf in list(self._pending.items()):
            keep = [k for k, i in enumerate(buf.ids) if i not in gone]
            self._n_pending -= len(buf.ids) - len(keep)
            buf.ids = [buf.ids[k] for k in keep]
            buf.vectors = [buf.vectors[k] for k in keep]
            if not buf.ids:
                del self._pending[agent]
        keys = [str(i) for i in sorted(gone)]
        for col in self._run_collections():
            for start in range(0, len(keys), ADD_BATCH):
                col.delete(ids=keys[start : start + ADD_BATCH])

    def drop(self) -> None:
        """Forget this run's whole index (it is rebuilt from SQL on the next reconcile)."""
        for col in list(self._run_collections()):
            self.client.delete_collection(col.name)
        self._collections.clear()
        self._missing.clear()
        self._pending.clear()
        self._n_pending = 0

    # -- reading --------------------------------------------------------------------

    def query(self, agent: str, vectors: np.ndarray, n: int) -> list[list[Hit]]:
        """For each query vector, up to `n` of `agent`'s memories nearest to it, best
        first: Chroma's answer merged with an exact search of the agent's buffer."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        out: list[list[Hit]] = [[] for _ in range(len(vectors))]
        if n <= 0:
            return out
        col = self._collection(agent, create=False)
        if col is not None:
            try:
                res = col.query(
                    query_embeddings=vectors,
                    n_results=n,
                    where={"agent": agent} if self.layout == "shared" else None,
                    include=["distances"],
                )
            except Exception as exc:
                if self.remote and _not_found(exc):
                    # deleted on the server: what it held is known only to SQL, so
                    # answering from the buffer alone would hide memories. Fail loudly;
                    # MemoryStore.reconcile (as on every open) re-indexes them
                    self._forget(agent)
                    raise IndexGoneError(
                        f"the memory index of {agent!r} is gone from the Chroma server; "
                        "MemoryStore.reconcile() rebuilds it from SQL"
                    ) from exc
                raise
            for q, (ids, dists) in enumerate(zip(res["ids"], res["distances"], strict=True)):
                out[q] = [Hit(int(i), 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]
        buf = self._pending.get(agent)
        if buf is not None:
            sims = vectors @ np.stack(buf.vectors).T
            for q in range(len(vectors)):
                fresh = {i: float(s) for i, s in zip(buf.ids, sims[q], strict=True)}
                merged = [h for h in out[q] if h.id not in fresh]
                merged += [Hit(i, s) for i, s in fresh.items()]
                merged.sort(key=lambda h: -h.similarity)
                out[q] = merged[:n]
        return out

    def query_many(self, requests: Sequence[tuple[str, np.ndarray, int]]) -> list[list[list[Hit]]]:
        """`query` for many agents at once. Chroma releases the GIL while it searches,
        so a few threads overlap the per-collection calls (100 agents: ~150 ms serial,
        ~80 ms with 4 threads on 2 cores)."""
        if len(requests) < 4:
            return [self.query(a, v, n) for a, v, n in requests]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="memory-index")
        return list(self._pool.map(lambda r: self.query(*r), requests))

    def ids(self) -> set[int]:
        """Every memory id this run's index holds."""
        out: set[int] = {i for buf in self._pending.values() for i in buf.ids}
        page = 10_000
        for col in self._run_collections():
            offset = 0
            while True:
                got = col.get(include=[], limit=page, offset=offset)["ids"]
                out.update(int(i) for i in got)
                if len(got) < page:
                    break
                offset += page
        return out

    def count(self) -> int:
        """Entries in Chroma plus those buffered (an id in both counts twice: only
        reconcile's full comparison is exact)."""
        return sum(col.count() for col in self._run_collections()) + self._n_pending

    def close(self) -> None:
        """Write what is buffered and release the client (chromadb caches one system per
        folder in the process; a deleted folder must not be served from that cache)."""
        self.flush()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self.remote:
            # an HTTP client has a system of its own: close just it (its connections),
            # not the process-wide cache that embedded clients still open rely on
            close = getattr(self.client, "close", None)
            if callable(close):
                close()
            return
        clear = getattr(self.client, "clear_system_cache", None)
        if callable(clear):
            clear()
