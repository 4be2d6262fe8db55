"""The one atomic writer: a target is replaced whole or left as it was, a link planted at
the target is replaced rather than followed, and streams are written to, not replaced."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from concordia_like.errors import ConfigError
from concordia_like.files import (
    atomic_folder,
    atomic_path,
    atomic_writer,
    check_replaceable,
    write_atomic,
)


def test_write_atomic_writes_text_and_bytes_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "new" / "out.txt"
    write_atomic(target, "één\n")
    assert target.read_text(encoding="utf-8") == "één\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(target.parent) == ["out.txt"]  # no temporary left behind


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as f:
        f.write("half of the new one")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_a_link_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "out").symlink_to(victim)
    write_atomic(tmp_path / "out", "new")
    assert victim.read_text() == "keep"
    assert not (tmp_path / "out").is_symlink()
    assert (tmp_path / "out").read_text() == "new"


def test_a_named_pipe_is_streamed_to_and_stays_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_atomic(fifo, "through the pipe")
    reader.join()
    assert got == ["through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_stdout_is_streamed_to(capsys: pytest.CaptureFixture[str]) -> None:
    write_atomic("-", "to the terminal\n")
    assert capsys.readouterr().out == "to the terminal\n"


def test_a_folder_as_target_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path}: is a folder"):
        write_atomic(tmp_path, "x")
    with pytest.raises(ConfigError, match="not a regular file"), atomic_path("-"):
        pass


def test_atomic_path_hands_a_tool_a_name_and_renames_it_at_the_end(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"weights")
        assert not target.exists()
    assert target.read_bytes() == b"weights" and os.listdir(tmp_path) == ["model.gguf"]


def test_atomic_folder_replaces_or_keeps_the_one_there(tmp_path: Path) -> None:
    target = tmp_path / "data"
    with atomic_folder(target, writes={"a", "b"}) as tmp:
        (tmp / "a").write_text("1")
    with atomic_folder(target, writes={"a", "b"}) as tmp:
        (tmp / "b").write_text("2")
    assert os.listdir(target) == ["b"]
    with atomic_folder(target, replace=False) as tmp:
        (tmp / "c").write_text("3")
    assert os.listdir(target) == ["b"]  # another process's folder wins
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "half") as tmp:
        raise RuntimeError
    assert sorted(os.listdir(tmp_path)) == ["data"]


def test_atomic_folder_refuses_to_replace_a_folder_holding_what_it_did_not_write(
    tmp_path: Path,
) -> None:
    target = tmp_path / "thesis"
    target.mkdir()
    (target / "chapter1.tex").write_text("years of work")
    ran = False
    refused = pytest.raises(ConfigError, match=r"thesis: holds chapter1\.tex, which")
    with refused, atomic_folder(target, writes={"cards.jsonl"}):
        ran = True
    assert not ran  # refused before the block's work
    assert (target / "chapter1.tex").read_text() == "years of work"
    assert os.listdir(tmp_path) == ["thesis"]


def test_atomic_folder_checks_again_before_replacing_a_folder_changed_meanwhile(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out"
    with atomic_folder(target, writes={"a"}) as tmp:
        (tmp / "a").write_text("1")
    refused = pytest.raises(ConfigError, match=r"holds notes\.txt")
    with refused, atomic_folder(target, writes={"a"}) as tmp:
        (tmp / "a").write_text("2")
        (target / "notes.txt").write_text("added by the user meanwhile")
    assert sorted(os.listdir(target)) == ["a", "notes.txt"]
    assert (target / "a").read_text() == "1"
    assert os.listdir(tmp_path) == ["out"]


def test_the_folder_a_command_runs_in_or_above_is_never_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for path in (Path("."), Path(".."), work):
        with pytest.raises(ConfigError, match="is the folder this command runs in"):
            check_replaceable(path, writes={"work"})
    check_replaceable(Path("new"), writes=())  # not there yet: nothing to replace
