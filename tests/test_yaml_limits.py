"""Hostile configuration files are refused fast, in bounded memory, with one line naming
the file, the line and the limit: size in bytes, aliases, nesting depth and node count
(an alias counted as a copy of what it names), for worlds and the personas they name
alike. Real files, aliases and merge keys included, still load."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from concordia_like.errors import ConfigError
from concordia_like.world import load_world
from concordia_like.world.persona import load_persona
from concordia_like.yaml_loader import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    ConfigFileError,
    YamlLimits,
    read_yaml,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLI = Path(sys.executable).parent / "concordia-like"
MB = 1024 * 1024


def bomb_text(levels: int = 10, width: int = 9) -> str:
    """The billion laughs: `levels` lists of `width` aliases of the one before (9**10)."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def bomb_line(text: str) -> int:
    """The line whose alias takes the bomb over the node limit: a5, 9**6 nodes."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if "5: &" in line)


def refusal(path: Path, limits: YamlLimits | None = None) -> str:
    """The one-line message read_yaml refuses `path` with."""
    with pytest.raises(ConfigFileError) as info:
        read_yaml(path) if limits is None else read_yaml(path, limits)
    assert len(info.value.issues) == 1
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ConfigError)
    return message


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- one test per limit ------------------------------------------------------------


def test_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    # valid YAML all through, so only the size can refuse it
    path = write(tmp_path, "big.yaml", "a: 1\n" + "#" * MAX_FILE_BYTES + "\n")
    message = refusal(path)
    assert message.startswith(f"{path}:0: file too large")
    assert f"{path.stat().st_size:,} bytes" in message
    assert "size limit of 1 MiB" in message
    just_under = write(tmp_path, "fits.yaml", "a: 1\n#" + "x" * (MAX_FILE_BYTES - 7) + "\n")
    assert just_under.stat().st_size == MAX_FILE_BYTES
    assert read_yaml(just_under).data == {"a": 1}


def test_an_endless_device_is_refused_before_it_is_read() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    message = refusal(Path("/dev/zero"))
    assert "is a device: only a regular file is read" in message


def test_too_many_aliases(tmp_path: Path) -> None:
    body = "- *x\n" * MAX_ALIASES
    ok = write(tmp_path, "ok.yaml", "- &x 1\n" + body)
    assert len(read_yaml(ok).data) == MAX_ALIASES + 1
    bad = write(tmp_path, "bad.yaml", "- &x 1\n" + body + "- *x\n")
    message = refusal(bad)
    # the alias that crossed the limit is the last line
    assert message == (
        f"{bad}:{MAX_ALIASES + 2}: too many YAML aliases: over the alias limit of {MAX_ALIASES}"
    )


def test_too_deep(tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.yaml", "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    read_yaml(ok)
    bad = write(tmp_path, "bad.yaml", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    message = refusal(bad)
    assert message.startswith(f"{bad}:1: YAML nested too deep")
    assert f"over the depth limit of {MAX_DEPTH} levels" in message


def test_depth_counts_what_an_alias_names(tmp_path: Path) -> None:
    # 20 levels anchored, then used under 20 more: 40 levels once expanded
    deep = "[" * 20 + "]" * 20
    text = f"a: &deep {deep}\nb: " + "[" * 20 + "*deep" + "]" * 20 + "\n"
    message = refusal(write(tmp_path, "deep.yaml", text))
    assert ":2: YAML nested too deep" in message


def test_too_many_nodes(tmp_path: Path) -> None:
    # a list of MAX_NODES - 1 scalars is MAX_NODES nodes; one more is over
    ok = write(tmp_path, "ok.yaml", "[" + "1," * (MAX_NODES - 1) + "]\n")
    assert len(read_yaml(ok).data) == MAX_NODES - 1
    bad = write(tmp_path, "bad.yaml", "[" + "1," * MAX_NODES + "]\n")
    message = refusal(bad)
    assert message.startswith(f"{bad}:1: too many YAML nodes")
    assert f"over the node limit of {MAX_NODES:,}" in message


def test_node_limit_counts_each_alias_as_a_copy(tmp_path: Path) -> None:
    # 3 lines, 3 aliases: a 1,001-node list used 100 times is over 100,000 nodes
    text = "w: &w [" + ", ".join(["x"] * 1000) + "]\n" + "u: [" + ", ".join(["*w"] * 100) + "]\n"
    message = refusal(write(tmp_path, "wide.yaml", text))
    assert ":2: too many YAML nodes" in message


def test_limits_are_one_reusable_setting(tmp_path: Path) -> None:
    """Other loaders (scenario files) pass their own YamlLimits to the same reader."""
    path = write(tmp_path, "small.yaml", "a: &a [1, 2]\nb: [*a, *a]\nc: [[x]]\n")
    assert read_yaml(path).data["b"] == [[1, 2], [1, 2]]
    assert "size limit of 10 bytes" in refusal(path, YamlLimits(file_bytes=10))
    assert "alias limit of 1" in refusal(path, YamlLimits(aliases=1))
    assert "depth limit of 2 levels" in refusal(path, YamlLimits(depth=2))
    assert "node limit of 10" in refusal(path, YamlLimits(nodes=10))


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    message = refusal(write(tmp_path, "loop.yaml", "a: &a\n  - x\n  - *a\n"))
    assert (
        message == f"{tmp_path / 'loop.yaml'}:3: recursive YAML alias *a inside the node it names"
    )


# -- the alias bomb -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        bomb_text(),
        # the same through merge keys, which construction would copy level by level
        "a0: &a0 {"
        + ", ".join(f"k{i}: lol" for i in range(9))
        + "}\n"
        + "".join(
            f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 9) + "]}\n" for i in range(1, 10)
        ),
    ],
    ids=["lists", "merge-keys"],
)
def test_alias_bomb_is_refused_fast_in_bounded_memory(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "bomb.yaml", text)
    assert path.stat().st_size < 1000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        message = refusal(path)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert "too many YAML nodes: over the node limit" in message
    assert elapsed < 5.0, f"took {elapsed:.2f}s"
    assert peak < 100 * MB, f"peak {peak / MB:.1f} MB"


_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
    "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stdout.write(f'\\nMAXRSS_KB={rss}\\n')\n"
    "sys.exit(r.returncode)\n"
)


def run_cli(tmp_path: Path, world: Path) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """`concordia-like run WORLD --steps 1 --backend scripted`, its max RSS in bytes
    (measured as the only child of a wrapper process) and its wall time."""
    cmd = [sys.executable, "-c", _RSS_WRAPPER, str(CLI), "run", str(world), "--steps", "1"]
    cmd += ["--backend", "scripted", "--root", str(tmp_path / "runs")]
    env = {**os.environ, "COLUMNS": "500"}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    elapsed = time.perf_counter() - t0
    return res, int(res.stdout.rsplit("MAXRSS_KB=", 1)[1]) * 1024, elapsed


@pytest.mark.slow
def test_cli_refuses_a_world_bomb_with_one_error_line(tmp_path: Path) -> None:
    """`concordia-like run BOMB.yaml` exits 1 with `error: FILE:LINE: ... node limit`,
    quickly, and needing under 100 MB more than refusing an empty file does (the CLI's
    own imports are most of its resident set, and not this test's business)."""
    if not CLI.exists():
        pytest.skip(f"{CLI} not installed")
    bomb = write(tmp_path, "bomb.yaml", bomb_text())
    res, rss, elapsed = run_cli(tmp_path, bomb)
    assert res.returncode == 1, res.stdout + res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        (
            f"error: bomb.yaml:{bomb_line(bomb_text())}: too many YAML nodes: over the node "
            f"limit of {MAX_NODES:,} (an alias counts as a copy of what it names)"
        )
    ], res.stderr
    assert "Traceback" not in res.stderr
    assert elapsed < 60, f"CLI took {elapsed:.1f}s"
    assert not (tmp_path / "runs").exists(), "a refused world must not start a run"

    empty_res, empty_rss, _ = run_cli(tmp_path, write(tmp_path, "empty.yaml", "# nothing\n"))
    assert "error: empty.yaml:1: file is empty" in empty_res.stderr
    assert rss - empty_rss < 100 * MB, f"bomb {rss / MB:.0f} MB, empty {empty_rss / MB:.0f} MB"


