"""Memory for thousands of residents: the exact and auto index layouts (exact search
over each owner's vectors in memory, Chroma for an owner grown big), rebuilt from SQL
on every open; each distinct text embedded once; a run's seed memories written and
indexed in bulk. Embeddings are the hashing stand-in; SQLite and Chroma are real."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.orm import Session

from concordia_like.memory.exact import ExactIndex
from concordia_like.memory.hash_embedder import HashEmbedder
from concordia_like.memory.index import ChromaIndex
from concordia_like.memory.layouts import AUTO_FROM, AutoIndex, run_layout
from concordia_like.memory.records import NewMemory, RetrievalQuery
from concordia_like.memory.stream import MemoryStore
from concordia_like.store.memory_tables import MemoryRow

T0 = datetime(2024, 2, 13, 8, 0)
THINGS = ["bread", "bridge", "letter", "meeting", "rain", "clinic", "pub", "cat", "fair"]
PLACES = ["at the bakery", "by the river", "at the school", "in the square", "at home"]


class CountingEmbedder(HashEmbedder):
    """The hashing embedder, recording each call's texts."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return super().embed(texts)


def memories(agent: str, n: int, start: int = 0) -> list[NewMemory]:
    return [
        NewMemory(
            agent,
            f"{agent} saw the {THINGS[i % len(THINGS)]} {PLACES[i % len(PLACES)]} ({i})",
            "observation",
            T0 + timedelta(minutes=i),
            1 + i % 10,
        )
        for i in range(start, start + n)
    ]


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def open_store(tmp_path):
    embedder = CountingEmbedder()
    opened: list[MemoryStore] = []

    def open_(layout: str = "auto", folder: str = "run") -> MemoryStore:
        store = MemoryStore.open(tmp_path / folder, run_id="r", layout=layout, embedder=embedder)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def test_exact_search_finds_the_same_top_hits_as_chroma(tmp_path):
    rng = np.random.default_rng(7)
    vecs = unit(rng, 300)
    owners = [f"a{i % 3}" for i in range(300)]
    exact = ExactIndex()
    chroma = ChromaIndex.open(tmp_path / "chroma", run_id="r", layout="per_agent")
    try:
        for index in (exact, chroma):
            index.add(list(range(1, 301)), owners, vecs)
        chroma.flush()
        assert chroma.pending == 0  # Chroma answers from its graph, not from its buffer
        queries = unit(rng, 5)
        for agent in ("a0", "a1", "a2"):
            got = exact.query(agent, queries, 10)
            want = chroma.query(agent, queries, 10)
            assert [[h.id for h in hits] for hits in got] == [[h.id for h in w] for w in want]
            for hits, w in zip(got, want, strict=True):
                assert [h.similarity for h in hits] == pytest.approx(
                    [h.similarity for h in w], abs=1e-5
                )
                assert all(owners[h.id - 1] == agent for h in hits)
    finally:
        chroma.close()


def test_an_id_added_again_has_its_vector_replaced_not_doubled():
    rng = np.random.default_rng(1)
    index = ExactIndex()
    first, second = unit(rng, 2)
    index.add([5, 6], ["a", "a"], np.stack([first, first]))
    index.add([5], ["a"], second[None])
    assert index.count() == 2 and index.ids() == {5, 6}
    [[best, _]] = index.query("a", second[None], 2)
    assert best.id == 5 and best.similarity == pytest.approx(1.0, abs=1e-6)


def test_the_auto_layout_retrieves_as_per_agent_collections_do(open_store):
    per_agent, auto = open_store("per_agent", "a"), open_store("auto", "b")
    for store in (per_agent, auto):
        for agent in ("Ines", "Tobias", "Priya"):
            store.add_many(memories(agent, 40))
    now = T0 + timedelta(hours=2)
    queries = [
        RetrievalQuery(agent, f"the {thing} {place}", now, 5)
        for agent in ("Ines", "Tobias", "Priya")
        for thing, place in zip(THINGS[:3], PLACES[:3], strict=True)
    ]
    want = per_agent.retrieve_many(queries, touch=False)
    got = auto.retrieve_many(queries, touch=False)
    assert [[s.record.id for s in r] for r in got] == [[s.record.id for s in r] for r in want]


