"""The memory store on real embeddings, real SQLite and a real Chroma index in tmp_path:
adding, scored retrieval, batching, restarts, and rebuilding a lost index."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from concordia_like.memory.records import NewMemory, RetrievalQuery
from concordia_like.store.memory_tables import MemoryRow, MemoryVectorRow

T0 = datetime(2024, 2, 13, 8, 0)

KLAUS = [
    ("Klaus is reading a book on gentrification at the library", 3),
    ("Isabella invites Klaus to her Valentine's Day party at Hobbs Cafe", 8),
    ("Klaus eats a sandwich for lunch", 2),
    ("Maria tells Klaus she has a crush on him", 9),
    ("Klaus writes two pages of his research paper", 5),
    ("The library closes early today", 4),
]
MARIA = [
    ("Maria is studying physics for her exam", 4),
    ("Maria hears that Isabella is throwing a party", 6),
]


def add_people(store, start=T0):
    mems = [
        NewMemory("Klaus", text, "observation", start + timedelta(hours=i), imp)
        for i, (text, imp) in enumerate(KLAUS)
    ] + [
        NewMemory("Maria", text, "observation", start + timedelta(hours=i), imp)
        for i, (text, imp) in enumerate(MARIA)
    ]
    return store.add_many(mems)


def assert_same_results(got, expected):
    """The same memories in the same order with the same scores, to float32 precision
    (Chroma may compute a cosine in another order of operations than numpy)."""
    assert [[s.record.id for s in res] for res in got] == [
        [s.record.id for s in res] for res in expected
    ]
    for res_got, res_expected in zip(got, expected, strict=True):
        for a, b in zip(res_got, res_expected, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)


def test_add_and_retrieve_scores_relevance_recency_importance(memory_store):
    records = add_people(memory_store)
    assert [r.id for r in records] == list(range(1, 9))
    assert records[1].last_retrieved == records[1].created == T0 + timedelta(hours=1)
    now = T0 + timedelta(hours=8)
    got = memory_store.retrieve("Klaus", "Is there a party for Valentine's Day?", now, k=3)
    assert len(got) == 3
    assert got[0].record.text.startswith("Isabella invites Klaus")
    assert got[0].relevance == 1.0  # the most relevant candidate after min-max
    assert all(s.record.agent == "Klaus" for s in got)  # Maria's party memory stays hers
    assert got == sorted(got, key=lambda s: -s.score)


def test_retrieval_updates_last_retrieved_of_the_returned_only(memory_store):
    add_people(memory_store)
    now = T0 + timedelta(days=1)
    got = memory_store.retrieve("Klaus", "research paper", now, k=2)
    touched = {s.record.id for s in got}
    for rec in memory_store.get(range(1, 7)):
        assert rec.last_retrieved == (now if rec.id in touched else rec.created)
    # retrieving at an earlier time never moves a last-retrieved time back
    memory_store.retrieve("Klaus", "research paper", now - timedelta(hours=5), k=2)
    assert {r.last_retrieved for r in memory_store.get(touched)} == {now}


def test_retrieval_for_many_agents_is_batched(memory_store, monkeypatch):
    add_people(memory_store)
    now = T0 + timedelta(hours=10)
    queries = [
        RetrievalQuery("Klaus", "What does Klaus think of Maria?", now, 2),
        RetrievalQuery("Maria", "What does Maria know about parties?", now, 2),
        RetrievalQuery("Klaus", "Where is the party?", now, 2),
        RetrievalQuery("Maria", "Where is the party?", now, 2),
        RetrievalQuery("Nobody", "Where is the party?", now, 2),
    ]
    embed_calls, index_calls = [], []
    real_embed, real_query = memory_store.embedder.embed, memory_store.index.query
    monkeypatch.setattr(
        memory_store.embedder,
        "embed",
        lambda texts: embed_calls.append(list(texts)) or real_embed(texts),
    )
    monkeypatch.setattr(
        memory_store.index,
        "query",
        lambda a, v, n: index_calls.append((a, len(v))) or real_query(a, v, n),
    )
    batched = memory_store.retrieve_many(queries, touch=False)
    # one embedding call, each distinct text once ("Where is the party?" is asked thrice)
    assert embed_calls == [sorted(set(embed_calls[0]), key=embed_calls[0].index)]
    assert len(embed_calls[0]) == 3
    assert sorted(index_calls) == [("Klaus", 2), ("Maria", 2), ("Nobody", 1)]
    assert batched[4] == []
    assert all(
        s.record.agent == q.agent for q, res in zip(queries, batched, strict=True) for s in res
    )
    one_by_one = [memory_store.retrieve_many([q], touch=False)[0] for q in queries]
    assert_same_results(batched, one_by_one)


def test_distinct_texts_are_embedded_once(memory_store):
    before = memory_store.embedder.encoded
    text = "A loud bell rings in the town square at 9:03 on a Tuesday"
    memory_store.add_many(
        [NewMemory(f"agent{i}", text, "observation", T0, 3) for i in range(20)]
        + [NewMemory("agent0", text + " again", "observation", T0, 3)]
    )
    assert memory_store.embedder.encoded - before == 2


def vector_rows(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(MemoryVectorRow.__table__)
        ).scalar_one()


def test_a_text_that_many_remember_has_its_vector_stored_once(open_memory_store, tmp_path):
    store = open_memory_store()
    text = "A loud bell rings in the town square at 9:03 on a Tuesday"
    store.add_many([NewMemory(f"agent{i}", text, "observation", T0, 3) for i in range(20)])
    store.add_many([NewMemory("agent0", "A quiet afternoon", "observation", T0, 2)])
    store.add_many([NewMemory("agent20", text, "observation", T0, 3)])  # a later step
    assert vector_rows(store) == 2
    with store.engine.connect() as conn:
        own = conn.execute(select(MemoryRow.embedding).where(MemoryRow.agent == "agent7"))
        assert own.scalar_one() is None  # the row refers to its text's vector
    got = store.retrieve("agent20", "a bell in the square", T0, k=1)
    assert got[0].record.text == text and got[0].raw_relevance > 0.5
    before = store.retrieve_many([RetrievalQuery("agent3", "bell", T0, 2)], touch=False)
    store.close()
    shutil.rmtree(tmp_path / "run" / "chroma")  # rebuilt from the shared vectors
    encoded = store.embedder.encoded
    reopened = open_memory_store()
    assert reopened.index.count() == 22 and reopened.embedder.encoded == encoded
    after = reopened.retrieve_many([RetrievalQuery("agent3", "bell", T0, 2)], touch=False)
    assert_same_results(after, before)


def old_layout(store, *, vectors_shared: bool) -> None:
    """Turn the store's rows into what an older version wrote: each row its own text
    (before texts were shared) and, unless `vectors_shared`, its own vector."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE memories SET text = (SELECT v.text FROM memory_vectors v"
                " WHERE v.run_id = memories.run_id AND v.key = memories.text_key)"
            )
        )
        if vectors_shared:
            conn.execute(text("UPDATE memory_vectors SET text = NULL"))
            return
        conn.execute(
            text(
                "UPDATE memories SET embedding = (SELECT v.embedding FROM memory_vectors v"
                " WHERE v.run_id = memories.run_id AND v.key = memories.text_key)"
            )
        )
        conn.execute(text("DELETE FROM memory_vectors"))
        conn.execute(text("ALTER TABLE memories DROP COLUMN text_key"))
        conn.execute(text("ALTER TABLE memory_vectors DROP COLUMN text"))


