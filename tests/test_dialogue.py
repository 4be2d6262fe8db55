"""Synthetic dialogue data (concordia_like/dialogue, `concordia-like dialogues`) on the
scripted model: conversations generated through the simulation, each format's
structure, loading with `datasets`, rendering through the SmolLM2 GGUF's own chat
template, `--from-run`, Parquet and its card, bad input, and resuming after SIGKILL.
Filters and deduplication on crafted data are in test_dialogue_filters.py."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app
from concordia_like.dialogue.plan import plan_conversation
from concordia_like.world.loader import load_world

from support.engine import MEMORIES, REPO, TOWN, query

N, TURNS = 4, 4
runner = CliRunner()


def dialogues(*args: str):
    return runner.invoke(app, ["dialogues", *args], catch_exceptions=False)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One scripted generation (records), exported again in every format from its
    finished work folder."""
    import concordia_like.memory.embedder as embedder_module
    from concordia_like.memory.hash_embedder import HashEmbedder

    folder = tmp_path_factory.mktemp("dialogues")
    work = folder / "job.work"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(embedder_module, "_default", HashEmbedder())
        common = ["--world", str(TOWN), "--conversations", str(N), "--turns", str(TURNS)]
        common += ["--backend", "scripted", "--work", str(work), "--parallel", "4"]
        started = time.perf_counter()
        out = dialogues(*common, "--out", str(folder / "records.jsonl"), "--format", "records")
        assert out.exit_code == 0, out.output
        generation_s = time.perf_counter() - started
        files = {"records": folder / "records.jsonl"}
        for fmt, extra in [
            ("openai", ["--train-on", "last"]),
            ("sharegpt", []),
            ("trl", []),
            ("trl_pc", ["--trl-style", "prompt_completion"]),
        ]:
            path = folder / f"{fmt}.jsonl"
            form = "trl" if fmt == "trl_pc" else fmt
            more = ["--parquet", str(folder / "pq")] if fmt == "openai" else []
            out = dialogues(*common, "--out", str(path), "--format", form, *extra, *more)
            assert out.exit_code == 0, out.output
            files[fmt] = path
    return {"folder": folder, "work": work, "files": files, "generation_s": generation_s}


# -- generation through the simulation ------------------------------------------------


def test_plans_are_a_function_of_seed_and_index():
    world = load_world(TOWN)
    a = [plan_conversation(world, 7, i, 6) for i in range(12)]
    assert a == [plan_conversation(world, 7, i, 6) for i in range(12)]
    assert a != [plan_conversation(world, 8, i, 6) for i in range(12)]
    for spec in a:
        assert 2 <= len(spec.members) <= 4 and len(set(spec.members)) == len(spec.members)
        assert all(world.personas[m].home != spec.place for m in spec.members)
        place = world.state.places[spec.place]
        at = world.state.clock.now.replace(hour=int(spec.start[:2]), minute=int(spec.start[3:]))
        assert place.hours.is_open(at), (spec.place, spec.start)


