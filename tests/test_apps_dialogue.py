"""Message threads as dialogue data: the messages between two residents of a run are one
conversation record (its turns in order, addressees named, `channel: messages`), and
it exports in every format the exporters have, one sample per writer, in a datasets
folder and through `dialogues --from-run`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from concordia_like.agents.actions import Message
from concordia_like.cli.main import app
from concordia_like.dialogue.exporters import FORMATS, samples, write_parquet
from concordia_like.dialogue.records import conversations_of_run
from concordia_like.engine.hooks import StepHook, StepInput
from concordia_like.engine.recorder import RunRecorder
from concordia_like.engine.runs import start_run
from concordia_like.llm.scripted import ScriptedBackend
from concordia_like.store.base import sqlite_url
from concordia_like.world.loader import load_world

from support.engine import REPO, force, lm_factory

DIGITAL = REPO / "worlds" / "town_digital.yaml"
#: step -> (sender, addressee, words) typed for the sender in that step
SCRIPT = {
    1: [("Margo Vell", "Tobias Marlowe", "The mayor bought a new carriage with the fund.")],
    2: [
        ("Tobias Marlowe", "Margo Vell", "Who told you that about the mayor?"),
        ("Hana Sato", "Priya Anand", "Could you look at my cough after school?"),
    ],
    3: [("Margo Vell", "Tobias Marlowe", "The coachbuilder's wife told me this morning.")],
}


class Typed(StepHook):
    """Residents' actions typed in advance, step by step (as a player's would be)."""

    name = "typed"

    async def before_acting(self, sim, step):
        acts = {s: Message(kind="message", to=t, text=w) for s, t, w in SCRIPT.get(step, [])}
        return StepInput(actions=acts) if acts else None


async def _record(root: Path) -> str:
    backend = ScriptedBackend()  # residents asked carry on: only the typed lines are written
    force(backend, "act", lambda req: {"kind": "continue"})
    sim = start_run(DIGITAL, lm_factory(backend), root=root, seed=1)
    sim.hooks.append(Typed())
    async with sim:
        for _ in range(4):
            await sim.run_step()
    return sim.run_id


@pytest.fixture(scope="module")
def threads(tmp_path_factory):
    """A town run with two threads of messages, and its records."""
    import concordia_like.memory.embedder as embedder_module
    from concordia_like.memory.hash_embedder import install

    saved = embedder_module._default
    install()
    try:
        root = tmp_path_factory.mktemp("runs")
        run_id = asyncio.run(_record(root))
    finally:
        embedder_module._default = saved
    recorder = RunRecorder(sqlite_url(root / run_id / "store.sqlite"))
    try:
        records = conversations_of_run(recorder, run_id, load_world(DIGITAL))
    finally:
        recorder.close()
    by_channel = [r for r in records if r["provenance"]["channel"] == "messages"]
    return {"root": root, "run_id": run_id, "records": by_channel, "all": records}


def _written(sender: str, addressee: str) -> list[str]:
    pair = {sender, addressee}
    return [w for lines in SCRIPT.values() for s, t, w in lines if {s, t} == pair]


def test_each_pair_of_writers_is_one_conversation_in_order(threads):
    records = threads["records"]
    assert [r["speakers"] for r in records] == [
        ["Margo Vell", "Tobias Marlowe"],
        ["Hana Sato", "Priya Anand"],
    ]
    margo = records[0]
    assert [t["text"] for t in margo["turns"]] == _written("Margo Vell", "Tobias Marlowe")
    assert [(t["speaker"], t["to"]) for t in margo["turns"]] == [
        ("Margo Vell", ["Tobias Marlowe"]),
        ("Tobias Marlowe", ["Margo Vell"]),
        ("Margo Vell", ["Tobias Marlowe"]),
    ]
    assert [t["step"] for t in margo["turns"]] == [1, 2, 3]
    p = margo["provenance"]
    assert p["channel"] == "messages" and p["place"] is None and p["run_id"] == threads["run_id"]
    assert "text messages" in margo["situation"]
    assert set(margo["personas"]) == {"Margo Vell", "Tobias Marlowe"}
    # the spoken conversations of the run say so too
    assert all(r["provenance"]["channel"] == "speech" for r in threads["all"] if r not in records)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_thread_exports_in_every_format(threads, fmt):
    margo = threads["records"][0]
    rows = samples(margo, fmt)
    if fmt == "records":
        assert rows == [margo]
        return
    assert len(rows) == 2  # one sample per writer
    for row in rows:
        target = row["provenance"]["target"]
        assert row["provenance"]["channel"] == "messages"
        if fmt == "sharegpt":
            turns = [(m["from"], m["value"]) for m in row["conversations"][1:]]
            mine = [v for who, v in turns if who == "gpt"]
        else:
            turns = [(m["role"], m["content"]) for m in row["messages"][1:]]
            mine = [v for who, v in turns if who == "assistant"]
        assert mine == [t["text"] for t in margo["turns"] if t["speaker"] == target]
        assert turns[-1][1] == mine[-1]  # a sample ends at the target's last words


def test_trl_prompt_completion_ends_with_the_writers_last_message(threads):
    margo = threads["records"][0]
    row = next(
        r
        for r in samples(margo, "trl", trl_style="prompt_completion")
        if r["provenance"]["target"] == "Margo Vell"
    )
    assert row["completion"] == [{"role": "assistant", "content": margo["turns"][-1]["text"]}]


def test_threads_make_a_parquet_dataset_folder(threads, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [s for r in threads["records"] for s in samples(r, "openai")]
    stats = {
        "kept": 2,
        "conversations": 2,
        "dropped_by_reason": {},
        "filters": {},
        "turns": {"median": 2, "p95": 3},
        "turn_words": {"median": 7, "p95": 9},
        "persona_coverage": {"covered": 4, "of": 11},
        "distinct_2": 1.0,
    }
    shards = write_parquet(
        tmp_path / "ds", rows, fmt="openai", stats=stats, records=threads["records"]
    )
    table = pq.read_table(shards[0])
    assert table.num_rows == len(rows) == 3  # Priya Anand never wrote back
    assert {r["provenance"]["channel"] for r in table.to_pylist()} == {"messages"}


def test_from_run_exports_the_threads(threads, tmp_path, fast_embedder):
    out = tmp_path / "threads.jsonl"
    args = ["dialogues", "--from-run", threads["run_id"], "--root", str(threads["root"])]
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "records"])
    assert res.exit_code == 0, res.output
    got = [json.loads(line) for line in out.read_text().splitlines()]
    mine = [r for r in got if r["provenance"]["channel"] == "messages"]
    # a thread of one message never got going, as a conversation of one turn
    kept = [r for r in threads["records"] if len(r["turns"]) >= 2]
    assert [r["turns"] for r in mine] == [r["turns"] for r in kept] and kept
