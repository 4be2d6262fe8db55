"""`concordia-like town` as a person or a script meets it, on the scripted model: a
scripted session's transcript is the same from run to run, commands come from a file
or a pipe, towns are listed and reopened, and at a real pseudo-terminal the prompt
completes with Tab, keeps its history, and Ctrl-C during `step N` stops after the step
in flight with that step committed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time

import pytest
from test_engine_resume import cli, cli_env

from support.engine import REPO, TOWN, checkpoint, query

SCRIPT = """\
look
step 2
inspect Ines
interview Ines How is the bakery doing?
whisper Tobias Bring the fiddle on Friday.
inject at bakery A cart overturns outside, spilling flour.
step
play Tobias
look
go bakery
say to Ines Good morning
hum while kneading the dough
leave
until 07:30
look bakery
help fork
save
quit
step 5
"""


#: terminal escapes (colour, bold) that rich puts between the words on a terminal
ANSI = r"(?:\x1b\[[0-9;?]*[A-Za-z])*"


def town(root, *args, stdin: str | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(
        cli("town", str(TOWN), "--backend", "scripted", "--root", str(root), *args),
        cwd=REPO,
        env=cli_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc.stdout


def masked(transcript: str, root) -> str:
    """The transcript less what names one run rather than another (its id, its path)."""
    return re.sub(r"[0-9a-f]{12}", "RUN", transcript.replace(str(root), "ROOT"))


@pytest.mark.slow
def test_scripted_transcript_is_the_same_from_run_to_run(tmp_path):
    script = tmp_path / "session.txt"
    script.write_text(SCRIPT)
    first = town(tmp_path / "a", "--script", str(script), "--seed", "7")
    second = town(tmp_path / "b", "--script", str(script), "--seed", "7")
    assert masked(first, tmp_path / "a") == masked(second, tmp_path / "b")
    # it is a real session: steps happened, quit ended it before the last line
    assert "step 3 Mon 06:20" in first and "as Tobias Marlowe:" in first
    assert "Mon 07:30> look bakery" in first
    assert "step 5" not in first.split("> quit")[1]
    other = town(tmp_path / "c", "--script", str(script), "--seed", "8")
    assert masked(other, tmp_path / "c") != masked(first, tmp_path / "a")


@pytest.mark.slow
def test_commands_from_a_pipe_then_list_and_reopen(tmp_path):
    root = tmp_path / "runs"
    out = town(root, stdin="step 2\nfork\nstep\n")
    first = re.search(r"new town ([0-9a-f]{12})", out).group(1)
    forked = re.search(r"into ([0-9a-f]{12})", out).group(1)
    assert f"closed town {forked} after step 3" in out
    listing = town(root, "--list")
    assert first in listing and forked in listing
    assert f"forked from {first} step 2" in listing
    out = town(root, "--open", first, stdin="look\nstep\n")
    assert f"reopened town {first} after step 2" in out
    assert "step 3 Mon 06:20" in out
    steps = query(root / first / "store.sqlite", "SELECT steps_done FROM runs")
    assert steps == [(3,)]


@pytest.mark.slow
def test_script_from_a_named_pipe_is_read_like_a_file(tmp_path):
    fifo = tmp_path / "commands"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("look bakery\nquit\n",))
    writer.start()
    out = town(tmp_path / "runs", "--script", str(fifo))
    writer.join(timeout=30)
    assert "Marlowe's Bakery" in out
    assert "does not exist" not in out


def test_empty_pipe_runs_the_tour(tmp_path):
    out = town(tmp_path / "runs", stdin="")
    for command in ("> look", "> step 2", "> inspect ", "> interview ", "> stats", "> quit"):
        assert command in out
    assert "closed town" in out and "after step 2" in out


@pytest.mark.slow
def test_at_a_terminal_tab_history_and_ctrl_c(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    root = tmp_path / "runs"
    args = ["-c", "from support.fast_embedder import main; main()"]
    args += ["town", str(TOWN), "--backend", "scripted", "--root", str(root)]
    child = pexpect.spawn(
        sys.executable,
        args,
        cwd=str(REPO),
        # pexpect is no terminal emulator: it cannot answer cursor position requests
        env={**cli_env(), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"},
        dimensions=(40, 140),
        encoding="utf-8",
        timeout=60,
    )
    try:
        child.expect("Mon 06:00>")
        time.sleep(0.5)  # the prompt is drawn before it reads keys
        child.send("insp\t")  # a command completes
        child.expect("inspect")
        child.send("Tob\t")  # and a resident's name
        child.expect("Tobias")
        child.send("\r")
        child.expect("relationships:")
        child.expect("Mon 06:00>")
        time.sleep(0.5)
        child.send("dance\r")
        child.expect("unknown command 'dance'")  # after a coloured 'hint:'
        child.expect(r"06:00>")
        time.sleep(0.5)
        child.sendintr()  # at the prompt: the town is safe
        child.expect("the town is safe")
        time.sleep(0.5)
        child.send("step 500\r")
        child.expect(rf"step 2{ANSI} Mon 06:10")  # the step number is bold
        child.sendintr()
        child.expect(r"stopped after step (\d+) \(Ctrl-C\); it is committed")
        stopped = int(child.match.group(1))
        child.expect(r"\d\d:\d\d>")
        time.sleep(0.5)
        assert 2 <= stopped < 500
        child.send("quit\r")
        child.expect(f"closed town ([0-9a-f]{{12}}) after step {stopped}")
        run_id = child.match.group(1)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    steps = query(root / run_id / "store.sqlite", "SELECT steps_done FROM runs")
    assert steps == [(stopped,)]
    history = (root / ".town_history").read_text()
    assert "+inspect Tobias\n" in history and "step 500" in history


@pytest.mark.slow
def test_start_begins_a_new_town_at_that_time_and_a_bad_one_is_one_error(tmp_path):
    out = town(tmp_path / "runs", "--start", "07:30", stdin="look\nquit\n")
    assert "Mon 07:30> look" in out and "Mon 14 Apr 07:30, after step 0" in out
    bad = subprocess.run(
        [
            *cli("town", str(TOWN), "--backend", "scripted", "--root", str(tmp_path / "bad")),
            "--start",
            "7:99",
        ],
        cwd=REPO,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: --start: expected a time as HH:MM (00:00 to 23:59), got '7:99'"
    ]
    assert not (tmp_path / "bad").exists()  # nothing half-written


NEWCOMER_CARD = """\
name: Wren Hollis
age: 31
occupation: travelling clockmaker
traits: [curious, soft-spoken]
routine:
  - {at: "06:00", activity: looks for work around the square, place: market_square}
