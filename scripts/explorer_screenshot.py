"""Screenshot of the built match explorer after a filter change, taken offline in headless Chromium.

    .venv/bin/python scripts/explorer_screenshot.py [--page _build/html/book/experiments/explore_matches.html]
        [--filter outcome=neither] [--out explorer.png]

Opens the page from ``file://`` (the README's way) with every host name unresolvable, waits for the explorer,
picks ``--filter ROLE=VALUE`` (``ROLE`` of a ``select[data-role=filter-ROLE]``: camid, clothes, artifact, gender,
pose_family, outcome), and saves a PNG of the explorer. Prints the query count before and after. Needs Chromium
and chromedriver (``make browser``) and Selenium (in the lock).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", default="_build/html/book/experiments/explore_matches.html")
    ap.add_argument("--filter", default="outcome=neither", help="ROLE=VALUE of a filter (default outcome=neither)")
    ap.add_argument("--out", default="explorer.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = ap.parse_args()
    page = Path(args.page)
    if not page.is_file():
        print(f"error: {page} not found; build the book first (make book PRESET=smoke)", file=sys.stderr)
        return 1
    role, _, value = args.filter.partition("=")
    opts = webdriver.ChromeOptions()
    opts.binary_location = args.chromium
    with tempfile.TemporaryDirectory() as profile:
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                    f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(args.chromedriver), options=opts)
        try:
            driver.get(page.resolve().as_uri())
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.CSS_SELECTOR, '[data-role="gallery-a"] [data-cell]'))
            count = driver.find_element(By.CSS_SELECTOR, '[data-role="count"]')
            before = count.text
            Select(driver.find_element(By.CSS_SELECTOR, f'select[data-role="filter-{role}"]')).select_by_value(value)
            explorer = driver.find_element(By.CSS_SELECTOR, ".rlqx-explorer")
            driver.execute_script("arguments[0].scrollIntoView()", explorer)
            explorer.screenshot(args.out)
            print(f"{page}: {before} -> filter {role}={value}: {count.text}; saved {args.out}")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