# -- personas a world names, and the files that must still load -----------------------


def mini_world(tmp_path: Path) -> Path:
    """tests/fixtures' mini world and its personas, copied where a test may spoil them."""
    shutil.copytree(FIXTURES / "worlds", tmp_path / "worlds")
    shutil.copytree(FIXTURES / "personas", tmp_path / "personas")
    return tmp_path / "worlds" / "mini.yaml"


def test_a_persona_named_by_a_world_is_held_to_the_same_limits(tmp_path: Path) -> None:
    world = mini_world(tmp_path)
    persona = tmp_path / "personas" / "bob.yaml"
    persona.write_text(persona.read_text() + bomb_text().replace("a", "zz"), encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.raises(ConfigFileError) as info:
        load_world(world)
    assert time.perf_counter() - t0 < 5.0
    [issue] = [i for i in info.value.issues if "limit" in i.message]
    assert Path(issue.file).resolve() == persona.resolve()
    assert issue.line == bomb_line(persona.read_text())
    assert issue.message.startswith("too many YAML nodes: over the node limit")


def test_an_oversized_persona_named_by_a_world_is_refused(tmp_path: Path) -> None:
    world = mini_world(tmp_path)
    persona = tmp_path / "personas" / "cy.yaml"
    persona.write_text(persona.read_text() + "#" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_world(world)
    assert any(
        Path(i.file).resolve() == persona.resolve() and "size limit of 1 MiB" in i.message
        for i in info.value.issues
    ), str(info.value)


def test_shipped_town_and_personas_load_within_limits() -> None:
    world = load_world(ROOT / "worlds" / "town.yaml")
    assert len(world.personas) >= 10
    for path in sorted((ROOT / "personas").glob("*.yaml")):
        assert load_persona(path).name


def test_legitimate_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    world = mini_world(tmp_path)
    text = world.read_text()
    text = text.replace(
        '  home_ann: {hours: "07:00-22:00"}\n  home_bob: {hours: "07:00-22:00"}\n',
        '  home_ann: &home {hours: "07:00-22:00"}\n  home_bob: {<<: *home}\n',
    )
    assert "&home" in text
    world.write_text(text, encoding="utf-8")
    ann = tmp_path / "personas" / "ann.yaml"
    ann.write_text(
        ann.read_text().replace("traits: [tidy]", "traits: &t [tidy]\nvalues: *t"),
        encoding="utf-8",
    )
    loaded = load_world(world)
    assert loaded.state.places["home_bob"].hours == loaded.state.places["home_ann"].hours
    assert loaded.personas["Ann Reed"].values == ["tidy"]
