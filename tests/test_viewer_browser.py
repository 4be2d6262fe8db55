"""The viewer in a real headless Chromium (Debian's chromium and chromium-driver under
Selenium): the page loads with no console error, the slider puts each resident where
the town had it, a resident's page lists the memories the store holds, usage shows
calls and tokens per purpose as the run holds them, a hostile line runs no script, a
live page shows a step another process commits, the sandbox's `view` follows its town
and its fork, an experiment shows its summary and plots, and the static export opens
from file:// with the same map."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_viewer import HOSTILE, REPO, WHISPER, record_hostile, record_town

from concordia_like.viewer.app import ViewerServer, create_app
from concordia_like.viewer.export import export_site
from concordia_like.viewer.sources import catalog_for

pytestmark = pytest.mark.browser
selenium = pytest.importorskip("selenium")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: the longest a test waits for the page to show something (a bound, not a timing)
WAIT_S = 20


@pytest.fixture(scope="module")
def embedder():
    import concordia_like.memory.embedder as embedder_module
    from concordia_like.memory.hash_embedder import install

    saved = embedder_module._default
    install()
    yield
    embedder_module._default = saved


@pytest.fixture(scope="module")
def root(tmp_path_factory, embedder):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def town(root):
    return record_town(root)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from concordia_like.viewer.browser import chromium, chromium_paths

    try:
        chromium_paths()
    except Exception as exc:
        pytest.skip(str(exc))
    driver = chromium(tmp_path_factory.mktemp("profile"))
    yield driver
    driver.quit()


class Served:
    def __init__(self, target: str, root: Path) -> None:
        self.catalog = catalog_for(target, root=root)
        self.server = ViewerServer(create_app(self.catalog)).start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()
        self.catalog.close()


@pytest.fixture
def serve(browser):
    """Servers for one test; the browser leaves their pages before they stop (a page
    whose live stream is cut logs a network error), and starts with an empty console."""
    opened: list[Served] = []
    errors(browser)

    def start(target: str, root: Path) -> Served:
        opened.append(Served(target, root))
        return opened[-1]

    yield start
    browser.get("about:blank")
    for s in opened:
        s.close()
    errors(browser)


def wait_for(driver, check, what: str):
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: check(d))
    except TimeoutException:
        raise AssertionError(f"the page never showed {what}") from None


def markers(driver) -> dict[str, str]:
    """Each resident's marker on the map, and the place it stands on."""
    return driver.execute_script(
        "const out = {}; for (const g of document.querySelectorAll('#map .resident'))"
        " { if (g.getAttribute('visibility') !== 'hidden')"
        " out[g.getAttribute('data-resident')] = g.getAttribute('data-place'); } return out;"
    )


def errors(driver) -> list[str]:
    from concordia_like.viewer.browser import browser_errors

    return browser_errors(driver)


def open_map(driver, url: str, steps: int) -> None:
    driver.get(url)
    wait_for(
        driver,
        lambda d: (
            d.find_element(By.ID, "step-label").text.startswith(f"step {steps} of {steps}")
            and markers(d)
        ),
        "the map",
    )


def test_the_page_loads_with_no_console_error(browser, town, root, serve):
    run_id, where = town
    open_map(browser, serve(run_id, root).url, len(where) - 1)
    assert browser.title == "concordia_like viewer"
    assert errors(browser) == []


def test_the_slider_moves_each_resident_to_where_the_store_says(browser, town, root, serve):
    run_id, where = town
    open_map(browser, serve(run_id, root).url, len(where) - 1)
    for step in [0, 3, 1, len(where) - 1, 2]:
        browser.execute_script(
            "const s = document.getElementById('step'); s.value = arguments[0];"
            " s.dispatchEvent(new Event('input'));",
            step,
        )
        assert markers(browser) == where[step], f"step {step}"
        assert browser.find_element(By.ID, "step-label").text.startswith(f"step {step} of")


def test_a_residents_page_lists_the_memories_the_store_holds(browser, town, root, serve):
    run_id, _ = town
    served = serve(run_id, root)
    store = served.catalog.view(run_id).memory()
    held = store.recent("Ines Marlowe", 100)
    browser.get(served.url + f"#/{run_id}/resident/Ines%20Marlowe")
    rows = wait_for(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#memories tr.memory"), "memories"
    )
    assert [int(r.get_attribute("data-id")) for r in rows] == [m.id for m in held]
    assert WHISPER in browser.find_element(By.ID, "memories").text
    box = browser.find_element(By.ID, "mem-q")
    box.send_keys("who owes the bakery money")
    browser.find_element(By.ID, "mem-go").click()
    wait_for(browser, lambda d: "scored for" in d.find_element(By.ID, "mem-info").text, "scores")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#memories tr.memory")) == len(held)
    assert errors(browser) == []


def bars(driver, chart: str) -> dict[str, float]:
    """A bar chart's bars: label -> value."""
    return {
        b.get_attribute("data-label"): float(b.get_attribute("data-value"))
        for b in driver.find_elements(By.CSS_SELECTOR, f"#{chart} rect.bar")
    }


