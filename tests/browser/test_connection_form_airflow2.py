"""Airflow 2.11's connection form for a Materialize connection, in headless Chromium (issue 18).

The webserver is the 2.11 one (``.venv-airflow2/bin/airflow webserver``, its own AIRFLOW_HOME,
SQLite, ``AIRFLOW__CORE__TEST_CONNECTION=Enabled`` as the README says); the browser and
Selenium are this interpreter's (.venv-airflow3), as for the Airflow 3.3 test. Steps:

1. the add form of type Materialize with every optional extra left blank: Save works (it
   failed while the integer extras were blank) and the saved connection holds no blank extra;
2. the form with the extras filled (integers, sslmode, schema, timeout): Test reports
   "Connection successfully tested" (it failed with ``invalid connection option
   "extra__materialize__lease_ttl_s"`` once any extra was filled: the form posts its prefixed
   keys and they reached libpq), then Save stores them under their plain names.

Screenshots land in artifacts/browser/airflow2-*.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_airflow_ui import (
    ARTIFACTS,
    CHROMEDRIVER,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_S,
    REPO,
    _css,
    _free_port,
    _preflight,
    _stop_session,
    _until,
    _visible,
    _wait,
)

pytestmark = pytest.mark.timeout(600)

AIRFLOW2 = REPO / ".venv-airflow2" / "bin" / "airflow"
BOOT_S = 240  # db migrate, users create and the webserver's first worker on a loaded machine
USER, PASSWORD = "admin", "admin-browser-test"  # a throwaway local user of a temp AIRFLOW_HOME


@pytest.fixture(scope="module")
def webserver2(emulator: Any) -> Iterator[dict[str, Any]]:
    _preflight()
    if not AIRFLOW2.exists():
        pytest.fail(f"{AIRFLOW2} is missing (scripts/airflow-venv.sh 2.11 builds it)")
    home = Path(tempfile.mkdtemp(prefix="mz-schedctl-browser-airflow2-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MZ_SCHEDCTL_"))}
    env.update(
        {
            "PATH": f"{AIRFLOW2.parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",  # the README's setting
            "AIRFLOW__WEBSERVER__WORKERS": "1",
            "AIRFLOW__WEBSERVER__SECRET_KEY": "browser-test-only",
            "AIRFLOW__WEBSERVER__WARN_DEPLOYMENT_EXPOSURE": "False",
            "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
        }
    )
    log = home / "webserver.log"
    proc = None
    started = time.monotonic()
    try:
        for args in (
            ["db", "migrate"],
            ["users", "create", "--role", "Admin", "--username", USER, "--password", PASSWORD,
             "--email", "admin@example.invalid", "--firstname", "A", "--lastname", "B"],
        ):  # fmt: skip
            done = subprocess.run(
                [str(AIRFLOW2), *args], env=env, capture_output=True, text=True, timeout=BOOT_S
            )
            assert done.returncode == 0, f"airflow {args[0]}: {done.stdout}\n{done.stderr}"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(AIRFLOW2), "webserver", "--hostname", "127.0.0.1", "--port", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"webserver exited: {log.read_text()[-3000:]}")
            import urllib.request

            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"{url}/health", timeout=5) as resp:
                return resp.status == 200

        _wait(f"the Airflow 2.11 webserver on port {port}", BOOT_S, up, 1)
        print(f"\nAirflow 2.11 webserver up after {time.monotonic() - started:.0f} s")
        yield {"url": url, "env": env, "home": home, "log": log, "emulator": emulator}
    finally:
        _stop_session(proc)
        if log.exists():
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, ARTIFACTS / "airflow2-webserver.log")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def driver(webserver2: dict[str, Any]) -> Iterator[Any]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="mz-schedctl-chromium2-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile / 'profile'}")
    service = Service(
        str(CHROMEDRIVER),
        log_output=str(profile / "chromedriver.log"),
        popen_kw={"start_new_session": True},
    )
    drv = None
    try:
        drv = webdriver.Chrome(service=service, options=options)
        drv.set_page_load_timeout(PAGE_S)
        yield drv
    finally:
        if drv is not None:
            with contextlib.suppress(Exception):
                drv.quit()
        with contextlib.suppress(Exception):
            service.stop()
        _stop_session(getattr(service, "process", None), grace_s=5)
        shutil.rmtree(profile, ignore_errors=True)


def _shot(drv: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # The whole form: the window grows to the page's height first.
    height = drv.execute_script("return document.body.scrollHeight")
    drv.set_window_size(1440, max(1000, int(height) + 120))
    assert drv.save_screenshot(str(path)), path
    return path


def _saved(webserver2: dict[str, Any], conn_id: str) -> dict[str, Any]:
    """The stored connection, read back with the 2.11 CLI (not through the form)."""
    done = subprocess.run(
        [str(AIRFLOW2), "connections", "get", conn_id, "--output", "json"],
        env=webserver2["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    start = done.stdout.index("[")
    (row,) = json.JSONDecoder().raw_decode(done.stdout[start:])[0]
    return dict(row)


def _fill(drv: Any, values: dict[str, str]) -> None:
    for field_id, value in values.items():
        (element,) = _css(drv, f"#{field_id}")
        element.clear()
        element.send_keys(value)


def _open_add_form(drv: Any, url: str) -> None:
    drv.get(f"{url}/connection/add")
    _until(drv, "the connection form", _visible(drv, "#conn_id"))
    # conn_type is a Select2 dropdown: set the value and fire the change the form listens to.
    drv.execute_script("$('#conn_type').val('materialize').trigger('change');")
    _until(drv, "the Materialize extras", _visible(drv, "#extra__materialize__cluster"))


def _text(drv: Any, text: str) -> Any:
    return lambda d: text in d.find_element("tag name", "body").text


def _save(drv: Any) -> None:
    """Click Save; the form is accepted when Airflow flashes "Added Row" (it then redirects to
    the page it came from)."""
    drv.find_element("css selector", "#model_form button[type=submit]").click()
    _until(drv, "the 'Added Row' message after Save", _text(drv, "Added Row"))


def _failed(drv: Any, step: str) -> str:
    with contextlib.suppress(Exception):
        path = _shot(drv, f"FAILED-airflow2-{step}")
        (ARTIFACTS / f"FAILED-airflow2-{step}.html").write_text(drv.page_source)
        return f"{step} failed at {drv.current_url}; screenshot {path}"
    return f"{step} failed"


def test_airflow2_form_saves_blank_optional_fields_and_tests_with_extras(
    webserver2: dict[str, Any], driver: Any
) -> None:
    from selenium.webdriver.common.by import By

    url = webserver2["url"]
    port = str(webserver2["emulator"].port)
    base = {"host": "127.0.0.1", "port": port, "login": "materialize", "schema": "materialize"}
    step = "login"
    try:
        driver.get(f"{url}/login/")
        _fill(driver, {"username": USER, "password": PASSWORD})
        driver.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
        _until(driver, "the home page after login", lambda d: "/login" not in d.current_url)

        # 1. Every optional extra blank: Save stores the connection.
        step = "save-blank"
        _open_add_form(driver, url)
        _fill(driver, {"conn_id": "mz_form_blank", **base})
        for name in ("lease_ttl_s", "audit_retention_days", "statement_timeout", "sslmode"):
            (field,) = _css(driver, f"#extra__materialize__{name}")
            assert field.get_attribute("value") == "", name
        _shot(driver, "airflow2-01-form-blank-optional-fields")
        _save(driver)
        driver.get(f"{url}/connection/list/")
        _until(driver, "the saved connection in the list", _text(driver, "mz_form_blank"))
        _shot(driver, "airflow2-02-saved-with-blank-optional-fields")
        saved = _saved(webserver2, "mz_form_blank")
        assert saved["conn_type"] == "materialize"
        extra = saved.get("extra_dejson") or {}
        # Blank integers are stored as null, the unticked box as False: nothing set.
        assert not [k for k, v in extra.items() if v not in (None, False, "False")], extra

        # 2. Extras filled: Test passes (every check named), then Save.
        step = "test-with-extras"
        _open_add_form(driver, url)
        _fill(
            driver,
            {
                "conn_id": "mz_form_filled",
                **base,
                "extra__materialize__cluster": "quickstart",
                "extra__materialize__sslmode": "disable",
                "extra__materialize__table_schema": "public",
                "extra__materialize__statement_timeout": "60",
                "extra__materialize__lease_ttl_s": "600",
                "extra__materialize__audit_retention_days": "3",
            },
        )
        driver.find_element(By.CSS_SELECTOR, "#test-connection").click()
        alert = _until(driver, "the Test result", _visible(driver, ".container .row .alert"))
        _until(
            driver, "the Test message", lambda d: "tested" in alert.text or "ready" in alert.text
        )
        assert "Connection successfully tested" in alert.text, alert.text
        assert "invalid connection option" not in alert.text
        assert "ok: session cluster: quickstart" in alert.text, alert.text
        _shot(driver, "airflow2-03-test-passed-with-extras")
        _save(driver)
        filled = _saved(webserver2, "mz_form_filled")["extra_dejson"]
        # Airflow 2 stores form values as text; the hook reads them as numbers.
        assert (str(filled["lease_ttl_s"]), str(filled["audit_retention_days"])) == ("600", "3")
        assert filled["sslmode"] == "disable" and filled["cluster"] == "quickstart", filled
        assert not [k for k in filled if k.startswith("extra__")], filled
    except Exception as exc:
        raise AssertionError(f"{_failed(driver, step)}: {exc}") from exc