def test_conversations_are_grounded_in_their_runs(generated):
    records = lines(generated["files"]["records"])
    assert len(records) == N
    assert len({r["id"] for r in records}) == N
    assert sorted(r["provenance"]["index"] for r in records) == list(range(N))
    runs = generated["work"] / "runs"
    for r in records:
        p = r["provenance"]
        assert len(r["turns"]) == TURNS
        # turns alternate between speakers, and each is addressed to someone present
        for a, b in zip(r["turns"], r["turns"][1:], strict=False):
            assert a["speaker"] != b["speaker"]
        assert all(t["to"] and set(t["to"]) <= set(r["speakers"]) for t in r["turns"])
        assert r["turns"][0]["speaker"] == p["planned_members"][0]
        # every turn is an utterance the run recorded and a speech event the Game
        # Master grounded, at the planned place
        db = runs / p["run_id"] / "store.sqlite"
        said = query(db, "SELECT speaker, text, place FROM utterances ORDER BY step")
        assert [(t["speaker"], t["text"]) for t in r["turns"]] == [(s, x) for s, x, _ in said]
        assert {pl for _, _, pl in said} == {p["place"]}
        speech = query(db, "SELECT actor, text FROM events WHERE kind = 'speech' ORDER BY step")
        assert [a for a, _ in speech] == [t["speaker"] for t in r["turns"]]
        assert all(t["text"] in text for t, (_, text) in zip(r["turns"], speech, strict=True))
        # listeners remember what was said to them
        heard = query(db, f"SELECT agent, text FROM {MEMORIES} WHERE kind = 'observation'")
        first = r["turns"][0]
        assert any(a == first["to"][0] and first["text"] in text for a, text in heard)
        for key in (
            "world",
            "world_sha256",
            "run_id",
            "conversation_id",
            "personas",
            "seed",
            "backend",
            "model",
            "sampling",
            "place",
            "sim_time",
        ):
            assert p[key] not in (None, "", []), key
        assert "scenario" in p
        assert p["backend"] == "scripted" and p["model"] == "scripted-v1"
        assert len(p["world_sha256"]) == 64
        assert p["sampling"]["speech"]["temperature"] > 0


def test_conversations_of_a_job_share_model_batches(tmp_path, runs_root):
    """Run together, the conversations' speech calls meet in the same batches."""
    import asyncio

    from concordia_like.dialogue.filters import FilterConfig
    from concordia_like.dialogue.job import run_job
    from concordia_like.dialogue.scripted import add_speech_rule
    from concordia_like.llm import open_model
    from concordia_like.llm.scripted import ScriptedBackend

    world = load_world(TOWN)
    backend = ScriptedBackend()
    add_speech_rule(backend)
    sizes: list[int] = []
    speech_batches: list[int] = []
    inner = backend.generate_batch

    async def spy(requests):
        sizes.append(len(requests))
        speech_batches.append(sum(r.purpose == "speech" for r in requests))
        return await inner(requests)

    backend.generate_batch = spy  # type: ignore[method-assign]
    shared = open_model(backend)
    result = asyncio.run(
        run_job(
            world,
            shared,
            tmp_path / "work",
            conversations=4,
            turns=3,
            seed=3,
            parallel=4,
            filters=FilterConfig(),
            max_attempts=4,
            job={"backend": "scripted", "model": backend.model},
        )
    )
    assert len(result.records) == 4
    assert max(speech_batches) == 4, speech_batches  # one speech call per conversation


# -- formats --------------------------------------------------------------------------


def _check_chat(msgs: list[dict], target: str, turns: list[dict]) -> None:
    assert msgs[0]["role"] == "system" and target in msgs[0]["content"]
    assert all(m["role"] in ("user", "assistant") for m in msgs[1:])
    assert msgs[-1]["role"] == "assistant"
    mine = [t["text"] for t in turns if t["speaker"] == target]
    assert [m["content"] for m in msgs if m["role"] == "assistant"] == mine
    assert all(not (a["role"] == b["role"] == "assistant") for a, b in itertools.pairwise(msgs))


def test_openai_format_one_sample_per_speaker(generated):
    records = {r["id"]: r for r in lines(generated["files"]["records"])}
    rows = lines(generated["files"]["openai"])
    assert len(rows) == sum(len({t["speaker"] for t in r["turns"]}) for r in records.values())
    for row in rows:
        p = row["provenance"]
        rec = records[p["conversation_id"]]
        target = p["target"]
        msgs = row["messages"]
        _check_chat(msgs, target, rec["turns"])
        assert rec["situation"] in msgs[0]["content"]
        for m in msgs[1:]:
            if m["role"] == "user":
                assert m["name"].replace("_", " ") in rec["speakers"]
                assert m["name"].replace("_", " ") != target
        weights = [m["weight"] for m in msgs if m["role"] == "assistant"]
        assert weights == [0] * (len(weights) - 1) + [1]  # --train-on last


