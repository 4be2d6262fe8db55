"""CONCORDIA_THREADS: how many threads llama.cpp decodes with, checked before a model
is loaded."""

from __future__ import annotations

import pytest

from concordia_like.errors import ConfigError
from concordia_like.llm.embedded.backend import _env_threads


def test_threads_come_from_the_environment_or_default_to_every_core(monkeypatch):
    monkeypatch.delenv("CONCORDIA_THREADS", raising=False)
    assert _env_threads() == 0  # the backend then takes os.cpu_count()
    monkeypatch.setenv("CONCORDIA_THREADS", " 3 ")
    assert _env_threads() == 3


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
def test_a_bad_thread_count_is_one_clear_error(monkeypatch, bad):
    monkeypatch.setenv("CONCORDIA_THREADS", bad)
    with pytest.raises(ConfigError, match="CONCORDIA_THREADS must be a whole number"):
        _env_threads()
