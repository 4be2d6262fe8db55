"""One conversation generated end to end on the real embedded model (SmolLM2-135M on
llama.cpp), with the hashing embedder: the words are the model's own, checked by the
engine's speech guard, recorded by the run, and exported with the model named."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from concordia_like.agents.degenerate import utterance_problem
from concordia_like.cli.main import app

from support.engine import TOWN, checkpoint, query


@pytest.mark.embedded
def test_embedded_model_talks_through_the_simulation(tmp_path, fast_embedder):
    out = tmp_path / "d.jsonl"
    res = CliRunner().invoke(
        app,
        ["dialogues", "--world", str(TOWN), "--conversations", "1", "--turns", "2",
         "--max-attempts", "1", "--seed", "1", "--format", "records", "--out", str(out),
         "--backend", "embedded"],
        catch_exceptions=False,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    journal = tmp_path / "d.work" / "conversations.jsonl"
    (record,) = [json.loads(x) for x in journal.read_text().splitlines()]
    p = record["provenance"]
    assert p["backend"] == "embedded" and p["model"].startswith("SmolLM2-135M-Instruct")
    assert record["turns"], record.get("dropped_turns")
    db = tmp_path / "d.work" / "runs" / p["run_id"] / "store.sqlite"
    said = query(db, "SELECT speaker, text FROM utterances ORDER BY step")
    assert said == [(t["speaker"], t["text"]) for t in record["turns"]]
    for t in record["turns"]:
        assert t["speaker"] in p["planned_members"]
        assert utterance_problem(t["text"]) is None, t["text"]
    usage = checkpoint(db).usage
    assert usage["by_purpose"]["speech"]["calls"] >= len(record["turns"])
    stats = json.loads((tmp_path / "d.stats.json").read_text())
    assert stats["conversations"] == 1
    assert stats["kept"] == len(out.read_text().splitlines())
