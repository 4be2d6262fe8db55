"""The Python API (concordia_like.api), and the example of docs/python.md run as written."""

import re
from pathlib import Path

import pytest

from concordia_like.api import load_world, open_run, resume
from concordia_like.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
TOWN = REPO / "worlds" / "town.yaml"


async def test_a_run_steps_injects_whispers_and_reads_as_dataframes(runs_root):
    async with open_run(TOWN, backend="scripted", seed=3, root=runs_root) as run:
        reports = await run.step(2)
        assert [r.step for r in reports] == [1, 2]
        run.inject("A bell rings out over the square.", place="Market Square")
        run.whisper("Tobias Marlowe", "The miller owes the bakery twelve coins.")
        await run.step()
        events = run.events()
        announced = events[events.kind == "announcement"]
        assert "A bell rings out over the square." in announced.text.tolist()
        assert set(announced[announced.text.str.contains("bell")].step) == {3}
        mine = run.memories("Tobias Marlowe")
        assert "The miller owes the bakery twelve coins." in mine.text.tolist()
        assert set(mine.agent) == {"Tobias Marlowe"}
        assert list(mine.id) == sorted(mine.id)
        assert set(run.where()) == set(run.residents)
        run_id, where = run.id, run.where()
        assert run.steps_done == 3
    async with resume(run_id, root=runs_root) as again:
        assert again.steps_done == 3
        assert again.where() == where
        assert len(again.events()) == len(events)


async def test_a_place_or_resident_the_world_lacks_is_refused_by_name(runs_root):
    async with open_run(TOWN, backend="scripted", root=runs_root) as run:
        with pytest.raises(ConfigError, match="no place 'Atlantis'"):
            run.inject("waves", place="Atlantis")
        with pytest.raises(ConfigError, match="no resident 'Nobody'"):
            run.whisper("Nobody", "psst")


async def test_a_resume_on_another_backend_is_refused_unless_allowed(runs_root):
    async with open_run(TOWN, backend="scripted", root=runs_root) as run:
        await run.step()
        run_id = run.id
    assert load_world(TOWN).name == "Larkspur Ford"
    with pytest.raises(ConfigError, match="another run"):
        async with resume(run_id, backend="embedded", root=runs_root):
            pass


def test_the_docs_example_runs_as_written(tmp_path, monkeypatch, fast_embedder, capsys):
    text = (REPO / "docs" / "python.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    (tmp_path / "worlds").symlink_to(REPO / "worlds")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/python.md", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    assert "Larkspur Ford" in out
    assert "A cart of flour overturns in the square." in out
    assert (tmp_path / "experiments" / "bread" / "summary.csv").exists()
    assert "dear_bread" in out