def test_reopening_rebuilds_the_exact_index_from_sql(open_store, tmp_path):
    store = open_store()
    store.add_many(memories("Ines", 30) + memories("Tobias", 20))
    now = T0 + timedelta(hours=1)
    queries = [RetrievalQuery("Ines", "the bread at the bakery", now, 4)]
    before = store.retrieve_many(queries, touch=False)
    store.close()
    assert not (tmp_path / "run" / "chroma").exists()  # nothing of the index is on disk
    reopened = open_store()
    assert reopened.index.count() == 50 and reopened.index.ids() == set(range(1, 51))
    after = reopened.retrieve_many(queries, touch=False)
    assert [s.record.id for s in after[0]] == [s.record.id for s in before[0]]
    assert reopened.reconcile(full=True) == 0  # in sync, id by id


def test_a_crash_before_indexing_loses_nothing_and_deleted_rows_leave(open_store, monkeypatch):
    store = open_store()

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store.index, "add", crash)
    store.add_many(memories("Ines", 10))  # SQL committed; the index write failed
    monkeypatch.undo()
    assert store.index.count() == 0
    assert store.reconcile() == 10 and store.index.ids() == set(range(1, 11))
    with store.engine.begin() as conn:
        conn.execute(MemoryRow.__table__.delete().where(MemoryRow.id == 3))
    assert store.reconcile(full=True) == 0
    assert 3 not in store.index.ids() and store.index.count() == 9


def test_each_distinct_text_is_embedded_once_per_call(open_store):
    store = open_store()
    event = "The church bell rings twelve times"
    crowd = [NewMemory(f"resident {i}", event, "observation", T0, 3) for i in range(200)]
    crowd += [NewMemory(f"resident {i}", "A cart passes", "observation", T0, 2) for i in range(50)]
    store.embedder.calls.clear()
    store.add_many(crowd)
    assert store.embedder.calls == [[event, "A cart passes"]]
    store.embedder.calls.clear()
    now = T0 + timedelta(minutes=5)
    asked = [RetrievalQuery(f"resident {i}", "bell", now, 1, ("bell", event)) for i in range(200)]
    found = store.retrieve_many(asked, touch=False)
    assert store.embedder.calls == [["bell", event]]
    assert all(r[0].record.text == event for r in found)


def test_a_runs_seed_memories_are_indexed_in_bulk(open_store, tmp_path, monkeypatch):
    import concordia_like.memory.stream as stream

    monkeypatch.setattr(stream, "INSERT_SLICE", 1000)  # six INSERTs in one transaction
    store = open_store()
    seeds = [m for r in range(500) for m in memories(f"resident {r}", 12)]
    with Session(store.engine) as session, session.begin():
        records = store.add_many(seeds, now=T0, session=session)
        assert store.index.count() == 0  # not before the commit
    assert store.index.count() == len(seeds) == store.count()
    assert store.index.ids() == {r.id for r in records}
    stored = store.get([r.id for r in records])  # each id is its own memory's, in order
    assert [(m.agent, m.text) for m in stored] == [(m.agent, m.text) for m in seeds]
    assert not (tmp_path / "run" / "chroma").exists()  # no collection for anyone
    [[hit, *_]] = store.index.query("resident 499", store.embedder.embed([seeds[-1].text]), 3)
    assert hit.id == records[-1].id


def test_an_owner_grown_big_moves_to_chroma_and_stays_there(tmp_path, open_store):
    store = open_store()
    store.index.big_at = 25
    store.add_many(memories("Ines", 20) + memories("Tobias", 5))
    assert store.index.big == set() and not (tmp_path / "run" / "chroma").exists()
    store.add_many(memories("Ines", 10, start=20))
    assert store.index.big == {"Ines"} and store.index.exact.held("Ines") == 0
    assert store.index.count() == 35 and store.index.ids() == set(range(1, 36))
    now = T0 + timedelta(hours=1)
    queries = [RetrievalQuery("Ines", "the cat at the school", now, 3)]
    before = store.retrieve_many(queries, touch=False)
    assert before[0][0].record.agent == "Ines"
    store.close()
    reopened = open_store()
    assert isinstance(reopened.index, AutoIndex)
    assert reopened.index.big == {"Ines"}  # known from its collection
    assert reopened.index.exact.held("Tobias") == 5 and reopened.index.count() == 35
    after = reopened.retrieve_many(queries, touch=False)
    assert [s.record.id for s in after[0]] == [s.record.id for s in before[0]]