def test_sharegpt_and_trl_formats(generated):
    records = {r["id"]: r for r in lines(generated["files"]["records"])}
    for row in lines(generated["files"]["sharegpt"]):
        conv = row["conversations"]
        rec = records[row["provenance"]["conversation_id"]]
        assert conv[0]["from"] == "system"
        assert {c["from"] for c in conv[1:]} <= {"human", "gpt"} and conv[-1]["from"] == "gpt"
        mine = [t["text"] for t in rec["turns"] if t["speaker"] == row["provenance"]["target"]]
        assert [c["value"] for c in conv if c["from"] == "gpt"] == mine
    for row in lines(generated["files"]["trl"]):
        rec = records[row["provenance"]["conversation_id"]]
        assert set(row) == {"messages", "provenance"}
        _check_chat(row["messages"], row["provenance"]["target"], rec["turns"])
    for row in lines(generated["files"]["trl_pc"]):
        rec = records[row["provenance"]["conversation_id"]]
        target = row["provenance"]["target"]
        assert set(row) == {"prompt", "completion", "provenance"}
        assert row["prompt"][0]["role"] == "system"
        assert [m["role"] for m in row["completion"]] == ["assistant"]
        assert (
            row["completion"][0]["content"]
            == [t["text"] for t in rec["turns"] if t["speaker"] == target][-1]
        )


def test_every_file_loads_with_datasets(generated, tmp_path):
    datasets = pytest.importorskip("datasets")
    for fmt, path in generated["files"].items():
        ds = datasets.load_dataset(
            "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf")
        )
        assert len(ds) == len(lines(path)), fmt
        assert "provenance" in ds.column_names


def _smollm2_template() -> str:
    import llama_cpp

    from concordia_like.llm.model_files import default_model_path

    model = llama_cpp.Llama(str(default_model_path()), vocab_only=True, verbose=False)
    template = model.metadata["tokenizer.chat_template"]
    model.close()
    return template


def test_openai_and_trl_samples_render_through_smollm2_chat_template(generated):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    template = ImmutableSandboxedEnvironment().from_string(_smollm2_template())
    for fmt in ("openai", "trl", "trl_pc"):
        for row in lines(generated["files"][fmt]):
            msgs = row["messages"] if "messages" in row else row["prompt"] + row["completion"]
            text = template.render(messages=msgs, add_generation_prompt=False)
            # every message, in order, in its own role's block; no default system prompt
            assert "You are a helpful AI assistant named SmolLM" not in text
            pos = 0
            for m in msgs:
                block = f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>"
                found = text.find(block, pos)
                assert found >= pos, (fmt, m["role"])
                pos = found + len(block)
            assert text.count("<|im_start|>") == len(msgs)


def test_parquet_folder_and_dataset_card(generated):
    import pyarrow.parquet as pq

    folder = generated["folder"] / "pq"
    shards = sorted((folder / "data").glob("train-*.parquet"))
    assert [s.name for s in shards] == ["train-00000-of-00001.parquet"]
    table = pq.read_table(shards[0])
    rows = lines(generated["files"]["openai"])
    assert table.num_rows == len(rows)
    assert table.to_pylist()[0]["provenance"]["run_id"] == rows[0]["provenance"]["run_id"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nconfigs:")
    assert "Larkspur Ford" in card and "scripted:scripted-v1" in card
    assert f"conversations kept: {N}" in card
    for name in {p for r in rows for p in r["provenance"]["personas"]}:
        assert name in card
    assert '"dedup_threshold": 0.7' in card


def test_parquet_folder_holding_a_users_files_is_refused_before_anything_is_written(generated):
    folder = generated["folder"]
    mine = folder / "mine"
    mine.mkdir()
    (mine / "notes.md").write_text("keep me")
    common = ["--world", str(TOWN), "--conversations", str(N), "--turns", str(TURNS)]
    common += ["--backend", "scripted", "--work", str(generated["work"])]
    out = folder / "again.jsonl"
    res = dialogues(*common, "--out", str(out), "--format", "openai", "--parquet", str(mine))
    assert res.exit_code != 0
    assert "mine: holds notes.md, which this command does not write" in res.output
    assert os.listdir(mine) == ["notes.md"] and not out.exists()
    # the folder it wrote before is replaced
    res = dialogues(
        *common, "--out", str(out), "--format", "openai", "--parquet", str(folder / "pq")
    )
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(folder / "pq")) == ["README.md", "data"]