def test_a_store_written_before_vectors_were_shared_opens_and_reads_as_before(
    open_memory_store, tmp_path
):
    store = open_memory_store()
    add_people(store)
    queries = [RetrievalQuery("Klaus", "Valentine's party", T0 + timedelta(hours=8), 3)]
    before = store.retrieve_many(queries, touch=False)
    old_layout(store, vectors_shared=False)
    store.close()
    shutil.rmtree(tmp_path / "run" / "chroma")
    encoded = store.embedder.encoded
    reopened = open_memory_store()  # the columns are added; old rows keep their vectors
    assert reopened.index.count() == 8 and reopened.embedder.encoded == encoded
    after = reopened.retrieve_many(queries, touch=False)
    assert_same_results(after, before)
    assert [s.record.text for s in after[0]] == [s.record.text for s in before[0]]
    reopened.add_many([NewMemory("Klaus", KLAUS[0][0], "observation", T0, 3)])
    assert vector_rows(reopened) == 1
    assert [r.text for r in reopened.recent("Klaus", 2)] == [KLAUS[0][0], KLAUS[-1][0]]


def stored_texts(store) -> list[str]:
    """Every text column of the store's memory tables, as stored."""
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(MemoryRow.text)).scalars())
        return rows + list(conn.execute(select(MemoryVectorRow.text)).scalars())


def test_a_text_that_many_remember_is_stored_once_and_read_by_each(memory_store):
    text = "A loud bell rings in the town square at 9:03 on a Tuesday"
    memory_store.add_many([NewMemory(f"agent{i}", text, "observation", T0, 3) for i in range(20)])
    memory_store.add_many([NewMemory("agent21", text, "observation", T0, 3)])  # a later step
    assert stored_texts(memory_store).count(text) == 1
    for agent in ("agent0", "agent19", "agent21"):
        [mine] = memory_store.recent(agent, 5)
        assert mine.text == text
        assert memory_store.important(agent, 1)[0].text == text
        assert memory_store.get([mine.id])[0].text == text
    [found] = memory_store.retrieve("agent7", "a bell in the square", T0, k=1)
    assert found.record.text == text