def test_a_run_chooses_auto_from_a_hundred_residents():
    assert run_layout(11) == "per_agent"
    assert run_layout(AUTO_FROM - 1) == "per_agent"
    assert run_layout(AUTO_FROM) == run_layout(10_000) == "auto"


def test_a_big_world_runs_on_the_recorded_auto_layout_and_resumes_on_it(tmp_path, fast_embedder):
    from concordia_like.engine.runs import resume_run, start_run
    from concordia_like.world import load_world, replicate_residents

    from support.engine import TOWN, close, lm_factory

    world = replicate_residents(load_world(TOWN), AUTO_FROM)
    seeds = sum(len(card.seed_memories) for card in world.personas.values())
    sim = start_run(world, lm_factory(), root=tmp_path)
    run_id = sim.run_id
    try:
        assert sim.recorder.run(run_id).config["memory_layout"] == "auto"
        assert isinstance(sim.memory.index, AutoIndex)
        assert sim.memory.index.count() == seeds == sim.memory.count()
    finally:
        asyncio.run(close(sim))
    assert (tmp_path / run_id / "store.sqlite").exists()
    assert not (tmp_path / run_id / "chroma").exists()  # no collection per resident
    resumed = resume_run(run_id, lm_factory(), world_path=world, root=tmp_path)
    try:
        assert isinstance(resumed.memory.index, AutoIndex)
        assert resumed.memory.index.ids() == {r.id for r in resumed.memory.get(range(1, seeds + 1))}
    finally:
        asyncio.run(close(resumed))


def test_a_reader_that_leaves_the_index_alone_still_finds_memories(tmp_path, open_store):
    writer = open_store()
    writer.add_many(memories("Ines", 12))
    reader = MemoryStore.open(
        tmp_path / "run", run_id="r", layout="auto", embedder=writer.embedder, reconcile=False
    )
    try:
        assert reader.index.count() == 12
        now = T0 + timedelta(hours=1)
        queries = [RetrievalQuery("Ines", "the rain", now, 3)]
        hits = reader.index.query("Ines", writer.embedder.embed(["the rain"]), 1)
        assert hits[0][0].id == 5  # Ines saw the rain (4): the nearest, found by the reader
        found = reader.retrieve_many(queries, touch=False)
        expected = writer.retrieve_many(queries, touch=False)
        assert [s.record.id for s in found[0]] == [s.record.id for s in expected[0]]
    finally:
        reader.close()


def test_a_copy_in_slices_moves_evidence_and_marks_onto_the_new_ids(
    open_store, tmp_path, monkeypatch
):
    import concordia_like.memory.rows as rows

    monkeypatch.setattr(rows, "COPY_SLICE", 5)  # the insight cites a memory of its slice
    source = open_store("auto", "source")
    first = source.add_many(memories("Ines", 6) + memories("Tobias", 3))
    insight = NewMemory(
        "Ines", "Ines sees a pattern", "reflection", T0, 7, (first[1].id, first[5].id)
    )
    [reflection] = source.add_many([insight])
    later = source.add_many(memories("Ines", 2, start=6))
    source.mark_reflected({"Ines": reflection.id, "Tobias": first[7].id}, T0)
    target = open_store("auto", "target")  # another store, as a fork writes into
    target_run = MemoryStore.open(
        tmp_path / "target", run_id="copy", layout="auto", embedder=source.embedder
    )
    try:
        with Session(target.engine) as session, session.begin():  # the target's transaction
            assert source.copy_into(session, "copy") == 12
        calls = len(source.embedder.calls)
        target_run.reconcile()
        assert len(source.embedder.calls) == calls  # the vectors came with the copies
        copied = target_run.recent("Ines", 20)
        by_text = {m.text: m for m in copied}
        moved = by_text["Ines sees a pattern"]
        assert moved.evidence == (by_text[first[1].text].id, by_text[first[5].text].id)
        assert target_run.count() == 12 and target_run.index.count() == 12
        marks = target_run.reflection_marks(["Ines", "Tobias"])
        assert marks["Ines"] == moved.id
        tobias = {m.text: m.id for m in target_run.recent("Tobias", 5)}
        assert marks["Tobias"] == tobias[first[7].text]
        assert {m.text for m in later} <= set(by_text)
    finally:
        target_run.close()
