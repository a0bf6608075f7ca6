"""The mz_schedctl_cycle DAG driven through Airflow 3's own web UI (issue 5, part 4).

A real ``airflow standalone`` (SQLite, its own AIRFLOW_HOME in a temp dir, the shipped
``dags/`` folder, the Materialize emulator as ``materialize_default``) and headless Debian
Chromium driven by Debian's ChromeDriver through Selenium:

1. the DAG list shows ``mz_schedctl_cycle``; open the DAG's page;
2. open the trigger form, tick ``dry_run``, trigger; the run page shows the run succeed;
3. the REST API agrees (run ``success``, conf ``dry_run: true``, every task succeeded, the
   plan had actions) and the emulator is untouched (same clusters and replicas, no audit, no
   state, no lease rows);
4. screenshots of each step land in ``artifacts/browser/`` (gitignored); a failing step adds
   ``FAILED-<step>.png``/``.html`` and the standalone log there.

Run it with ``scripts/test-browser.sh`` (installs Chromium/ChromeDriver when missing, then runs
this file in .venv-airflow3). Skipped only where /usr/bin/chromium is missing and CI is unset;
under CI a missing browser fails the test. Outside an interpreter with Airflow and Selenium
(the main .venv) the module is skipped, unless MZ_SCHEDCTL_BROWSER_REQUIRED=1 (set by
scripts/test-browser.sh) makes that a failure too.

Selectors are Airflow 3.3's own ``data-testid`` attributes and form field names
(``element_<param>``), read from the shipped UI bundle; the one piece of visible text matched is
the run's state badge ("Success"), with the browser's language pinned to en-US.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DAG_ID = "mz_schedctl_cycle"
TASKS = ("signals", "decide", "apply", "persist")
# A dry run's task states: apply executed nothing, so it is skipped (the grid tells run kinds
# apart by apply's colour: skipped, success, failed).
DRY_RUN_STATES = {
    "signals": "success",
    "decide": "success",
    "apply": "skipped",
    "persist": "success",
}

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
# scripts/test-browser.sh sets this: there, a missing Python module fails instead of skipping.
REQUIRED = os.environ.get("MZ_SCHEDCTL_BROWSER_REQUIRED", "") == "1"

# Bounded waits (seconds): generous for a loaded 2-core machine, never open-ended.
AIRFLOW_BOOT_S = 300  # standalone: db migrate, api-server, scheduler, dag-processor, DAG parsed
PAGE_S = 60  # a page or dialog of the React UI renders
RUN_S = 300  # the dry-run DAG run reaches a final state (about 10 s when healthy)
UI_CATCH_UP_S = 45  # the run page shows a state the API already reports (it polls every 3 s)

# ---- what this interpreter and machine have ------------------------------------------------

# Airflow itself is never imported here (it would read its configuration at import): the test
# needs only this venv's `airflow` command, for `airflow standalone`.
AIRFLOW_CMD = Path(sys.executable).with_name("airflow")
_missing = [
    *(["selenium"] if importlib.util.find_spec("selenium") is None else []),
    *([f"{AIRFLOW_CMD} (apache-airflow)"] if not AIRFLOW_CMD.exists() else []),
]
if _missing and not REQUIRED:
    pytest.skip(
        f"missing in this interpreter's venv: {', '.join(_missing)} (the browser test runs in "
        ".venv-airflow3: use scripts/test-browser.sh)",
        allow_module_level=True,
    )
if not CHROMIUM.exists() and not IN_CI:
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install chromium chromium-driver, or run "
        "scripts/test-browser.sh, which installs them); with CI set this fails instead",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(900)


def _preflight() -> None:
    """Fail (never skip) with a clear message when something the test needs is missing."""
    problems = []
    if _missing:
        problems.append(
            f"missing next to {sys.executable}: {', '.join(_missing)} "
            "(scripts/test-browser.sh installs selenium into .venv-airflow3)"
        )
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            problems.append(f"{path} is missing (apt-get install -y {package})")
    if problems:
        pytest.fail(
            "browser test prerequisites missing"
            + (" under CI" if IN_CI else "")
            + ":\n  "
            + "\n  ".join(problems),
            pytrace=False,
        )


# ---- processes --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_members(sid: int) -> list[int]:
    """Every live process of session ``sid`` (a process started with start_new_session=True
    leads its own session; its descendants stay in it even when they change process group, as
    Airflow's task supervisor does)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _stop_session(proc: subprocess.Popen[Any] | None, grace_s: float = 30) -> None:
    """SIGTERM the process group of ``proc`` (a session leader), wait, then SIGKILL whatever
    is left in its session. Only processes this test started are touched."""
    if proc is None:
        return
    sid = proc.pid
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    deadline = time.monotonic() + 10
    while (left := _session_members(sid)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


# ---- the emulator: the demo's clusters -----------------------------------------------------

# name: (replicas, strategy rows), as in scripts/demo.py: a real (non-dry) cycle would change
# analytics (resize to 100cc) and reporting (a burst replica) right away.
DEMO_CLUSTERS: dict[str, tuple[str, list[tuple[str, dict[str, Any]]]]] = {
    "analytics": ("r1 (SIZE = '25cc')", [("target_size", {"target_size": "100cc"})]),
    "reporting": (
        "r_50cc (SIZE = '50cc')",
        [
            ("target_size", {"target_size": "50cc"}),
            ("burst", {"burst_replica_size": "800cc", "max_burst_s": 3600}),
        ],
    ),
    "adhoc": ("r1 (SIZE = '25cc')", [("idle_suspend", {"idle_after_s": 1800})]),
}
CONTROLLER_TABLES = (
    "mz_cluster_strategies",
    "mz_cluster_strategy_state",
    "mz_cluster_strategy_actions",
    "mz_cluster_strategy_leases",
    "mz_cluster_strategy_alerts",
)


def _setup_demo(emu: Any) -> None:
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    emu.execute("CREATE TABLE orders (id int, amount numeric)")
    for name, (replicas, _) in DEMO_CLUSTERS.items():
        emu.execute(f"CREATE CLUSTER {name} REPLICAS ({replicas})")
    emu.execute(
        "CREATE MATERIALIZED VIEW revenue IN CLUSTER analytics AS SELECT sum(amount) FROM orders"
    )
    emu.execute(
        "CREATE MATERIALIZED VIEW daily IN CLUSTER reporting AS SELECT count(*) FROM orders"
    )
    emu.execute("SELECT mz_emulator.set_hydration_delay('reporting', '28 minutes')")
    db = Database.connect(emu.url)
    try:
        Store(db).bootstrap()  # what `mz-schedctl init` does
    finally:
        db.close()
    for name, (_, strategies) in DEMO_CLUSTERS.items():
        (cluster_id,) = emu.execute("SELECT id FROM mz_clusters WHERE name = %s", (name,))[0]
        for kind, config in strategies:
            emu.execute(
                "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
                " VALUES (%s, %s, %s::jsonb)",
                (cluster_id, kind, json.dumps(config)),
            )
    emu.record_activity("adhoc")
    emu.advance(120)  # analytics' r1 is hydrated, so its resize is due


def _snapshot(emu: Any) -> dict[str, Any]:
    """Everything a cycle could change: clusters, replicas, the controller's tables."""
    snap: dict[str, Any] = {
        "clusters": sorted(emu.execute("SELECT id, name FROM mz_catalog.mz_clusters")),
        "replicas": sorted(
            emu.execute(
                "SELECT c.name, r.name, r.size FROM mz_catalog.mz_cluster_replicas r"
                " JOIN mz_catalog.mz_clusters c ON c.id = r.cluster_id"
            )
        ),
    }
    for table in CONTROLLER_TABLES:
        rows = emu.execute(f"SELECT * FROM {table}")
        snap[table] = sorted(json.dumps(row, default=str) for row in rows)
    return snap


@pytest.fixture(scope="module")
def prerequisites() -> None:
    _preflight()


@pytest.fixture(scope="module")
def demo_emulator(prerequisites: None, emulator: Any) -> Any:
    """The module's emulator (tests/conftest.py) with the demo's clusters and strategy rows."""
    _setup_demo(emulator)
    return emulator


# ---- airflow standalone ----------------------------------------------------------------


@dataclass
class Airflow:
    home: Path
    port: int
    proc: subprocess.Popen[Any]
    log: Path
    boot_s: float = 0.0
    _token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 15) -> Any:
        """JSON from Airflow's REST API. With SIMPLE_AUTH_MANAGER_ALL_ADMINS no token is needed;
        on a 401 this fetches one from POST /auth/token with the generated admin password."""
        for attempt in (1, 2):
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with _NO_PROXY.open(req, timeout=timeout) as resp:
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 1:
                    self._token = self._fetch_token()
                    continue
                detail = exc.read().decode(errors="replace")[:500]
                raise AssertionError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        raise AssertionError("unreachable")

    def _fetch_token(self) -> str:
        generated = self.home / "simple_auth_manager_passwords.json.generated"
        users = json.loads(generated.read_text()) if generated.exists() else {}
        if not users:
            raise AssertionError(f"REST API answered 401 and {generated} holds no password")
        username, password = next(iter(users.items()))
        req = urllib.request.Request(
            self.url + "/auth/token",
            data=json.dumps({"username": username, "password": password}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _NO_PROXY.open(req, timeout=15) as resp:
            return str(json.loads(resp.read())["access_token"])

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no standalone log)"
        return "\n".join(text[-lines:])

    def task_log_tails(self, run_id: str, lines: int = 25) -> str:
        run_dir = self.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        out = []
        for path in sorted(run_dir.glob("task_id=*/attempt=*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.relative_to(run_dir)}\n" + "\n".join(text))
        return "\n".join(out) or f"(no task logs under {run_dir})"


# Local HTTP only: never through a proxy named in the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _airflow_env(home: Path, port: int, emulator_port: int) -> dict[str, str]:
    # Nothing Airflow- or mz-schedctl-specific leaks in from the calling environment (e.g.
    # tests/airflow's afsupport sets AIRFLOW__CORE__DAGS_FOLDER in-process).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MZ_SCHEDCTL_"))}
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        {
            # standalone starts its components as `airflow ...` found on PATH.
            "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # local test only
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            # Task processes reach the Execution API at localhost:8080 unless told otherwise.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW_CONN_MATERIALIZE_DEFAULT": json.dumps(
                {
                    "conn_type": "materialize",
                    "host": "127.0.0.1",
                    "port": emulator_port,
                    "login": "materialize",
                    "schema": "materialize",
                    "extra": {"cluster": "quickstart"},
                }
            ),
            "MZ_SCHEDCTL_SCHEDULE": "none",  # manual runs only: the UI's run is the only one
            "MZ_SCHEDCTL_RETRY_DELAY_S": "2",
            "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
        }
    )
    return env


def _wait(what: str, timeout: float, probe: Callable[[], Any], interval: float = 0.5) -> Any:
    """Poll ``probe`` until it returns something truthy; AssertionError after ``timeout``.
    A probe may raise AssertionError to give up early with its own message."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except AssertionError:
            raise
        except Exception as exc:  # not up yet (connection refused, 404, ...)
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; last: {last}"
            )
        time.sleep(interval)


@pytest.fixture(scope="module")
def airflow(prerequisites: None, demo_emulator: Any) -> Iterator[Airflow]:
    home = Path(tempfile.mkdtemp(prefix="mz-schedctl-browser-airflow-"))
    port = _free_port()
    log = home / "standalone.log"
    started = time.monotonic()
    proc = None
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(AIRFLOW_CMD), "standalone"],
                env=_airflow_env(home, port, demo_emulator.port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group and session, killed in teardown
            )
        af = Airflow(home=home, port=port, proc=proc, log=log)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"airflow standalone exited with {proc.returncode}:\n{af.log_tail()}"
                )
            health = af.api("GET", "/api/v2/monitor/health", timeout=5)
            for part in ("metadatabase", "scheduler", "dag_processor"):
                if (health.get(part) or {}).get("status") != "healthy":
                    return False
            errors = af.api("GET", "/api/v2/importErrors")
            if errors.get("total_entries"):
                raise AssertionError(f"DAG import errors: {json.dumps(errors, indent=1)[:2000]}")
            return bool(af.api("GET", f"/api/v2/dags/{DAG_ID}", timeout=5).get("dag_id"))

        try:
            _wait(
                f"airflow standalone on port {port} with {DAG_ID} parsed", AIRFLOW_BOOT_S, ready, 1
            )
        except AssertionError as exc:
            _keep(log, "airflow-standalone.log")
            raise AssertionError(f"{exc}\n--- standalone log tail:\n{af.log_tail()}") from None
        af.boot_s = time.monotonic() - started
        yield af
    finally:
        _stop_session(proc)
        shutil.rmtree(home, ignore_errors=True)


def _keep(path: Path, name: str) -> Path | None:
    """Copy a file into the artifacts folder (AIRFLOW_HOME is deleted in teardown)."""
    if not path.exists():
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(path, ARTIFACTS / name))


# ---- the browser --------------------------------------------------------------------------

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # Never dial out: no proxy from the environment, no extensions (Debian's wrapper loads
    # some), no name resolution at all: every host but 127.0.0.1 maps to "not found".
    "--no-proxy-server",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--dns-prefetch-disable",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--lang=en-US",  # the UI follows the browser's language; the state badge is matched as text
    "--window-size=1440,1000",
)


@dataclass
class Browser:
    driver: Any
    service: Any
    profile: Path
    requests: list[str] = field(default_factory=list)

    def drain_network_log(self) -> None:
        """Collect every URL the page requested (Chrome's performance log)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])


@pytest.fixture(scope="module")
def browser(airflow: Airflow) -> Iterator[Browser]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="mz-schedctl-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile / 'profile'}")
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(
        str(CHROMEDRIVER),  # an explicit path: Selenium Manager is never consulted
        log_output=str(profile / "chromedriver.log"),
        popen_kw={"start_new_session": True},  # chromedriver and Chromium: one session to kill
    )
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(PAGE_S)
        yield Browser(driver=driver, service=service, profile=profile)
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.quit()
        with contextlib.suppress(Exception):
            service.stop()
        _stop_session(getattr(service, "process", None), grace_s=5)
        shutil.rmtree(profile, ignore_errors=True)


# ---- steps -------------------------------------------------------------------------------


@dataclass
class Steps:
    """Named steps: timed, and on failure a screenshot, the page's HTML and the logs saved to
    artifacts/browser/ and named in the error."""

    browser: Browser
    airflow: Airflow
    timings: dict[str, float] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except (Exception, pytest.fail.Exception) as exc:  # the latter: pytest-timeout's
            raise AssertionError(self._failure(name, exc)) from exc
        finally:
            self.timings[name] = time.monotonic() - started

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        assert self.browser.driver.save_screenshot(str(path)), f"screenshot {path} not written"
        self.screenshots.append(path)
        return path

    def _failure(self, name: str, exc: BaseException) -> str:
        lines = [f"browser step {name!r} failed: {type(exc).__name__}: {exc}"]
        driver = self.browser.driver
        with contextlib.suppress(Exception):
            lines.append(f"page: {driver.current_url}")
            lines.append(f"screenshot: {self.shot('FAILED-' + name)}")
            html = ARTIFACTS / f"FAILED-{name}.html"
            html.write_text(driver.page_source)
            lines.append(f"page source: {html}")
        if self.run_id:
            with contextlib.suppress(Exception):
                tis = self.airflow.api(
                    "GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(self.run_id)}/taskInstances"
                )
                lines.append(
                    "task states (API): "
                    + ", ".join(f"{t['task_id']}={t['state']}" for t in tis["task_instances"])
                )
            lines.append("--- task logs:\n" + self.airflow.task_log_tails(self.run_id))
        kept = _keep(self.airflow.log, "airflow-standalone.log")
        lines.append(f"--- standalone log ({kept}), tail:\n{self.airflow.log_tail(25)}")
        return "\n".join(lines)


def _q(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def _css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _until(driver: Any, what: str, condition: Callable[[Any], Any], timeout: float = PAGE_S) -> Any:
    """WebDriverWait with a message that says what was awaited."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(
        driver, timeout, poll_frequency=0.25, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        return wait.until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


def _visible(driver: Any, selector: str) -> Callable[[Any], Any]:
    def probe(_: Any) -> Any:
        found = [e for e in _css(driver, selector) if e.is_displayed()]
        return found[0] if found else False

    return probe


# ---- the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """A clean artifacts/browser/ for this module's screenshots."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


def test_dry_run_triggered_from_the_ui(
    artifacts: Path,
    demo_emulator: Any,
    airflow: Airflow,
    browser: Browser,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    driver = browser.driver
    steps = Steps(browser=browser, airflow=airflow)
    before = _snapshot(demo_emulator)
    assert before["mz_cluster_strategies"], "the demo setup wrote no strategy rows"
    dag = airflow.api("GET", f"/api/v2/dags/{DAG_ID}")
    assert dag["is_paused"] is False, f"{DAG_ID} is paused: a triggered run would stay queued"
    assert airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["total_entries"] == 0

    # 1. The DAG list shows the DAG; its link opens the DAG's page.
    with steps.step("dags-list"):
        driver.get(f"{airflow.url}/dags")
        link = _until(
            driver,
            f"the {DAG_ID} card on the DAG list",
            _visible(driver, f'a[data-testid="dag-id"][href$="/dags/{DAG_ID}"]'),
        )
        assert link.text.strip() == DAG_ID, f"DAG link text {link.text!r}"
        steps.shot("01-dags-list")
        link.click()
        _until(driver, "the DAG page URL", lambda d: d.current_url.endswith(f"/dags/{DAG_ID}"))
        _until(
            driver,
            "the DAG page's heading",
            lambda d: any(h.text.strip() == DAG_ID for h in d.find_elements(By.TAG_NAME, "h2")),
        )
        trigger = _until(
            driver,
            "the DAG page's Trigger button",
            _visible(driver, '[data-testid="trigger-dag-button"]'),
        )
        steps.shot("02-dag-page")

    # 2. The trigger form: tick dry_run, fill the filter, trigger.
    with steps.step("trigger-form"):
        _until(driver, "the Trigger button to be enabled", lambda d: trigger.is_enabled())
        trigger.click()
        dialog = _until(
            driver, "the trigger dialog", _visible(driver, '[role="dialog"][data-state="open"]')
        )
        heading = dialog.find_element(By.TAG_NAME, "h2").text
        assert DAG_ID in heading, f"dialog heading {heading!r}"
        dry_run = _until(
            driver,
            "the dry_run switch",
            lambda d: dialog.find_element(By.CSS_SELECTOR, 'input[name="element_dry_run"]'),
        )
        assert not dry_run.is_selected(), "dry_run is ticked before anyone ticked it"
        # The checkbox itself is visually hidden; its switch (the enclosing label) takes clicks.
        switch = dry_run.find_element(By.XPATH, "./ancestor::label[1]")
        _until(driver, "the dry_run switch to be clickable", lambda d: switch.is_displayed())
        switch.click()
        _until(driver, "dry_run to be ticked", lambda d: dry_run.is_selected())
        assert switch.get_attribute("data-state") == "checked", "switch does not show as ticked"
        submit = dialog.find_element(By.CSS_SELECTOR, '[data-testid="trigger-dag-submit"]')
        _until(driver, "the dialog's Trigger button to be enabled", lambda d: submit.is_enabled())
        steps.shot("03-trigger-form")
        submit.click()

    # 3. The UI goes to the new run's page; the run's state badge turns to Success.
    with steps.step("run-page"):
        match = _until(
            driver,
            "the new run's page",
            lambda d: re.search(rf"/dags/{DAG_ID}/runs/([^/?#]+)$", d.current_url),
        )
        run_id = steps.run_id = urllib.parse.unquote(match.group(1))
        badge_css = '[data-testid="header-card"] [data-testid="state-badge"]'
        _until(driver, "the run's state badge", _visible(driver, badge_css))
        triggered = time.monotonic()

        def api_final_state() -> Any:
            run = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}")
            tis = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/taskInstances")[
                "task_instances"
            ]
            bad = [
                f"{t['task_id']}={t['state']}"
                for t in tis
                if t["state"] in ("failed", "up_for_retry", "upstream_failed")
            ]
            if bad or run["state"] == "failed":
                raise AssertionError(f"run {run_id} is {run['state']}: {', '.join(bad)}")
            return run["state"] if run["state"] == "success" else None

        _wait(f"run {run_id} to succeed (REST API)", RUN_S, api_final_state, 1)
        run_s = time.monotonic() - triggered

        def badge_says_success(d: Any) -> bool:
            texts = [e.text.strip().lower() for e in _css(d, badge_css) if e.is_displayed()]
            return "success" in texts

        # The run page polls while the run is active; it must show the final state by itself.
        _until(driver, "the run page to show Success", badge_says_success, UI_CATCH_UP_S)

        def task_table_all_success(d: Any) -> bool:
            texts = [e.text.strip().lower() for e in _css(d, task_badges_css)]
            return sorted(texts) == sorted(DRY_RUN_STATES.values())

        # The task table polls on its own and can lag the header by one poll.
        task_badges_css = '[data-testid="table-list"] [data-testid="state-badge"]'
        try:
            _until(
                driver, "the task table to show the dry run's states", task_table_all_success, 20
            )
        except AssertionError:
            steps.notes.append("the task table lagged the run's badge: page reloaded once")
            driver.refresh()
            _until(driver, "the reloaded task table: the dry run's states", task_table_all_success)
        headings = " ".join(h.text for h in driver.find_elements(By.TAG_NAME, "h2"))
        assert run_id in headings, f"run page headings {headings!r} lack {run_id}"
        steps.shot("04-run-success")

    # 4. The REST API: state, conf, tasks, the plan; the emulator: unchanged.
    with steps.step("rest-api-and-emulator"):
        runs = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")
        assert runs["total_entries"] == 1, f"expected exactly the UI's run: {runs}"
        run = runs["dag_runs"][0]
        assert run["dag_run_id"] == run_id, (run["dag_run_id"], run_id)
        assert run["state"] == "success", run
        assert run["run_type"] == "manual", run
        assert run["conf"].get("dry_run") is True, f"conf {run['conf']}"
        # The form sends the untouched filter as "" (or leaves it out): all clusters.
        assert run["conf"].get("filter_clusters") in ("", None), f"conf {run['conf']}"
        tis = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/taskInstances")[
            "task_instances"
        ]
        states = {t["task_id"]: t["state"] for t in tis}
        assert states == DRY_RUN_STATES, states
        plan = airflow.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/taskInstances/decide/xcomEntries/"
            "return_value?deserialize=true&stringify=false",
        )["value"]
        planned = {c["cluster_name"]: c["actions"] for c in plan["clusters"]}
        # The dry run saw real work to do: without dry_run it would have resized analytics.
        assert planned.get("analytics"), f"no action planned for analytics: {plan}"
        after = _snapshot(demo_emulator)
        assert after["replicas"] == before["replicas"], (before["replicas"], after["replicas"])
        assert after == before, "the dry run changed the emulator"
        assert after["mz_cluster_strategy_actions"] == [], "audit rows written by a dry run"

    # The page never asked anything of another host.
    browser.drain_network_log()
    hosts = {urllib.parse.urlsplit(u).hostname for u in browser.requests if u.startswith("http")}
    assert hosts == {"127.0.0.1"}, f"the browser requested other hosts: {sorted(map(str, hosts))}"

    total = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\nbrowser test: airflow standalone ready in {airflow.boot_s:.1f} s;"
            f" UI steps + run {total:.1f} s (run {run_id} took {run_s:.1f} s to succeed)"
        )
        print("  steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.timings.items()))
        print(f"  page requests: {len(browser.requests)}, all to 127.0.0.1")
        for note in steps.notes:
            print(f"  note: {note}")
        for path in steps.screenshots:
            print(f"  screenshot: {path}")


class TriggerDisabled(AssertionError):
    """The trigger form refuses to submit. Airflow 3.3's form sends an empty text field as
    null: a Param typed only "string" would keep Trigger disabled until a filter is typed."""


def test_trigger_form_accepts_empty_filter_clusters(
    artifacts: Path, airflow: Airflow, browser: Browser
) -> None:
    """Ticking dry_run alone must be enough to trigger (filter_clusters left at its default).
    Submits nothing: it only looks at the form's Trigger button."""
    from selenium.webdriver.common.by import By

    driver = browser.driver
    driver.get(f"{airflow.url}/dags/{DAG_ID}")
    trigger = _until(
        driver, "the Trigger button", _visible(driver, '[data-testid="trigger-dag-button"]')
    )
    _until(driver, "the Trigger button to be enabled", lambda d: trigger.is_enabled())
    trigger.click()
    dialog = _until(
        driver, "the trigger dialog", _visible(driver, '[role="dialog"][data-state="open"]')
    )
    dry_run = _until(
        driver,
        "the dry_run switch",
        lambda d: dialog.find_element(By.CSS_SELECTOR, 'input[name="element_dry_run"]'),
    )
    dry_run.find_element(By.XPATH, "./ancestor::label[1]").click()
    _until(driver, "dry_run to be ticked", lambda d: dry_run.is_selected())
    filter_input = dialog.find_element(By.CSS_SELECTOR, 'input[name="element_filter_clusters"]')
    assert filter_input.get_attribute("value") == "", "filter_clusters is not empty by default"
    submit = dialog.find_element(By.CSS_SELECTOR, '[data-testid="trigger-dag-submit"]')
    try:
        _until(driver, "Trigger to be enabled", lambda d: submit.is_enabled(), 10)
    except AssertionError as exc:
        shot = ARTIFACTS / "05-trigger-form-empty-filter.png"
        driver.save_screenshot(str(shot))
        raise TriggerDisabled(f"{exc} with filter_clusters empty (screenshot: {shot})") from None


def _run(airflow: Airflow, conf: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """Trigger a run through the REST API and wait for its end: (run id, state, task states)."""
    run_id = airflow.api(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf}
    )["dag_run_id"]

    def final() -> Any:
        run = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}")
        return run["state"] if run["state"] in ("success", "failed") else None

    end = _wait(f"run {run_id} to finish", RUN_S, final, 1)
    tis = airflow.api("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(run_id)}/taskInstances")
    return run_id, end, {t["task_id"]: t["state"] for t in tis["task_instances"]}