home: caravan
"""


@pytest.mark.slow
def test_newcomer_from_a_card_survives_reopen_and_fork(tmp_path):
    root = tmp_path / "runs"
    card, bad = tmp_path / "wren.yaml", tmp_path / "bad.yaml"
    card.write_text(NEWCOMER_CARD)
    bad.write_text(NEWCOMER_CARD.replace("age: 31", "age: thirty"))
    out = town(root, stdin=f"play --new {bad}\nplay --new {card}\ngo bakery\nquit\n")
    run_id = re.search(r"new town ([0-9a-f]{12})", out).group(1)
    refused = [line for line in out.splitlines() if line.startswith("error:")]
    assert refused == [
        (
            f"error: {bad}:2: age: Input should be a valid integer, unable to parse string as "
            "an integer, got 'thirty'"
        )
    ]
    assert "Wren Hollis joins Larkspur Ford, at Market Square" in out
    assert "Wren Hollis Mon 06:00> go bakery" in out
    assert "step 1 Mon 06:00, as Wren Hollis:" in out
    assert f"closed town {run_id} after step 1" in out
    out = town(root, "--open", run_id, stdin="play Wren\nlook\nfork\ngo market_square\n")
    assert f"reopened town {run_id} after step 1, 12 residents" in out  # the town's 11 and her
    assert "You are at Marlowe's Bakery" in out
    forked = re.search(r"into ([0-9a-f]{12})", out).group(1)
    assert "Wren Hollis goes from Marlowe's Bakery to Market Square." in out
    assert f"closed town {forked} after step 2" in out
    assert "Wren Hollis" in checkpoint(root / forked / "store.sqlite").agents