def test_statistics_written_next_to_output(generated):
    stats = json.loads((generated["folder"] / "records.stats.json").read_text())
    assert stats["kept"] == N and stats["conversations"] == N
    assert set(stats["dropped_by_reason"]) >= {"near-duplicate", "secret leak", "loop"}
    assert stats["turns"] == {"median": TURNS, "p95": TURNS}
    assert stats["turn_words"]["median"] > 5
    assert 0 < stats["distinct_2"] <= 1
    assert stats["persona_coverage"]["of"] == 11
    assert 2 <= stats["persona_coverage"]["covered"] <= 11
    assert sum(stats["speaker_balance"]["turns_by_speaker"].values()) == N * TURNS


# -- earlier runs -----------------------------------------------------------------------


def test_from_run_exports_a_runs_conversations(generated, tmp_path, fast_embedder):
    records = lines(generated["files"]["records"])
    run_ids = [r["provenance"]["run_id"] for r in records[:2]]
    out = tmp_path / "again.jsonl"
    args = ["--out", str(out), "--format", "records", "--root", str(generated["work"] / "runs")]
    for run_id in run_ids:
        args += ["--from-run", run_id]
    res = dialogues(*args)
    assert res.exit_code == 0, res.output
    again = lines(out)
    assert [r["provenance"]["run_id"] for r in again] == run_ids
    for a, r in zip(again, records[:2], strict=True):
        assert a["turns"] == r["turns"] and a["situation"] == r["situation"]
        assert a["provenance"]["generator"] == "from-run"


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--world", "nowhere.yaml", "--conversations", "2"], "world file nowhere.yaml"),
        (["--world", str(TOWN), "--conversations", "2", "--format", "csv"], "--format"),
        (["--world", str(TOWN), "--conversations", "0"], "--conversations"),
        (["--world", str(TOWN)], "--conversations N is needed"),
        (["--from-run", "000000000000"], "no run '000000000000'"),
        (["--world", str(TOWN), "--from-run", "x"], "either --world"),
    ],
)
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "o" / "data.jsonl"
    res = runner.invoke(
        app,
        ["dialogues", *args, "--out", str(out), "--root", str(tmp_path)],
        catch_exceptions=False,
    )
    assert res.exit_code != 0
    errors = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], res.output
    assert not out.exists() and not (tmp_path / "o").exists()


def test_work_folder_of_another_job_is_refused(generated, tmp_path):
    out = tmp_path / "x.jsonl"
    res = dialogues(
        "--world", str(TOWN), "--conversations", str(N), "--turns", "5", "--backend", "scripted",
        "--work", str(generated["work"]), "--out", str(out),
    )  # fmt: skip
    assert res.exit_code == 1
    assert "job.json" in res.output and "turns 4, not 5" in res.output
    assert not out.exists()