def _page_text(driver: Any, url: str, what: str, needle: str) -> str:
    from selenium.webdriver.common.by import By

    driver.get(url)

    def probe(d: Any) -> str | bool:
        text = str(d.find_element(By.TAG_NAME, "body").text)
        return text if needle in text else False

    return str(_until(driver, what, probe))


def test_run_kinds_summary_and_problem_in_the_ui(
    artifacts: Path, demo_emulator: Any, airflow: Airflow, browser: Browser
) -> None:
    """Issue 17's screens: a dry run, a held-back run (kill switch) and an applied run side by
    side in the grid (apply skipped, skipped, success), the applied run's summary XCom, and a
    failing run's problem in persist's log (a typo in one strategy row)."""
    driver = browser.driver
    steps = Steps(browser=browser, airflow=airflow)
    with steps.step("run-kinds"):
        _, end, dry = _run(airflow, {"dry_run": True})
        assert (end, dry) == ("success", DRY_RUN_STATES)
        airflow.api("POST", "/api/v2/variables", {"key": "mz_schedctl_paused", "value": "true"})
        try:
            _, end, held = _run(airflow, {})
        finally:
            airflow.api("DELETE", "/api/v2/variables/mz_schedctl_paused")
        assert (end, held["apply"]) == ("success", "skipped"), held
        applied_id, end, applied = _run(airflow, {})
        assert (end, applied) == ("success", dict.fromkeys(TASKS, "success")), applied
    with steps.step("summary-xcom"):
        summary = airflow.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{_q(applied_id)}/taskInstances/persist/xcomEntries/"
            "return_value?deserialize=true&stringify=false",
        )["value"]
        assert summary["kind"] == "applied", summary
        assert summary["actions"]["ran"] >= 1 and summary["actions"]["failed"] == 0, summary
        text = _page_text(
            driver,
            f"{airflow.url}/dags/{DAG_ID}/runs/{_q(applied_id)}/tasks/persist/xcom",
            "the applied run's summary XCom",
            "Summary: applied:",
        )
        assert "credits/h" in text, text[:500]
        steps.shot("06-applied-run-summary")
    with steps.step("failing-run"):
        (adhoc,) = demo_emulator.execute("SELECT id FROM mz_clusters WHERE name = 'adhoc'")[0]
        demo_emulator.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            """ VALUES (%s, 'burst', '{"burst_replica_size": "800xx"}'::jsonb)""",
            (adhoc,),
        )
        try:
            failed_id, end, failing = _run(airflow, {})
        finally:
            demo_emulator.execute(
                "DELETE FROM mz_cluster_strategies WHERE cluster_id = %s"
                " AND strategy_type = 'burst'",
                (adhoc,),
            )
        assert (end, failing["persist"]) == ("failed", "failed"), failing
        assert failing["apply"] in ("success", "skipped"), failing
        text = _page_text(
            driver,
            f"{airflow.url}/dags/{DAG_ID}/runs/{_q(failed_id)}/tasks/persist",
            "the failing run's problem in persist's log",
            "ALERT:",
        )
        assert "800xx" in text, text[-1500:]
        steps.shot("07-failing-run-problem")
    with steps.step("grid"):
        driver.get(f"{airflow.url}/dags/{DAG_ID}")
        _until(
            driver,
            "the DAG page's grid",
            _visible(driver, '[data-testid="trigger-dag-button"]'),
        )
        time.sleep(3)  # the grid's bars render after the page's first data poll
        steps.shot("08-grid-run-kinds")
