"""Several inference servers behind one openai backend: least-loaded routing with a limit
per server, failover when one stops answering, and a clean failure when none is left.

End to end on two real llama.cpp servers (llama-cpp-python's, on SmolLM2) under the CLI:
one is killed in the middle of a run and the run goes on, on the other; then the other
is killed and the step in flight fails with one error line, nothing of it committed."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
from test_engine_resume import cli, cli_env, wait_for_run
from test_server_killed import steps_done

from concordia_like.llm import BackendUnavailableError, LanguageModel, LLMRequest
from concordia_like.llm.openai_compat import OpenAIBackend, resolve_base_urls
from concordia_like.llm.routing import ServerPool
from concordia_like.local_server import free_port

from support.llama_server import LlamaServer, require_llama_server
from support.scripted_http import CHAT_OK, scripted_server

pytestmark = pytest.mark.server

FAST = {"retry_base_delay_s": 0.01, "retry_max_delay_s": 0.05}


# -- the pool alone ---------------------------------------------------------------------


async def test_pool_picks_the_least_loaded_and_holds_each_to_its_limit():
    pool = ServerPool(["a", "b"], limit=2)
    first = await pool.acquire()
    second = await pool.acquire()
    assert (first.url, second.url) == ("a", "b")  # a carries one: b is less loaded
    third = await pool.acquire()
    fourth = await pool.acquire()
    assert sorted([third.url, fourth.url]) == ["a", "b"]
    waiting = asyncio.ensure_future(pool.acquire())  # both at their limit
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await pool.release(second, answered=True)
    assert (await asyncio.wait_for(waiting, 1)).url == "b"


async def test_pool_skips_a_server_taken_out_until_it_may_come_back():
    pool = ServerPool(["a", "b"], limit=4, revive_after_s=0.2)
    a, b = pool.servers
    pool.take_out(a, "connection refused")
    got = [await pool.acquire() for _ in range(3)]
    assert {s.url for s in got} == {"b"}
    await asyncio.sleep(0.25)
    assert (await pool.acquire()).url == "a"  # tried again, being the least loaded
    assert a.taken_out == 1 and b.taken_out == 0


def test_base_urls_from_a_list_commas_or_the_environment(monkeypatch):
    assert resolve_base_urls(["http://h:1", "http://h:2/v1/"]) == [
        "http://h:1/v1",
        "http://h:2/v1",
    ]
    monkeypatch.setenv("CONCORDIA_OPENAI_BASE_URL", "http://h:1, http://h:2")
    assert resolve_base_urls(None) == ["http://h:1/v1", "http://h:2/v1"]
    with pytest.raises(BackendUnavailableError, match="given twice"):
        resolve_base_urls(["http://h:1", "http://h:1/v1"])


# -- routing and failover over HTTP (scripted servers, a port nobody listens on) ----------


async def test_requests_spread_over_the_servers_and_a_dead_one_is_failed_over():
    dead = f"http://127.0.0.1:{free_port()}/v1"
    async with scripted_server([(200, CHAT_OK)]) as one, scripted_server([(200, CHAT_OK)]) as two:
        backend = OpenAIBackend(
            base_url=[dead, one.base_url, two.base_url],
            model="fake-model",
            concurrency=2,
            max_retries=0,  # a failover must not need a retry
            **FAST,
        )
        lm = LanguageModel(backend)
        start = time.perf_counter()
        out = await lm.complete_many([LLMRequest.chat(f"hi {i}", max_tokens=4) for i in range(12)])
        elapsed = time.perf_counter() - start
        await lm.aclose()
    assert [c.text for c in out] == ["fine"] * 12
    posts_one = [r for r in one.requests if r[0] == "POST"]
    posts_two = [r for r in two.requests if r[0] == "POST"]
    assert len(posts_one) + len(posts_two) == 12
    assert posts_one and posts_two  # both carried some
    dead_server = backend.pool.servers[0]
    assert dead_server.taken_out == 1 and dead_server.answered == 0
    assert "refused" in dead_server.last_error.lower() or "connect" in dead_server.last_error
    # the requests sent to the dead server before it was taken out went on at once
    assert backend.attempts == 12 + 2  # the dead one was given its limit, 2, then no more
    assert elapsed < 5
    assert json.loads(posts_one[0][2])["messages"][0]["content"].startswith("hi ")


async def test_no_server_left_fails_cleanly_naming_them_all():
    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    backend = OpenAIBackend(base_url=urls, model="m", max_retries=2, **FAST)
    with pytest.raises(BackendUnavailableError) as info:
        await LanguageModel(backend).complete(LLMRequest.chat("hi", max_tokens=4))
    await backend.aclose()
    message = str(info.value)
    assert all(url in message for url in urls)
    assert "none of the 2" in message and "2 retries spent" in message
    # each try goes to both (the second at once), then backs off: 3 rounds of 2
    assert backend.attempts == 6


# -- end to end: two real llama.cpp servers under a run ----------------------------------


def test_a_run_goes_on_when_one_server_dies_and_fails_cleanly_when_both_have(tmp_path):
    from support.engine import MINI, REPO

    gguf = require_llama_server()
    servers = [LlamaServer(gguf), LlamaServer(gguf)]
    steps = 3
    args = ["--backend", "openai", "--quiet", "--seed", "5", "--root", str(tmp_path)]
    for server in servers:
        args += ["--base-url", server.base_url]
    try:
        for server in servers:
            server.start()
        proc = subprocess.Popen(
            [*cli("run", str(MINI), "--steps", str(steps)), *args],
            cwd=REPO,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run_id = wait_for_run(tmp_path, proc)
        # step 2 is in flight on both servers when the first dies: it is finished on the
        # second, and so is... nothing more: the second dies once step 2 is committed
        while steps_done(tmp_path, run_id) < 1 and proc.poll() is None:
            time.sleep(0.02)
        servers[0].kill()
        while steps_done(tmp_path, run_id) < 2 and proc.poll() is None:
            time.sleep(0.02)
        assert steps_done(tmp_path, run_id) == 2, proc.communicate(timeout=60)
        servers[1].kill()
        out, err = proc.communicate(timeout=300)
    finally:
        for server in servers:
            server.close()
    assert proc.returncode == 1, (out, err)
    assert steps_done(tmp_path, run_id) == 2  # step 3 failed: nothing of it committed
    assert f"inference server {servers[0].base_url} stopped answering" in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    assert errors[0].startswith("error: step 3 "), err
    assert "last committed step: 2" in errors[0]
    assert "none of the 2 OpenAI-compatible servers" in errors[0]