def test_a_folder_no_job_made_is_refused_as_work_folder_and_kept(tmp_path):
    # an experiment's folder: its runs/ holds runs no dialogue job journaled, which a job
    # would clear as unfinished ones of its own
    folder = tmp_path / "experiment"
    (folder / "runs" / "seed-1").mkdir(parents=True)
    (folder / "runs" / "seed-1" / "results.csv").write_text("seed,score\n1,3\n")
    (folder / "summary.csv").write_text("score\n3\n")
    (tmp_path / "runs-only" / "runs" / "seed-1").mkdir(parents=True)
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    out = tmp_path / "d.jsonl"
    res = dialogues(
        "--world", str(TOWN), "--conversations", "2", "--backend", "scripted",
        "--work", str(folder), "--out", str(out),
    )  # fmt: skip
    assert res.exit_code == 1
    errors = [x for x in res.output.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "runs, summary.csv" in errors[0], res.output
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    assert not (folder / "job.json").exists() and not out.exists()
    res = dialogues(
        "--world", str(TOWN), "--conversations", "2", "--backend", "scripted",
        "--work", str(tmp_path / "runs-only"), "--out", str(out),
    )  # fmt: skip
    assert res.exit_code == 1 and "holds runs," in res.output, res.output
    assert (tmp_path / "runs-only" / "runs" / "seed-1").is_dir()


# -- resuming -------------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from support.fast_embedder import main; main()", *args]


@pytest.mark.slow
def test_killed_generation_ends_with_exactly_n_unique_conversations(tmp_path):
    n = 6
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}

    def args(out: Path) -> list[str]:
        return [
            "dialogues", "--world", str(TOWN), "--conversations", str(n), "--turns", "3",
            "--backend", "scripted", "--parallel", "2", "--format", "records", "--out", str(out),
        ]  # fmt: skip

    out = tmp_path / "killed" / "d.jsonl"
    journal = tmp_path / "killed" / "d.work" / "conversations.jsonl"
    rng = random.Random(13)
    done_at = []
    for _ in range(3):
        proc = subprocess.Popen(_cli(*args(out)), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while proc.poll() is None and not journal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done_at.append(len(journal.read_text().splitlines()) if journal.exists() else 0)
        assert not out.exists()  # the output is written only whole, at the end
    assert any(0 < d < n for d in done_at), done_at  # killed mid-job, not before or after
    subprocess.run(_cli(*args(out)), cwd=REPO, env=env, check=True, capture_output=True,
                   timeout=120)  # fmt: skip
    got = lines(out)
    assert len(got) == n
    assert len({r["id"] for r in got}) == n
    assert sorted(r["provenance"]["index"] for r in got) == list(range(n))
    # nothing was left behind twice: one run folder per conversation
    assert len(list((tmp_path / "killed" / "d.work" / "runs").iterdir())) == n
    # and the conversations are those of a job never killed
    straight = tmp_path / "straight" / "d.jsonl"
    subprocess.run(_cli(*args(straight)), cwd=REPO, env=env, check=True, capture_output=True,
                   timeout=120)  # fmt: skip

    def said(rows):
        return [[(t["speaker"], t["text"]) for t in r["turns"]] for r in rows]

    assert said(got) == said(lines(straight))


def test_a_conversation_nobody_spoke_in_is_journaled_and_dropped(tmp_path, runs_root):
    """Speech the guard refuses twice is lost; a conversation with no words at all is
    kept in the journal (so it is not tried again) and dropped as never got going."""
    import asyncio

    from concordia_like.dialogue.filters import FilterConfig
    from concordia_like.dialogue.job import run_job
    from concordia_like.llm import open_model
    from concordia_like.llm.scripted import ScriptedBackend

    backend = ScriptedBackend()
    backend.add_rule(r".", "says", purpose="speech")
    result = asyncio.run(
        run_job(
            load_world(TOWN), open_model(backend), tmp_path / "work", conversations=1,
            turns=2, seed=0, parallel=1, filters=FilterConfig(), max_attempts=2,
            job={"backend": "scripted", "model": backend.model},
        )
    )  # fmt: skip
    assert [len(r["turns"]) for r in result.records] == [0, 0]
    assert all(r["dropped_turns"] for r in result.records)
    assert result.selection.kept == []
    assert result.selection.counts()["never got going"] == 2
    assert all(r["provenance"]["backend"] == "scripted" for r in result.records)


def test_journal_drops_a_torn_last_line_and_duplicates(tmp_path):
    from concordia_like.dialogue.generate import Journal

    path = tmp_path / "conversations.jsonl"
    journal = Journal(path)
    journal.append({"id": "a", "provenance": {"index": 0}})
    journal.append({"id": "a-again", "provenance": {"index": 0}})
    journal.append({"id": "b", "provenance": {"index": 1}})
    with open(path, "a") as f:
        f.write('{"id": "c", "provenance": {"ind')  # a kill in the middle of a line
    assert [r["id"] for r in journal.read()] == ["a", "b"]
    journal.append({"id": "c", "provenance": {"index": 2}})  # goes on a clean line
    assert [r["id"] for r in journal.read()] == ["a", "b", "c"]
