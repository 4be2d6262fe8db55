"""The `models` and `demo` commands, including their one-line errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from concordia_like.cli.main import app

runner = CliRunner()


def test_models_lists_every_backend():
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0
    for name in ("embedded", "openai", "langchain", "scripted"):
        assert name in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "--check", "gpt5"], "unknown backend 'gpt5'"),
        (
            ["models", "--check", "embedded", "--model-path", "missing.gguf"],
            "model file missing.gguf does not exist",
        ),
        (["demo", "--backend", "nope"], "unknown backend 'nope'"),
    ],
)
def test_user_mistakes_are_one_line_and_non_zero(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 1
    assert message in res.output
    assert "Traceback" not in res.output


def test_check_on_scripted_prints_reply_and_parse():
    res = runner.invoke(app, ["models", "--check", "scripted"])
    assert res.exit_code == 0, res.output
    assert "parsed" in res.output and "CheckReply(" in res.output


def test_demo_on_scripted_runs_one_batch_and_says_it_is_not_a_model():
    res = runner.invoke(app, ["demo", "--backend", "scripted"])
    assert res.exit_code == 0, res.output
    assert "test double" in res.output
    assert "batches of [4]" in res.output


@pytest.mark.embedded
def test_check_on_the_embedded_model():
    res = runner.invoke(app, ["models", "--check", "embedded"])
    assert res.exit_code == 0, res.output
    assert "parsed" in res.output and "tok/s" in res.output
