"""Which vector index a memory store uses, and the one that mixes exact search and Chroma.

Layouts (docs/memory.md compares them with figures):

- `per_agent`: one Chroma collection per owner. Each search is direct, but every owner
  costs a collection to create and keep open, which a world of thousands cannot afford.
- `shared`: one Chroma collection for every owner, searched with an owner filter.
- `exact`: each owner's vectors in an in-memory matrix (exact.py), rebuilt from SQL on
  open: no collection at all, and exact answers.
- `auto`: `exact`, except that an owner holding more than `big_at` vectors, where a
  graph search beats the product over them, is moved to a collection of its own in
  Chroma. Chroma is opened only once an owner is that big (or was, in an earlier
  session of the run).

Every layout is derived from SQL and rebuilt from it by `MemoryStore.reconcile`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np

from concordia_like.errors import ConfigError
from concordia_like.memory.exact import ExactIndex
from concordia_like.memory.index import ChromaIndex, Hit, make_client

Layout = Literal["per_agent", "shared", "exact", "auto"]
LAYOUTS: tuple[str, ...] = get_args(Layout)

#: residents from which a new run uses `auto` rather than `per_agent` (`run_layout`)
AUTO_FROM = 100

#: an owner with more vectors than this moves from exact search to Chroma (`auto`)
BIG_AT = 10_000

#: the Chroma side of `auto` is named apart from a `per_agent` index of the same run
AUTO_SUFFIX = ".big"


class VectorIndex(Protocol):
    """What a memory store asks of its index (ChromaIndex, ExactIndex, AutoIndex)."""

    @property
    def layout(self) -> str: ...
    def add(self, ids: Sequence[int], agents: Sequence[str], vectors: np.ndarray) -> None: ...
    def flush(self, agents: Sequence[str] | None = None) -> None: ...
    @property
    def pending(self) -> int: ...
    def discard(self, ids: Sequence[int]) -> None: ...
    def drop(self) -> None: ...
    def query(self, agent: str, vectors: np.ndarray, n: int) -> list[list[Hit]]: ...
    def query_many(
        self, requests: Sequence[tuple[str, np.ndarray, int]]
    ) -> list[list[list[Hit]]]: ...
    def ids(self) -> set[int]: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


class AutoIndex:
    """Exact search per owner, and a Chroma collection for each owner grown past
    `big_at` vectors (see the module's notes)."""

    layout = "auto"

    def __init__(
        self,
        path: str | Path | None,
        url: str | None = None,
        *,
        run_id: str = "default",
        big_at: int = BIG_AT,
    ) -> None:
        if path is None and url is None:
            raise ConfigError("the auto layout needs a folder (path) or a server (url)")
        self.path = None if path is None else Path(path)
        self.url = url
        self.run_id = run_id
        self.big_at = big_at
        self.exact = ExactIndex()
        self._chroma: ChromaIndex | None = None
        #: owners whose vectors are in Chroma
        self.big: set[str] = set()
        if url is not None or (self.path is not None and self.path.exists()):
            chroma = self.chroma
            self.big = {str(c.metadata["agent"]) for c in chroma._run_collections()}

    @property
    def chroma(self) -> ChromaIndex:
        if self._chroma is None:
            self._chroma = ChromaIndex(
                make_client(self.path, self.url),
                run_id=self.run_id + AUTO_SUFFIX,
                layout="per_agent",
            )
        return self._chroma

    # -- writing --------------------------------------------------------------------

    def add(self, ids: Sequence[int], agents: Sequence[str], vectors: np.ndarray) -> None:
        if len(ids) != len(agents) or len(ids) != len(vectors):
            raise ValueError("ids, agents and vectors differ in length")
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.big:
            to_chroma = [k for k, a in enumerate(agents) if a in self.big]
            if to_chroma:
                self.chroma.add(
                    [ids[k] for k in to_chroma], [agents[k] for k in to_chroma], vectors[to_chroma]
                )
                keep = [k for k, a in enumerate(agents) if a not in self.big]
                ids, agents, vectors = (
                    [ids[k] for k in keep],
                    [agents[k] for k in keep],
                    vectors[keep],
                )
        self.exact.add(ids, agents, vectors)
        for agent in {a for a in agents if self.exact.held(a) > self.big_at}:
            self._promote(agent)

    def _promote(self, agent: str) -> None:
        """Move an owner's vectors from exact search to its own Chroma collection."""
        ids, vecs = self.exact.take(agent)
        self.big.add(agent)
        self.chroma.add(ids.tolist(), [agent] * len(ids), vecs)

    def flush(self, agents: Sequence[str] | None = None) -> None:
        if self._chroma is not None:
            self._chroma.flush(agents)

    @property
    def pending(self) -> int:
        return 0 if self._chroma is None else self._chroma.pending

    def discard(self, ids: Sequence[int]) -> None:
        self.exact.discard(ids)
        if self._chroma is not None:
            self._chroma.discard(ids)

    def drop(self) -> None:
        self.exact.drop()
        if self._chroma is not None:
            self._chroma.drop()
        self.big.clear()

    # -- reading --------------------------------------------------------------------

    def query(self, agent: str, vectors: np.ndarray, n: int) -> list[list[Hit]]:
        if agent in self.big:
            return self.chroma.query(agent, vectors, n)
        return self.exact.query(agent, vectors, n)

    def query_many(self, requests: Sequence[tuple[str, np.ndarray, int]]) -> list[list[list[Hit]]]:
        big = [k for k, r in enumerate(requests) if r[0] in self.big]
        if not big:
            return self.exact.query_many(requests)
        out = [[] if r[0] in self.big else self.exact.query(*r) for r in requests]
        for k, found in zip(big, self.chroma.query_many([requests[k] for k in big]), strict=True):
            out[k] = found
        return out

    def ids(self) -> set[int]:
        out = self.exact.ids()
        if self._chroma is not None:
            out |= self._chroma.ids()
        return out

    def count(self) -> int:
        return self.exact.count() + (0 if self._chroma is None else self._chroma.count())

    def close(self) -> None:
        if self._chroma is not None:
            self._chroma.close()


def run_layout(residents: int) -> Layout:
    """The layout a new run records: a collection per resident for a small world,
    `auto` from `AUTO_FROM` residents, where creating a collection for each would
    dominate starting the run (on a Chroma server too: its big owners go there)."""
    return "per_agent" if residents < AUTO_FROM else "auto"


def open_index(
    layout: Layout,
    path: str | Path | None = None,
    url: str | None = None,
    *,
    run_id: str = "default",
) -> VectorIndex:
    """The index of a run in `layout`: Chroma's at `path` (a folder) or `url` (a
    server) where the layout uses Chroma."""
    if layout == "exact":
        return ExactIndex()
    if layout == "auto":
        return AutoIndex(path, url, run_id=run_id)
    if layout in ("per_agent", "shared"):
        return ChromaIndex.open(path, url, run_id=run_id, layout=layout)
    raise ConfigError(f"unknown index layout {layout!r}: one of {', '.join(LAYOUTS)}")
