"""Runs last: after every DAG run, CLI call and hook test of the session, the connection's
password appears nowhere in AIRFLOW_HOME: not in task logs, not in the metadata database
(XComs, rendered template fields, task instance notes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import PASSWORD


def test_password_is_in_no_log_and_no_xcom(airflow_home: Path) -> None:
    needle = PASSWORD.encode()
    scanned = 0
    for path in airflow_home.rglob("*"):
        if path.is_file():
            scanned += 1
            assert needle not in path.read_bytes(), f"password found in {path}"
    assert scanned > 1
