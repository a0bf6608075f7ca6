"""The hydration sensor, deferrable (trigger with psycopg's AsyncConnection, run inline by
dag.test()) and in poke mode, waiting for the emulator to hydrate a replica."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import (
    _HOME,
    DAGS_FOLDER,
    airflow_major,
    load_dag,
    make_cluster,
    run_dag,
    state,
    tis,
    xcom,
)


def hydrate_once_deferred(emulator: Any, stop: threading.Event) -> None:
    scheduled_at = None
    while not stop.wait(0.05):
        db = sqlite3.connect(f"{_HOME}/airflow.db", timeout=5)
        try:
            rows = db.execute(
                "SELECT state, next_method FROM task_instance"
                " WHERE dag_id = 'mz_test_hydration_sensor' AND task_id = 'deferred'"
                " AND state NOT IN ('success', 'failed')"
            ).fetchall()
        except sqlite3.OperationalError:
            rows = []
        finally:
            db.close()
        if rows and scheduled_at is None:
            scheduled_at = time.monotonic()
        deferred = any(next_method == "execute_complete" for _, next_method in rows)
        waited = scheduled_at is not None and time.monotonic() - scheduled_at > 3
        if deferred or (airflow_major() < 3 and waited):
            emulator.advance(120)
            return


def test_sensors_wait_until_the_replica_hydrates(
    mz_conn: str, emulator: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # r1, 25cc, with a materialized view: not hydrated yet. 60 s at 25cc, so the clock (which
    # also follows real time) cannot hydrate it before the sensors first look.
    make_cluster(emulator, "sense_a", hydration="60 seconds")
    dag = load_dag(DAGS_FOLDER, "mz_test_hydration_sensor")
    # Hydrate while the sensors are waiting: the emulator's clock jumps 2 s into the run.
    caplog.set_level(logging.INFO)
    # Hydrate only once the sensor has deferred: Airflow 3 shows the deferral in the metadata
    # DB (next_method set); Airflow 2.11's dag.test() commits only at the end, so there the
    # clock jumps 3 s after the task was scheduled (its first poke comes at once).
    stop = threading.Event()
    watcher = threading.Thread(target=hydrate_once_deferred, args=(emulator, stop), daemon=True)
    watcher.start()
    try:
        dr = run_dag(dag, {"cluster": "sense_a", "replica": "r1"})
    finally:
        stop.set()
        watcher.join()
    assert state(dr) == "success", {t: state(ti) for t, ti in tis(dr).items()}
    assert xcom(dr, "deferred") == {"cluster": "sense_a", "hydrated": ["r1"]}
    assert xcom(dr, "poking") == {"cluster": "sense_a", "hydrated": ["r1"]}
    # "deferred" ran first, met an unhydrated cluster and deferred to the trigger.
    out, err = capfd.readouterr()
    assert "running trigger in line" in caplog.text + out + err
    assert "not hydrated yet" in caplog.text + out + err  # the trigger polled before hydration


def test_poking_sensor_times_out_on_a_replica_that_never_hydrates(
    mz_conn: str, emulator: Any
) -> None:
    emulator.execute("CREATE CLUSTER REPLICA sense_a.r_never (SIZE = '25cc')")
    emulator.inject_oom("sense_a", "r_never")  # crash-loops: never hydrated
    dag = load_dag(DAGS_FOLDER, "mz_test_hydration_sensor")
    dr = run_dag(dag, {"cluster": "sense_a", "replica": "r_never"})
    states = {t: state(ti) for t, ti in tis(dr).items()}
    assert states == {"deferred": "success", "poking": "failed"}  # the cluster has r1
    assert state(dr) == "failed"
