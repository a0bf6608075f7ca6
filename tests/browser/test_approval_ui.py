"""The approval gate in Airflow 3.3's web UI: a cycle with a gated drop starts the approval DAG;
its human-in-the-loop task waits on the Required actions page, which shows the plan (the
screenshots go to artifacts/browser/); answered through the HITL REST API (approve), the next
cycle runs the drop.

Reuses test_airflow_ui.py's helpers and its ``browser`` fixture; this module's own ``airflow``
fixture is the same ``airflow standalone`` with the approval gate on, and its own
``demo_emulator`` holds one idle cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_airflow_ui import (
    AIRFLOW_BOOT_S,
    AIRFLOW_CMD,
    ARTIFACTS,
    PAGE_S,
    RUN_S,
    Airflow,
    Steps,
    _airflow_env,
    _free_port,
    _keep,
    _stop_session,
    _until,
    _wait,
    browser,  # noqa: F401  (the fixture, over this module's airflow)
    prerequisites,  # noqa: F401
)

CYCLE = "mz_schedctl_cycle"
APPROVAL = "mz_schedctl_approval"
CLUSTER = "nightly"
GATE = {"MZ_SCHEDCTL_APPROVE_DROPS": "true", "MZ_SCHEDCTL_APPROVAL_TIMEOUT_S": "3600"}


@pytest.fixture(scope="module")
def demo_emulator(prerequisites: None, emulator: Any) -> Any:  # noqa: F811
    """One cluster idle long enough that idle_suspend drops its replica: a gated drop."""
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    emulator.execute("CREATE TABLE events (a int)")
    emulator.execute(f"CREATE CLUSTER {CLUSTER} REPLICAS (r1 (SIZE = '25cc'))")
    emulator.execute(f"CREATE INDEX events_a IN CLUSTER {CLUSTER} ON events (a)")
    db = Database.connect(emulator.url)
    try:
        Store(db).bootstrap()
    finally:
        db.close()
    emulator.advance(70)
    (cid,) = emulator.execute("SELECT id FROM mz_clusters WHERE name = %s", (CLUSTER,))[0]
    emulator.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'idle_suspend', %s::jsonb)",
        (cid, json.dumps({"idle_after_s": 300})),
    )
    emulator.advance(400)
    return emulator


@pytest.fixture(scope="module")
def airflow(prerequisites: None, demo_emulator: Any) -> Iterator[Airflow]:  # noqa: F811
    """test_airflow_ui's ``airflow standalone``, with the approval gate's settings on."""
    home = Path(tempfile.mkdtemp(prefix="mz-schedctl-browser-approval-"))
    port = _free_port()
    log = home / "standalone.log"
    started = time.monotonic()
    proc = None
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(AIRFLOW_CMD), "standalone"],
                env={**_airflow_env(home, port, demo_emulator.port), **GATE},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        af = Airflow(home=home, port=port, proc=proc, log=log)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"airflow standalone exited:\n{af.log_tail()}")
            health = af.api("GET", "/api/v2/monitor/health", timeout=5)
            for part in ("metadatabase", "scheduler", "dag_processor"):
                if (health.get(part) or {}).get("status") != "healthy":
                    return False
            errors = af.api("GET", "/api/v2/importErrors")
            if errors.get("total_entries"):
                raise AssertionError(f"DAG import errors: {json.dumps(errors)[:2000]}")
            return all(
                af.api("GET", f"/api/v2/dags/{d}", timeout=5).get("dag_id")
                for d in (CYCLE, APPROVAL)
            )

        try:
            _wait("airflow standalone with both DAGs parsed", AIRFLOW_BOOT_S, ready, 1)
        except AssertionError as exc:
            _keep(log, "airflow-standalone-approval.log")
            raise AssertionError(f"{exc}\n--- standalone log tail:\n{af.log_tail()}") from None
        af.boot_s = time.monotonic() - started
        yield af
    finally:
        _stop_session(proc)
        shutil.rmtree(home, ignore_errors=True)


def _q(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def _run_to_end(af: Airflow, dag_id: str, run_id: str) -> dict[str, Any]:
    def final() -> Any:
        run = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{_q(run_id)}")
        return run if run["state"] in ("success", "failed") else None

    return dict(_wait(f"{dag_id} run {run_id} to finish", RUN_S, final, 1))


def _trigger_cycle(af: Airflow) -> dict[str, Any]:
    run = af.api(
        "POST",
        f"/api/v2/dags/{CYCLE}/dagRuns",
        {"logical_date": None, "conf": {"filter_clusters": CLUSTER}},
    )
    return _run_to_end(af, CYCLE, run["dag_run_id"])


def _replicas(emu: Any) -> list[str]:
    rows = emu.execute(
        "SELECT r.name FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
        " WHERE c.name = %s",
        (CLUSTER,),
    )
    return [str(r[0]) for r in rows]


def test_the_approval_page_shows_the_plan_and_an_approval_runs_the_drop(
    demo_emulator: Any,
    airflow: Airflow,
    browser: Any,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("approval-*.png"):
        old.unlink()
    driver = browser.driver
    steps = Steps(browser=browser, airflow=airflow)

    with steps.step("cycle-asks"):
        first = _trigger_cycle(airflow)
        assert first["state"] == "success", first
        assert _replicas(demo_emulator) == ["r1"], "the drop ran without approval"
        runs = _wait(
            "the approval DAG run the cycle started",
            RUN_S,
            lambda: airflow.api("GET", f"/api/v2/dags/{APPROVAL}/dagRuns")["dag_runs"],
        )
        (run,) = runs
        run_id = run["dag_run_id"]
        assert list(run["conf"]) == ["request_ids"] and len(run["conf"]["request_ids"]) == 1

        def awaiting() -> Any:
            ti = airflow.api(
                "GET", f"/api/v2/dags/{APPROVAL}/dagRuns/{_q(run_id)}/taskInstances/approve"
            )
            return ti if ti["state"] in ("awaiting_input", "deferred") else None

        _wait("the approve task to wait for a person", RUN_S, awaiting, 1)
        detail = airflow.api(
            "GET",
            f"/api/v2/dags/{APPROVAL}/dagRuns/{_q(run_id)}/taskInstances/approve/-1/hitlDetails",
        )
        option = f"1. {CLUSTER}: drop_replica 'r1'"
        assert detail["options"] == ["none: reject all", option]
        assert 'DROP CLUSTER REPLICA "nightly"."r1"' in detail["body"]

    with steps.step("required-actions-page"):
        driver.get(
            f"{airflow.url}/dags/{APPROVAL}/runs/{_q(run_id)}/tasks/approve/required_actions"
        )
        _until(
            driver,
            "the plan on the required-action page",
            lambda d: (
                "drop_replica" in d.find_element(By.TAG_NAME, "body").text
                and "DROP CLUSTER REPLICA" in d.find_element(By.TAG_NAME, "body").text
            ),
            timeout=PAGE_S,
        )
        text = driver.find_element(By.TAG_NAME, "body").text
        assert "Plan of nightly" in text, text[:2000]
        assert "awaiting approval" in text, text[:2000]
        steps.shot("approval-01-required-action-with-plan")
        driver.get(f"{airflow.url}/required_actions")
        _until(
            driver,
            "the Required actions list",
            lambda d: (
                "mz-schedctl: approve planned actions" in d.find_element(By.TAG_NAME, "body").text
            ),
            timeout=PAGE_S,
        )
        steps.shot("approval-02-required-actions-list")

    with steps.step("approve-through-the-rest-api"):
        answered = airflow.api(
            "PATCH",
            f"/api/v2/dags/{APPROVAL}/dagRuns/{_q(run_id)}/taskInstances/approve/-1/hitlDetails",
            {"chosen_options": [option], "params_input": {}},
        )
        assert answered["chosen_options"] == [option]
        done = _run_to_end(airflow, APPROVAL, run_id)
        assert done["state"] == "success", done
        record = airflow.api(
            "GET",
            f"/api/v2/dags/{APPROVAL}/dagRuns/{_q(run_id)}/taskInstances/record/xcomEntries/return_value",
        )
        assert record["value"]["approved"] == run["conf"]["request_ids"], record

    with steps.step("next-cycle-runs-the-drop"):
        demo_emulator.advance(10)
        second = _trigger_cycle(airflow)
        assert second["state"] == "success", second
        assert _replicas(demo_emulator) == [], "the approved drop did not run"
        driver.get(f"{airflow.url}/dags/{APPROVAL}/runs/{_q(run_id)}")
        time.sleep(2)
        steps.shot("approval-03-approval-run-done")
    for path in steps.screenshots:
        print(f"  screenshot: {path}")
