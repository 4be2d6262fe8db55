"""Headless Chromium under Selenium, for the viewer's browser tests and its benchmark:
Debian's `chromium` and `chromium-driver` (installed by scripts/setup/setup.sh), with a
fresh profile and nothing that reaches the network on its own."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from concordia_like.errors import ConfigError

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def chromium_paths() -> tuple[str, str]:
    """(browser, driver) on PATH; ConfigError names what is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        raise ConfigError(
            "the viewer's browser checks need chromium and chromium-driver "
            "(apt-get install chromium chromium-driver; scripts/setup/setup.sh does it)"
        )
    return browser, driver


def chromium(profile: Path, *, width: int = 1400, height: int = 1000) -> Any:
    """A headless Chromium driven by Selenium, its console kept for `browser_errors`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


def browser_errors(driver: Any) -> list[str]:
    """The console's errors since the last call (the log is read once)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
