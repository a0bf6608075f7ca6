"""The cost report in the real browser (issue 20): the self-contained HTML file of
``mz-schedctl report --html`` opened from disk (file://) in headless Chromium, and the
"Materialize clusters" page of Airflow 3.3 (the plugin's nav entry, its page in the UI's frame),
both over the known history of tests/cost_history.py. Screenshots: artifacts/browser/
cost-report-html.png and cost-report-airflow.png.

Fixtures and helpers come from test_airflow_ui.py (a real ``airflow standalone`` whose
``materialize_default`` is AIRFLOW_CONN_MATERIALIZE_DEFAULT, the same Chromium flags: no proxy,
no name resolution but 127.0.0.1); this module replaces only the emulator's setup.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from cost_history import FILTER, WINDOW_H, History, build_history
from test_airflow_ui import (  # fixtures and helpers, reused as they are
    ARTIFACTS,
    REPO,
    Airflow,
    Browser,
    Steps,
    _css,
    _until,
    _visible,
    airflow,
    browser,
    prerequisites,
)

__all__ = ["airflow", "browser", "prerequisites"]  # pytest finds the imported fixtures here

pytestmark = pytest.mark.timeout(900)
# Every chart of the three clusters drawn: plotly renders each figure into an svg.main-svg.
CHARTS = ".plotly-graph-div .main-svg"


@pytest.fixture(scope="module")
def demo_emulator(prerequisites: None, emulator: Any) -> Any:
    """Replaces test_airflow_ui's setup: the controller's tables and the known history."""
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    db = Database.connect(emulator.url)
    try:
        Store(db).bootstrap()
    finally:
        db.close()
    emulator.history = build_history(emulator)
    return emulator


def _charts_drawn(driver: Any, count: int) -> Any:
    def probe(_: Any) -> Any:
        return (
            len(_css(driver, ".plotly-graph-div")) >= count and len(_css(driver, CHARTS)) >= count
        )

    return probe


def test_html_report_opens_from_disk(
    demo_emulator: Any, airflow: Airflow, browser: Browser
) -> None:
    history: History = demo_emulator.history
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = ARTIFACTS / "cost-report.html"
    done = subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.cli", "report",
         "--database-url", demo_emulator.url, "--hours", str(WINDOW_H),
         "--until", history.until.isoformat(), "--filter-clusters", FILTER, "--html", str(page)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    driver = browser.driver
    steps = Steps(browser=browser, airflow=airflow)
    with steps.step("cost-report-html"):
        browser.drain_network_log()
        browser.requests.clear()
        driver.get(page.as_uri())
        _until(driver, "the three clusters' charts", _charts_drawn(driver, 3))
        assert driver.execute_script("return typeof window.Plotly") == "object"
        text = driver.find_element("tag name", "body").text
        for figure in ("cost_a", "cost_b", "cost_c", "7.875"):
            assert figure in text, figure
        browser.drain_network_log()
        # Opened with no network at all: every request the page made was for the file itself.
        outside = [u for u in browser.requests if not u.startswith(("file:", "data:", "blob:"))]
        assert outside == [], outside
        steps.shot("cost-report-html")


def test_airflow_page_in_the_nav(demo_emulator: Any, airflow: Airflow, browser: Browser) -> None:
    from selenium.webdriver.common.by import By

    driver = browser.driver
    steps = Steps(browser=browser, airflow=airflow)
    with steps.step("cost-report-airflow"):
        driver.get(f"{airflow.url}/dags")
        link = _until(
            driver,
            "the 'Materialize clusters' nav entry",
            _visible(driver, 'a[href*="plugin/materialize-clusters"]'),
        )
        link.click()
        frame = _until(driver, "the page's frame", _visible(driver, "iframe"))
        driver.switch_to.frame(frame)
        try:
            # The default window (24 h to now) holds the whole history.
            _until(driver, "the page's charts", _charts_drawn(driver, 3))
            body = driver.find_element(By.TAG_NAME, "body").text
            assert "Data: connection materialize_default (127.0.0.1:" in body
            for name in ("cost_a", "cost_b", "cost_c"):
                assert name in body, name
        finally:
            driver.switch_to.default_content()
        # The frame's charts are drawn: a full-window shot shows the page inside Airflow.
        steps.shot("cost-report-airflow")
