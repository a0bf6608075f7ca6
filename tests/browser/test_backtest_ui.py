"""The backtest's HTML in the real browser (issue 21): ``mz-schedctl backtest --html`` over the
synthetic week (tests/backtest_week.py) back-dated into the emulator, opened from disk
(file://) in headless Chromium with no network; its table shows the hand figures of
tests/engine/test_backtest.py. Screenshot: artifacts/browser/backtest-html.png.

No Airflow here: the page is a file. The browser is started as test_airflow_ui.py starts it
(the same Chromium, ChromeDriver and flags: no proxy, no name resolution but 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import backtest_week as week
import pytest
from test_airflow_ui import (  # constants and helpers, reused as they are
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_S,
    REPO,
    _css,
    _stop_session,
    _until,
    prerequisites,
)

__all__ = ["prerequisites"]  # pytest finds the imported fixture here

pytestmark = pytest.mark.timeout(600)
CHARTS = ".plotly-graph-div .main-svg"


@pytest.fixture(scope="module")
def week_start(prerequisites: None, emulator: Any) -> Any:
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    db = Database.connect(emulator.url)
    try:
        Store(db).bootstrap()
    finally:
        db.close()
    start = week.build_on_emulator(emulator)
    for name in week.CLUSTERS:
        (cid,) = emulator.execute("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (name,))
        emulator.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, 'idle_suspend', %s::jsonb)",
            (cid[0], json.dumps(week.config(name))),
        )
    return start


@pytest.fixture(scope="module")
def driver(prerequisites: None) -> Iterator[Any]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="mz-schedctl-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile / 'profile'}")
    options.add_argument("--window-size=1400,2200")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(
        str(CHROMEDRIVER),
        log_output=str(profile / "chromedriver.log"),
        popen_kw={"start_new_session": True},
    )
    d = None
    try:
        d = webdriver.Chrome(service=service, options=options)
        d.set_page_load_timeout(PAGE_S)
        yield d
    finally:
        if d is not None:
            with contextlib.suppress(Exception):
                d.quit()
        with contextlib.suppress(Exception):
            service.stop()
        _stop_session(getattr(service, "process", None), grace_s=5)
        shutil.rmtree(profile, ignore_errors=True)


def _requests(d: Any) -> list[str]:
    out = []
    for entry in d.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            out.append(message["params"]["request"]["url"])
    return out


def test_backtest_html_opens_from_disk(emulator: Any, week_start: Any, driver: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = ARTIFACTS / "backtest.html"
    until = (week_start + 7 * week.DAY).isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.cli", "backtest",
         "--database-url", emulator.url, "--since", "7d", "--until", until,
         "--filter-clusters", "bt_.*", "--html", str(page)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _requests(driver)  # drop what came before
    try:
        driver.get(page.as_uri())
        _until(
            driver,
            "the five clusters' charts",
            lambda _: len(_css(driver, CHARTS)) >= 5,
        )
        assert driver.execute_script("return typeof window.Plotly") == "object"
        rows = driver.execute_script(
            "return Array.from(document.querySelectorAll('#backtest tr')).map("
            "r => Array.from(r.children).map(c => c.textContent))"
        )
        table = {r[0]: r[1:-2] for r in rows[1:]}
        assert all(r[-2:] == ["0", "0"] for r in rows[1:])  # no flap, nothing deferred
        # The hand figures (tests/engine/test_backtest.py's docstring): recorded, simulated,
        # saved, suspends, resumes, cold starts, longest wait, flaps, deferred.
        assert table == {
            "bt_business": ["idle_suspend", "168.000", "46.033", "121.967", "6", "5", "5", "120s"],
            "bt_hydrate": ["idle_suspend", "42.000", "0.100", "41.900", "2", "1", "1", "150s"],
            "bt_idle": ["idle_suspend", "30.000", "0.517", "29.483", "2", "1", "1", "120s"],
            "bt_nightly": ["idle_suspend", "84.000", "3.183", "80.817", "8", "7", "7", "120s"],
            "bt_sources": ["idle_suspend", "42.000", "42.000", "0.000", "0", "0", "0", "-"],
        }
        body = driver.find_element("tag name", "body").text
        assert "366.000 credits recorded" in body and "91.833 simulated" in body
        assert "Not replayed" in body
        outside = [u for u in _requests(driver) if not u.startswith(("file:", "data:", "blob:"))]
        assert outside == [], outside
    finally:
        driver.save_screenshot(str(ARTIFACTS / "backtest-html.png"))
