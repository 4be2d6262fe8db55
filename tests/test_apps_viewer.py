"""The viewer's feed page: the API gives every post of a run with its likes, replies and
who was shown it, step by step, as the run's app state holds them; a run's head says
whether it has a feed; the static export carries the feed; and in the browser the
page lists the posts, a hostile post shown as text that runs no script."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from concordia_like.agents.actions import Like, Post, ReadApp, Reply
from concordia_like.engine.hooks import StepHook, StepInput
from concordia_like.engine.runs import start_run
from concordia_like.viewer.app import create_app
from concordia_like.viewer.export import export_site
from concordia_like.viewer.sources import catalog_for

from support.engine import REPO, TOWN, lm_factory

DIGITAL = REPO / "worlds" / "town_digital.yaml"
HOSTILE = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>'
#: step -> what some residents do in it (typed, as a player's actions are)
SCRIPT = {
    1: {"Margo Vell": Post(kind="post", text="The mayor bought a carriage with the bridge fund.")},
    2: {
        "Tobias Marlowe": ReadApp(kind="read", what="feed", text="read the feed"),
        "Hana Sato": ReadApp(kind="read", what="feed", text="read the feed"),
        "Rafael Quint": Post(kind="post", text=HOSTILE),
    },
    3: {
        "Tobias Marlowe": Like(kind="like", post="p1", text="like p1"),
        "Hana Sato": Reply(kind="reply", post="p1", text="Is that true, Margo?"),
    },
}


class Typed(StepHook):
    name = "typed"

    async def before_acting(self, sim, step):
        acts = SCRIPT.get(step)
        return StepInput(actions=dict(acts)) if acts else None


async def _record(world: Path, root: Path, steps: int) -> str:
    sim = start_run(world, lm_factory(), root=root, seed=1)
    sim.hooks.append(Typed())
    async with sim:
        for _ in range(steps):
            await sim.run_step()
    return sim.run_id


def record(world: Path, root: Path, steps: int = 4) -> str:
    """A run of `world` on the scripted model with SCRIPT's app actions typed in."""
    return asyncio.run(_record(world, root, steps))


@pytest.fixture(scope="module")
def embedder():
    import concordia_like.memory.embedder as embedder_module
    from concordia_like.memory.hash_embedder import install

    saved = embedder_module._default
    install()
    yield
    embedder_module._default = saved


@pytest.fixture(scope="module")
def digital(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("runs")
    return record(DIGITAL, root), root


def _feed(run_id: str, root: Path) -> tuple[dict, dict]:
    catalog = catalog_for(run_id, root=root)
    try:
        client = TestClient(create_app(catalog))
        return client.get(f"/api/run/{run_id}/feed").json(), client.get(
            f"/api/run/{run_id}/head"
        ).json()
    finally:
        catalog.close()


def test_the_feed_has_every_post_with_its_likes_replies_and_readers(digital):
    run_id, root = digital
    feed, head = _feed(run_id, root)
    assert head["feed"] is True
    posts = {p["id"]: p for p in feed["posts"]}
    assert set(posts) == {"p1", "p2", "p3"}
    p1 = posts["p1"]
    assert (p1["author"], p1["step"], p1["reply_to"]) == ("Margo Vell", 1, None)
    assert p1["likes"] == 1 and p1["liked_by"] == ["Tobias Marlowe"]
    assert p1["shown_to"] == ["Hana Sato", "Tobias Marlowe"]
    assert p1["replies"] == ["p3"]
    assert (posts["p3"]["reply_to"], posts["p3"]["author"]) == ("p1", "Hana Sato")
    assert posts["p2"]["text"] == HOSTILE  # as written: the page puts it in as text
    assert feed["steps"] == [
        {"step": 1, "posts": 1, "replies": 0},
        {"step": 2, "posts": 1, "replies": 0},
        {"step": 3, "posts": 0, "replies": 1},
    ]
    assert feed["likes"] == 1 and feed["ranking"] == "engagement"


def test_a_world_without_apps_has_no_feed(tmp_path, embedder):
    root = tmp_path / "runs"
    run_id = record(TOWN, root, steps=1)
    feed, head = _feed(run_id, root)
    assert head["feed"] is False
    assert feed == {"has_feed": False, "ranking": None, "posts": [], "steps": []}


def test_the_export_carries_the_feed(digital, tmp_path):
    run_id, root = digital
    catalog = catalog_for(run_id, root=root)
    try:
        export_site(catalog, tmp_path / "site")
    finally:
        catalog.close()
    data = (tmp_path / "site" / "data" / "run-0.js").read_text()
    assert "<img" not in data
    body = json.loads(data.splitlines()[1].split(" = ", 1)[1].rstrip(";"))
    assert [p["id"] for p in body["feed"]["posts"]] == ["p1", "p2", "p3"]


@pytest.mark.browser
def test_the_feed_page_lists_the_posts_and_runs_no_script(digital, tmp_path):
    pytest.importorskip("selenium")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from concordia_like.viewer.app import ViewerServer
    from concordia_like.viewer.browser import browser_errors, chromium, chromium_paths

    try:
        chromium_paths()
    except Exception as exc:
        pytest.skip(str(exc))
    run_id, root = digital
    catalog = catalog_for(run_id, root=root)
    server = ViewerServer(create_app(catalog), catalog=catalog).start()
    driver = chromium(tmp_path / "profile")
    try:
        driver.get(f"{server.url}#/{run_id}/map")
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.LINK_TEXT, "Feed"))
        driver.find_element(By.LINK_TEXT, "Feed").click()
        WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".post"))
        shown = {
            p.get_attribute("data-post"): p.text
            for p in driver.find_elements(By.CSS_SELECTOR, ".post")
        }
        assert set(shown) == {"p1", "p2", "p3"}
        assert HOSTILE in shown["p2"]  # the markup as text
        assert driver.find_elements(By.CSS_SELECTOR, "#feed img") == []
        assert driver.execute_script("return window.__pwned === undefined")
        likes = driver.find_element(By.CSS_SELECTOR, "#post-p1 .likes")
        assert likes.get_attribute("data-likes") == "1"
        driver.get("about:blank")
        assert browser_errors(driver) == []
    finally:
        driver.quit()
        server.stop()
