"""The viewer's queries, without a browser: who was where after every step is what the
running town said, the timeline's filters and pages are the recorder's, a memory query
scores as the agent's retrieval and moves no last-recalled time, the layout is fixed
and honours `pos`, the export writes its data beside the page, the command refuses
what is no run with one line, and the app serves a run kept in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from concordia_like.api import open_run
from concordia_like.cli.main import app
from concordia_like.engine.events import Event, Utterance
from concordia_like.engine.recorder import RunRecorder
from concordia_like.memory.records import RetrievalQuery
from concordia_like.store.base import sqlite_url
from concordia_like.viewer.app import create_app
from concordia_like.viewer.export import export_site
from concordia_like.viewer.layout import layout
from concordia_like.viewer.residents import memories, resident
from concordia_like.viewer.runview import EventFilter, RunView
from concordia_like.viewer.sources import catalog_for
from concordia_like.world.loader import load_world

from support.postgres import pg_server, pg_url  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parent.parent
TOWN = REPO / "worlds" / "town.yaml"
WHISPER = "The miller owes the bakery twelve coins."
HOSTILE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'


async def _record(
    root: Path, steps: int, store: str | None = None
) -> tuple[str, list[dict[str, str]]]:
    async with open_run(TOWN, backend="scripted", seed=2, root=root, store=store) as run:
        where = [run.sim.state.to_dict()["agents"]]
        for i in range(steps):
            if i == 2:
                run.whisper("Ines Marlowe", WHISPER)
            await run.step()
            where.append(run.sim.state.to_dict()["agents"])
        return run.id, [{a: d["location"] for a, d in w.items()} for w in where]


def record_town(
    root: Path, steps: int = 8, store: str | None = None
) -> tuple[str, list[dict[str, str]]]:
    """A town run on the scripted model (in `store`, a store URL, or the run's SQLite
    file): its id, and where each resident was after each step (0: at the start) as the
    running town itself said."""
    return asyncio.run(_record(root, steps, store))


def record_hostile(root: Path, run_id: str = "hostile000001") -> str:
    """A run of one step, committed through the recorder, in which a resident says a
    line of HTML that would run script if it were parsed."""
    world = load_world(TOWN)
    recorder = RunRecorder(sqlite_url(root / run_id / "store.sqlite"))
    try:
        recorder.create_run(
            world_path=str(TOWN), world_name=world.name, engine="simultaneous",
            backend="scripted", seed=0, config={}, run_id=run_id,
        )  # fmt: skip
        recorder.commit_step(
            run_id, 1, datetime(2025, 4, 14, 7, 0),
            [Event("speech", f"Ines Marlowe says: {HOSTILE}", "Ines Marlowe", "bakery")],
            [Utterance("c1", "Ines Marlowe", ["Tobias Marlowe"], "bakery", HOSTILE)],
            world=world.state.to_dict(), agents={}, usage={},
        )  # fmt: skip
    finally:
        recorder.close()
    return run_id


@pytest.fixture
def town(runs_root):
    run_id, where = record_town(runs_root)
    view = RunView.open(run_id, root=runs_root)
    yield view, where
    view.close()


def test_where_residents_were_after_each_step_is_what_the_running_town_said(town):
    view, where = town
    pos = view.positions()
    assert len(pos["where"]) == len(where)
    for step, truth in enumerate(where):
        shown = dict(zip(pos["residents"], pos["where"][step], strict=True))
        assert shown == truth, f"step {step}"
    assert any(where[0][a] != where[-1][a] for a in where[0])  # someone moved


def test_the_timeline_filters_and_pages_as_the_recorder_reads(town):
    view, _ = town
    everything = list(view.recorder.events(view.run_id))
    page = view.events(EventFilter(), offset=3, limit=5)
    assert page["total"] == len(everything)
    assert [(r["step"], r["seq"]) for r in page["rows"]] == [
        (e.step, e.seq) for e in everything[3:8]
    ]
    actor = everything[-1].actor
    mine = view.events(EventFilter(actor=actor, kinds=["action"]), limit=500)
    assert mine["rows"] and all(r["actor"] == actor and r["kind"] == "action" for r in mine["rows"])
    word = everything[-1].text.split()[-1].upper()
    found = view.events(EventFilter(text=word), limit=500)["rows"]
    assert found and all(word.lower() in r["text"].lower() for r in found)
    assert view.events(EventFilter(text="%"), limit=5)["total"] == sum(
        "%" in e.text for e in everything
    )


def test_a_memory_query_scores_as_retrieval_does_and_moves_no_recall_time(town):
    view, _ = town
    store = view.memory()
    before = {m.id: m.last_retrieved for m in store.recent("Ines Marlowe", 1000)}
    shown = memories(view, "Ines Marlowe", "who owes the bakery money")
    after = {m.id: m.last_retrieved for m in store.recent("Ines Marlowe", 1000)}
    assert after == before
    assert shown["total"] == len(before) and len(shown["rows"]) == len(before)
    now = view.checkpoint().sim_time
    best = store.retrieve_many(
        [RetrievalQuery("Ines Marlowe", "who owes the bakery money", now, k=len(before))],
        touch=False,
    )[0]
    assert [r["id"] for r in shown["rows"]] == [s.record.id for s in best]
    assert [r["score"] for r in shown["rows"]] == [round(s.score, 4) for s in best]
    assert WHISPER in {r["text"] for r in memories(view, "Ines Marlowe")["rows"]}


def test_a_residents_page_has_its_card_plan_and_words(town):
    view, _ = town
    page = resident(view, "Ines Marlowe")
    assert page["card"]["occupation"].startswith("baker")
    assert page["plan"]["blocks"] and page["plan"]["current"] is not None
    assert page["location"] == view.checkpoint().world["agents"]["Ines Marlowe"]["location"]


def test_the_layout_is_fixed_and_keeps_given_positions():
    ids = ["a", "b", "c", "d"]
    edges = [("a", "b"), ("b", "c"), ("c", "d")]
    assert layout(ids, edges) == layout(list(reversed(ids)), edges)
    fixed = layout(ids, edges, {"a": (0, 0), "b": (10, 0), "c": (10, 10), "d": (0, 10)})
    assert fixed["a"][0] == fixed["d"][0] and fixed["a"][1] == fixed["b"][1]
    assert fixed["c"][0] > fixed["a"][0] and fixed["c"][1] > fixed["a"][1]


def test_the_export_writes_the_page_and_its_data(runs_root, tmp_path):
    rid = record_hostile(runs_root)
    catalog = catalog_for(rid, root=runs_root)
    try:
        page = export_site(catalog, tmp_path / "site")
    finally:
        catalog.close()
    html = page.read_text()
    assert '<script src="data/run-0.js"></script>' in html and "<!--data-->" not in html
    data = (tmp_path / "site" / "data" / "run-0.js").read_text()
    assert "<img" not in data and "\\u003cimg" in data  # no markup in the script's text
    body = json.loads(data.splitlines()[1].split(" = ", 1)[1].rstrip(";"))
    assert body["events"][0]["text"] == f"Ines Marlowe says: {HOSTILE}"
    assert (tmp_path / "site" / "static" / "app.js").is_file()


def test_the_command_refuses_what_is_no_run_with_one_line(tmp_path):
    res = CliRunner().invoke(app, ["view", "nosuchrun", "--root", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: 'nosuchrun' is no experiment folder")


@pytest.mark.stores
def test_the_app_serves_a_run_kept_in_postgresql(runs_root, pg_url):  # noqa: F811 - the fixture
    run_id, where = record_town(runs_root, steps=4, store=pg_url)
    assert not list(runs_root.rglob("*.sqlite"))  # everything is in the server
    catalog = catalog_for(run_id, root=runs_root, store=pg_url)
    try:
        client = TestClient(create_app(catalog))
        pos = client.get(f"/api/run/{run_id}/positions").json()
        for step, truth in enumerate(where):
            assert dict(zip(pos["residents"], pos["where"][step], strict=True)) == truth
        held = catalog.view(run_id).memory().recent("Ines Marlowe", 100)
        shown = client.get(f"/api/run/{run_id}/memories/Ines Marlowe").json()
        assert [r["id"] for r in shown["rows"]] == [m.id for m in held] and held
        assert WHISPER in {r["text"] for r in shown["rows"]}
        page = client.get(f"/api/run/{run_id}/events", params={"limit": 5}).json()
        assert page["total"] == sum(1 for _ in catalog.view(run_id).recorder.events(run_id))
    finally:
        catalog.close()