def test_a_store_written_before_texts_were_shared_gets_its_text_with_a_new_memory_of_it(
    open_memory_store,
):
    store = open_memory_store()
    add_people(store)
    old_layout(store, vectors_shared=True)  # rows hold their texts, vectors none
    store.close()
    reopened = open_memory_store()
    reopened.add_many([NewMemory("Maria", KLAUS[1][0], "observation", T0, 8)])
    assert [r.text for r in reopened.recent("Klaus", 6)][::-1] == [t for t, _ in KLAUS]
    [heard] = reopened.recent("Maria", 1)
    assert heard.text == KLAUS[1][0]  # the key's stored text, filled in for the new row
    assert stored_texts(reopened).count(KLAUS[1][0]) == 2  # the old row's own, the key's


def test_a_vector_written_in_an_undone_transaction_is_written_again(memory_store):
    mem = NewMemory("Klaus", "Klaus finds a lost cat", "observation", T0, 5)
    with Session(memory_store.engine) as session, session.begin():
        memory_store.add_many([mem], session=session)
        session.rollback()
    assert vector_rows(memory_store) == 0
    with Session(memory_store.engine) as session, session.begin():
        memory_store.add_many([mem], session=session)
    assert vector_rows(memory_store) == 1
    got = memory_store.retrieve("Klaus", "Klaus finds a lost cat", T0, k=1)
    assert got[0].raw_relevance > 0.999


def test_recent_and_important_memories_compete_beyond_the_nearest(open_memory_store, monkeypatch):
    store = open_memory_store(n_recent=1, n_important=1)
    add_people(store)
    real_query = store.index.query
    # the index proposes only its single nearest memory
    monkeypatch.setattr(store.index, "query", lambda a, v, n: [h[:1] for h in real_query(a, v, n)])
    now = T0 + timedelta(hours=6)
    got = store.retrieve("Klaus", "a book on gentrification", now, k=3)
    by_word = {s.record.text.split()[1]: s for s in got}
    assert set(by_word) == {"is", "tells", "library"}
    assert by_word["is"].relevance == 1.0  # Klaus is reading...: the nearest
    assert by_word["tells"].importance == 1.0  # Maria tells Klaus...: the most important
    assert by_word["library"].recency == 1.0  # The library closes...: the most recent


def test_buffered_index_entries_are_found_before_and_after_flush(memory_store):
    add_people(memory_store)
    assert memory_store.index.pending == 8  # below flush_at: nothing written to Chroma yet
    now = T0 + timedelta(hours=8)
    before = memory_store.retrieve_many([RetrievalQuery("Klaus", "party", now, 3)], touch=False)
    memory_store.index.flush()
    assert memory_store.index.pending == 0
    after = memory_store.retrieve_many([RetrievalQuery("Klaus", "party", now, 3)], touch=False)
    assert_same_results(before, after)


def test_an_agents_buffer_is_written_once_it_holds_flush_at_entries(memory_store):
    memory_store.index.flush_at = 5
    memory_store.add_many(
        [NewMemory("Maria", f"Maria sees bird {i}", "observation", T0, 2) for i in range(4)]
    )
    memory_store.add(NewMemory("Klaus", "Klaus sees a bird", "observation", T0, 2))
    assert memory_store.index.pending == 5
    memory_store.add(NewMemory("Maria", "Maria sees bird 4", "observation", T0, 2))
    assert memory_store.index.pending == 1  # Maria's five went to Chroma, Klaus's one waits
    chroma = memory_store.index._collection("Maria", create=False)
    assert chroma.count() == 5


def test_index_is_rebuilt_after_its_folder_is_deleted(open_memory_store, tmp_path):
    store = open_memory_store()
    add_people(store)
    facts = [f"Klaus notes fact number {i} about the town" for i in range(80)]
    store.add_many(
        [NewMemory("Klaus", t, "observation", T0, 1 + i % 10) for i, t in enumerate(facts)]
    )
    now = T0 + timedelta(hours=9)
    queries = [
        RetrievalQuery("Klaus", q, now, 5)
        for q in ("Valentine's party", "library hours", "town facts", "lunch")
    ] + [RetrievalQuery("Maria", "exam", now, 2)]
    before = store.retrieve_many(queries, touch=False)
    store.close()
    shutil.rmtree(tmp_path / "run" / "chroma")
    reopened = open_memory_store()
    assert reopened.index.count() == 88 and reopened.count() == 88
    after = reopened.retrieve_many(queries, touch=False)
    assert_same_results(after, before)
    assert reopened.reconcile() == 0  # in sync now