def test_usage_shows_calls_and_tokens_per_purpose_as_the_run_holds_them(browser, town, root, serve):
    run_id, _ = town
    served = serve(run_id, root)
    held = served.catalog.view(run_id).checkpoint().usage["by_purpose"]
    assert held  # the scripted model's calls are counted by purpose
    browser.get(served.url + f"#/{run_id}/usage")
    shown = wait_for(browser, lambda d: bars(d, "calls-per-purpose"), "calls per purpose")
    assert shown == {k: float(v["calls"]) for k, v in held.items()}
    tokens = {k: float(v["prompt_tokens"] + v["completion_tokens"]) for k, v in held.items()}
    assert bars(browser, "tokens-per-purpose") == tokens
    assert errors(browser) == []


def test_a_hostile_utterance_is_shown_as_text_and_runs_no_script(browser, root, serve):
    run_id = record_hostile(root)
    served = serve(run_id, root)
    for page, where in [("conversations", "threads"), ("timeline", "events")]:
        browser.get(served.url + f"#/{run_id}/{page}")
        wait_for(browser, lambda d, w=where: HOSTILE in d.find_element(By.ID, w).text, "the line")
        assert browser.execute_script("return window.__pwned === undefined")
        assert browser.find_elements(By.CSS_SELECTOR, "#main img, #main script") == []
    browser.get(served.url + f"#/{run_id}/resident/Ines%20Marlowe")
    wait_for(browser, lambda d: HOSTILE in d.find_element(By.ID, "said").text, "what she said")
    assert browser.execute_script("return window.__pwned === undefined")


def test_live_mode_shows_a_step_committed_by_another_process(browser, root, serve, tmp_path):
    live_root = tmp_path / "live"
    live_root.mkdir()
    run_id, _ = record_town(live_root, steps=2)
    open_map(browser, serve(run_id, live_root).url, 2)
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    cmd = [sys.executable, "-c", "from support.fast_embedder import main; main()", "run",
           str(REPO / "worlds" / "town.yaml"), "--resume", run_id, "--steps", "3",
           "--root", str(live_root), "-b", "scripted"]  # fmt: skip
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "step-label").text.startswith("step 3 of 3"),
        "the committed step",
    )
    assert browser.find_element(By.ID, "step").get_attribute("max") == "3"
    assert "live · step 3" in browser.find_element(By.ID, "live").text


async def test_the_sandboxs_view_follows_the_open_town_and_its_fork(browser, runs_root):
    from test_sandbox import Town

    town = Town(runs_root)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", await town("view")).group(0)
        errors(browser)
        open_map(browser, url, 0)
        for steps in (1, 2):
            await town("step")
            wait_for(
                browser,
                lambda d, n=steps: d.find_element(By.ID, "step-label").text.startswith(
                    f"step {n} of {n}"
                ),
                f"step {steps}",
            )
            assert markers(browser) == {
                a: d["location"] for a, d in town.sim.state.to_dict()["agents"].items()
            }
        old = town.sim.run_id
        await town("fork")
        assert town.sim.run_id != old
        wait_for(
            browser, lambda d: town.sim.run_id in d.find_element(By.ID, "title").text, "the fork"
        )
        browser.get("about:blank")
        assert errors(browser) == []
    finally:
        await town.session.aclose()
        errors(browser)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, embedder):
    from support.experiment import run, write_scenario

    folder = tmp_path_factory.mktemp("exp")
    out = folder / "out"
    run(write_scenario(folder), out)
    return out


def test_an_experiment_folder_shows_its_summary_and_plots(browser, experiment, serve):
    served = serve(str(experiment), experiment)
    browser.get(served.url)
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#summary tr"), "summary")
    summary = (experiment / "summary.csv").read_text().strip().splitlines()
    assert len(rows) == len(summary)  # a header and a row per measurement and condition
    plots = browser.find_elements(By.CSS_SELECTOR, "#plots .plot")
    names = {p.get_attribute("data-measurement") for p in plots}
    assert {"in_square", "ann_energy", "money"} <= names
    energy = browser.find_element(By.CSS_SELECTOR, '.plot[data-measurement="ann_energy"]')
    series = energy.find_elements(By.CSS_SELECTOR, "polyline.series")
    assert {s.get_attribute("data-series") for s in series} == {"control", "treated"}
    link = browser.find_element(By.CSS_SELECTOR, "#runs a")
    link.click()
    wait_for(browser, lambda d: markers(d), "a run's map")
    assert errors(browser) == []


def test_the_static_export_opens_from_disk_with_the_same_map(browser, town, root, serve, tmp_path):
    run_id, where = town
    served = serve(run_id, root)
    open_map(browser, served.url, len(where) - 1)
    live = markers(browser)
    page = export_site(served.catalog, tmp_path / "site")
    open_map(browser, page.resolve().as_uri(), len(where) - 1)
    assert markers(browser) == live == where[-1]
    assert errors(browser) == []
