"""A real ``airflow standalone`` (Airflow 3.3: scheduler, dag-processor, triggerer, API
server) over the shipped DAGs with the cycle's event trigger on, against an emulator at
Materialize's statement-log flush lag: shared by tests/browser/test_cycle_events_airflow3.py
and benchmarks/reaction.py. The standalone helpers come from test_airflow_ui.py."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from test_airflow_ui import (
    AIRFLOW_BOOT_S,
    AIRFLOW_CMD,
    Airflow,
    _airflow_env,
    _free_port,
    _stop_session,
    _wait,
)

from mz_schedctl_provider.runtime.db import APPLICATION_NAME

CYCLE = "mz_schedctl_cycle"
EXAMPLE = "mz_schedctl_example_on_resume"
# A cron that never comes during a test: any run is an event's (or a person's). With
# catchup off Airflow starts the latest past fire since start_date (2026-01-01) at once, so
# the cron must have none yet: 29 February, next in 2028.
NEVER = "0 0 29 2 *"


@contextlib.contextmanager
def standalone(
    emulator_port: int, *, schedule: str = NEVER, extra_env: dict[str, str] | None = None
) -> Iterator[Airflow]:
    """airflow standalone with the cycle DAG on ``schedule`` or events; stopped after."""
    home = Path(tempfile.mkdtemp(prefix="mz-schedctl-events-airflow-"))
    port = _free_port()
    log = home / "standalone.log"
    env = _airflow_env(home, port, emulator_port)
    env.update(
        {
            "MZ_SCHEDCTL_SCHEDULE": schedule,
            "MZ_SCHEDCTL_EVENTS": "true",
            # The scheduler looks for new asset events and queued runs this often.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            **(extra_env or {}),
        }
    )
    proc = None
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(AIRFLOW_CMD), "standalone"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session, stopped as a whole in teardown
            )
        af = Airflow(home=home, port=port, proc=proc, log=log)
        started = time.monotonic()

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"standalone exited {proc.returncode}:\n{af.log_tail()}")
            health = af.api("GET", "/api/v2/monitor/health", timeout=5)
            for part in ("metadatabase", "scheduler", "dag_processor", "triggerer"):
                if (health.get(part) or {}).get("status") != "healthy":
                    return False
            errors = af.api("GET", "/api/v2/importErrors")
            if errors.get("total_entries"):
                raise AssertionError(f"DAG import errors: {json.dumps(errors)[:2000]}")
            return bool(af.api("GET", f"/api/v2/dags/{CYCLE}", timeout=5).get("dag_id"))

        try:
            _wait("airflow standalone with the cycle DAG parsed", AIRFLOW_BOOT_S, ready, 1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- standalone log:\n{af.log_tail()}") from None
        af.boot_s = time.monotonic() - started
        yield af
    finally:
        _stop_session(proc)
        shutil.rmtree(home, ignore_errors=True)


def runs(af: Airflow, dag_id: str) -> list[dict[str, Any]]:
    got = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=logical_date&limit=100")
    return list(got.get("dag_runs") or [])


def task_instances(af: Airflow, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    from urllib.parse import quote

    got = af.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
    return {ti["task_id"]: ti for ti in got.get("task_instances") or []}


def trigger_polls(emu: Any) -> int:
    """How many times the event trigger read its cursor (its first statement per poll), as
    the emulator logged it."""
    with emu.backend.connect_admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM mz_emulator.statement_log WHERE application_name = %s"
            " AND sql LIKE 'SELECT now(), (SELECT max(updated_at)%%'",
            (APPLICATION_NAME,),
        ).fetchone()
    return int(row[0]) if row else 0


def refused_query(url: str, cluster: str, table: str, *, application_name: str = "psql") -> None:
    """A user's query on a cluster with no replica: Materialize refuses it at once."""
    with psycopg.connect(
        url, autocommit=True, options=f"-c cluster={cluster}", application_name=application_name
    ) as user:
        try:
            user.execute(f'SELECT * FROM "{table}"')
        except psycopg.Error:
            return
    raise AssertionError(f"{cluster} served the query: it was not suspended")
