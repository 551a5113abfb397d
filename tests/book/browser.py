"""Headless Chromium driven by Selenium through the system chromedriver (Debian ``chromium-driver``), offline.

Every host name but 127.0.0.1 is unresolvable, and :func:`requests` lists what the page asked for (Chrome's
performance log), so a test can assert that nothing left the machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("RLQ_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("RLQ_CHROMEDRIVER", "/usr/bin/chromedriver"))
#: URL schemes/hosts that stay on this machine.
LOCAL = ("file://", "data:", "blob:", "http://127.0.0.1", "about:", "chrome:", "devtools:")


def require_browser() -> None:
    """Skip (fail on CI) when Chromium or its driver is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        message = f"{missing} not found: install them with `make browser` (Debian chromium + chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def chromium(profile: Path, width: int = 1400, height: int = 1000) -> Iterator:
    """A headless Chromium WebDriver with an offline network and a performance log."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--window-size={width},{height}", f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def requests(driver) -> list[str]:
    """URLs the page requested since the last call (Network.requestWillBeSent of the performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def remote(urls: list[str]) -> list[str]:
    """The URLs that would leave the machine."""
    return [u for u in urls if not u.startswith(LOCAL)]


def wait_for(driver, css: str, timeout: float = 20.0):
    """The first element matching ``css`` once it exists (TimeoutException otherwise)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def choose(driver, role: str, value: str) -> None:
    """Pick ``value`` in the ``<select data-role=role>`` (fires its change event)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, f'select[data-role="{role}"]')).select_by_value(value)


def cells(driver, role: str) -> list[str]:
    """The sprite cells shown inside ``[data-role=role]`` (their ``data-cell``), in order."""
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.CSS_SELECTOR, f'[data-role="{role}"]')
    return [t.get_attribute("data-cell") for t in box.find_elements(By.CSS_SELECTOR, "[data-cell]")]
