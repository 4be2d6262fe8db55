"""Exact search over each owner's own vectors, held in memory: the index for residents
who hold few memories each.

Every retrieval asks for one owner's memories, so an owner's vectors are kept together
in one float32 matrix (grown by doubling) and a query is one matrix product over them,
exact, with no graph to build, no collection to create and no call into another
library. The matrices are derived data: nothing is written to disk, and opening a store
fills them from the vectors kept in SQL (`reconcile`), so they agree with SQL by
construction. Where one owner holds so many vectors that a graph search beats the
product, `layouts.AutoIndex` moves that owner to Chroma."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from concordia_like.memory.embedder import DIM
from concordia_like.memory.index import Hit

#: rows an owner's matrix starts with (it doubles when full)
START_ROWS = 16


class _Owner:
    """One owner's vectors: the first `n` rows of `vecs`, with their memory ids."""

    __slots__ = ("ids", "n", "top", "vecs")

    def __init__(self, dim: int, rows: int) -> None:
        self.ids = np.empty(rows, dtype=np.int64)
        self.vecs = np.empty((rows, dim), dtype=np.float32)
        self.n = 0
        self.top = 0  # the largest id held: new memories have larger ids than any

    def reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self.ids):
            return
        rows = max(START_ROWS, len(self.ids))
        while rows < need:
            rows *= 2
        ids = np.empty(rows, dtype=np.int64)
        vecs = np.empty((rows, self.vecs.shape[1]), dtype=np.float32)
        ids[: self.n] = self.ids[: self.n]
        vecs[: self.n] = self.vecs[: self.n]
        self.ids, self.vecs = ids, vecs

    def put(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add entries; an id held already has its vector replaced (a repeat after a
        crash is harmless)."""
        if self.n and int(ids.min()) <= self.top:
            held = {int(i): k for k, i in enumerate(self.ids[: self.n])}
            fresh = []
            for j, mid in enumerate(ids):
                k = held.get(int(mid))
                if k is None:
                    fresh.append(j)
                else:
                    self.vecs[k] = vecs[j]
            ids, vecs = ids[fresh], vecs[fresh]
        if len(ids) == 0:
            return
        self.reserve(len(ids))
        self.ids[self.n : self.n + len(ids)] = ids
        self.vecs[self.n : self.n + len(ids)] = vecs
        self.n += len(ids)
        self.top = max(self.top, int(ids.max()))

    def remove(self, gone: set[int]) -> int:
        keep = np.array([int(i) not in gone for i in self.ids[: self.n]], dtype=bool)
        removed = self.n - int(keep.sum())
        if removed:
            kept = int(keep.sum())
            self.ids[:kept] = self.ids[: self.n][keep]
            self.vecs[:kept] = self.vecs[: self.n][keep]
            self.n = kept
        return removed


class ExactIndex:
    """The vector index as one in-memory matrix per owner (see the module's notes);
    the same methods as `ChromaIndex`, with nothing buffered and nothing on disk."""

    layout = "exact"
    remote = False

    def __init__(self, dim: int = DIM) -> None:
        self.dim = dim
        self._owners: dict[str, _Owner] = {}
        self._count = 0

    # -- writing --------------------------------------------------------------------

    def add(self, ids: Sequence[int], agents: Sequence[str], vectors: np.ndarray) -> None:
        if len(ids) != len(agents) or len(ids) != len(vectors):
            raise ValueError("ids, agents and vectors differ in length")
        if not len(ids):
            return
        id_arr = np.asarray(ids, dtype=np.int64)
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(id_arr), self.dim)
        rows: dict[str, list[int]] = {}
        for k, agent in enumerate(agents):
            rows.setdefault(agent, []).append(k)
        for agent, ks in rows.items():
            owner = self._owners.get(agent)
            if owner is None:
                owner = self._owners[agent] = _Owner(self.dim, max(START_ROWS, len(ks)))
            before = owner.n
            sel = np.asarray(ks)
            owner.put(id_arr[sel], vecs[sel])
            self._count += owner.n - before

    def flush(self, agents: Sequence[str] | None = None) -> None:
        """Nothing is buffered: here for the index interface."""

    @property
    def pending(self) -> int:
        return 0

    def discard(self, ids: Sequence[int]) -> None:
        gone = {int(i) for i in ids}
        for agent, owner in list(self._owners.items()):
            self._count -= owner.remove(gone)
            if owner.n == 0:
                del self._owners[agent]

    def take(self, agent: str) -> tuple[np.ndarray, np.ndarray]:
        """Remove an owner's entries and return them (ids, vectors)."""
        owner = self._owners.pop(agent, None)
        if owner is None:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        self._count -= owner.n
        return owner.ids[: owner.n].copy(), owner.vecs[: owner.n].copy()

    def drop(self) -> None:
        self._owners.clear()
        self._count = 0

    # -- reading --------------------------------------------------------------------

    def held(self, agent: str) -> int:
        """How many entries `agent` has here."""
        owner = self._owners.get(agent)
        return 0 if owner is None else owner.n

    def query(self, agent: str, vectors: np.ndarray, n: int) -> list[list[Hit]]:
        """For each query vector, up to `n` of `agent`'s memories nearest to it, best
        first (exact cosine similarity: the vectors are unit vectors)."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        owner = self._owners.get(agent)
        if owner is None or n <= 0 or owner.n == 0:
            return [[] for _ in range(len(vectors))]
        sims = vectors @ owner.vecs[: owner.n].T
        ids = owner.ids[: owner.n]
        out: list[list[Hit]] = []
        for row in sims:
            if n < len(row):
                top = np.argpartition(-row, n - 1)[:n]
                top = top[np.argsort(-row[top], kind="stable")]
            else:
                top = np.argsort(-row, kind="stable")
            out.append(
                [Hit(i, s) for i, s in zip(ids[top].tolist(), row[top].tolist(), strict=True)]
            )
        return out

    def query_many(self, requests: Sequence[tuple[str, np.ndarray, int]]) -> list[list[list[Hit]]]:
        return [self.query(a, v, n) for a, v, n in requests]

    def ids(self) -> set[int]:
        return {int(i) for owner in self._owners.values() for i in owner.ids[: owner.n]}

    def count(self) -> int:
        return self._count

    def nbytes(self) -> int:
        """Bytes the matrices hold (capacity included)."""
        return sum(o.ids.nbytes + o.vecs.nbytes for o in self._owners.values())

    def close(self) -> None:
        """Nothing to write: the index is rebuilt from SQL when the store is opened."""