def test_a_crash_between_sql_and_index_loses_nothing(open_memory_store, monkeypatch, caplog):
    store = open_memory_store()

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(store.index, "add", crash)
    add_people(store)  # SQL committed; the index write failed
    assert "reconcile will repair" in caplog.text
    monkeypatch.undo()
    store.close()
    reopened = open_memory_store()
    assert reopened.index.count() == 8
    got = reopened.retrieve("Klaus", "Valentine's party", T0 + timedelta(hours=8), k=1)
    assert got[0].record.id == 2


def test_index_entries_without_rows_are_dropped(memory_store):
    add_people(memory_store)
    with memory_store.engine.begin() as conn:
        conn.execute(MemoryRow.__table__.delete().where(MemoryRow.id == 2))
    assert memory_store.reconcile(full=True) == 0
    assert 2 not in memory_store.index.ids()
    got = memory_store.retrieve("Klaus", "Valentine's party", T0 + timedelta(hours=8), k=6)
    assert 2 not in {s.record.id for s in got}


def test_rows_written_in_the_step_transaction_reach_the_index_on_commit(memory_store):
    mem = NewMemory("Klaus", "Klaus finds a lost cat", "observation", T0, 5)
    with Session(memory_store.engine) as session, session.begin():
        rec = memory_store.add_many([mem], session=session)[0]
        assert rec.id not in memory_store.index.ids()  # not before the commit
    assert rec.id in memory_store.index.ids()
    with Session(memory_store.engine) as session:
        with session.begin():
            memory_store.add_many(
                [NewMemory("Klaus", "never happened", "action", T0, 2)], session=session
            )
            session.rollback()
        # the same session commits later: only what that transaction wrote is indexed
        with session.begin():
            later = memory_store.add_many(
                [NewMemory("Klaus", "Klaus feeds the cat", "action", T0, 3)], session=session
            )[0]
    # the undone row's id may be given again (SQLite rolls back its sequence too), so
    # the index must hold the later row's vector under it, never the undone one's
    assert memory_store.index.ids() == {rec.id, later.id}
    vec = memory_store.embedder.embed(["Klaus feeds the cat"])
    [[best, *_]] = memory_store.index.query("Klaus", vec, 2)
    assert best.id == later.id and best.similarity > 0.999
    with memory_store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(MemoryRow.__table__)).scalar_one() == 2


def test_runs_in_one_store_keep_their_memories_apart(open_memory_store):
    a = open_memory_store(run_id="run-a")
    b = open_memory_store(run_id="run-b")
    a.add(NewMemory("Klaus", "Klaus bakes bread in run a", "action", T0, 3))
    b.add(NewMemory("Klaus", "Klaus paints a fence in run b", "action", T0, 3))
    got_a = a.retrieve("Klaus", "what did Klaus do", T0, k=5)
    assert [s.record.text for s in got_a] == ["Klaus bakes bread in run a"]
    assert a.count() == b.count() == 1


@pytest.mark.slow
def test_memories_survive_a_process_restart(open_memory_store, tmp_path):
    folder = tmp_path / "restart"
    script = textwrap.dedent(
        f"""
        from datetime import datetime
        from concordia_like.memory import MemoryStore, NewMemory
        store = MemoryStore.open({str(folder)!r})
        store.add_many([
            NewMemory("Isabella", "Isabella plans a Valentine's Day party at Hobbs Cafe",
                      "plan", datetime(2024, 2, 13, 8), 7),
            NewMemory("Isabella", "Isabella buys flowers", "action", datetime(2024, 2, 13, 9), 3),
        ])
        # exits without close(): the index buffer is lost, SQL is not
        """
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[1], timeout=120
    )
    store = open_memory_store(folder)
    assert store.count("Isabella") == 2
    got = store.retrieve("Isabella", "party at the cafe", datetime(2024, 2, 13, 12), k=1)
    assert got[0].record.text.startswith("Isabella plans a Valentine's Day party")
    assert got[0].record.kind == "plan"


def test_new_memories_are_validated(memory_store):
    with pytest.raises(ValueError):
        NewMemory("Klaus", "   ")
    with pytest.raises(ValueError):
        NewMemory("Klaus", "x", importance=11)
    with pytest.raises(ValueError):
        memory_store.add(NewMemory("Klaus", "no time given"))
    rec = memory_store.add(NewMemory("Klaus", "Klaus waits"), now=T0)
    assert rec.importance == 1  # no score given: the heuristic's, and waiting is trivial
