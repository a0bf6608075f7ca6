"""A real Airflow for the tests in this folder: its own AIRFLOW_HOME with a SQLite metadata
database, migrated once per session, and a DAGs folder holding the shipped DAG files plus a
small sensor DAG. Skipped as a whole where Airflow is not installed (the main venv).

Airflow reads its configuration when first imported: the environment is set here, before any
test module imports it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# afsupport sets the Airflow environment on import: keep it before anything imports airflow.
from afsupport import (
    _HOME,
    HAVE_AIRFLOW,
    PASSWORD,
    _prepare_dags_folder,
    airflow_cli,
    conn_json,
)


@pytest.fixture(scope="session")
def airflow_home() -> Iterator[Path]:
    """AIRFLOW_HOME with a migrated SQLite database and the DAGs folder."""
    if not HAVE_AIRFLOW:
        pytest.skip("Airflow is not installed (run scripts/test-airflow.sh)")
    _prepare_dags_folder()
    start = time.monotonic()
    done = airflow_cli("db", "migrate")
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"\nairflow db migrate: {time.monotonic() - start:.1f} s")
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Any]:
    """A fresh emulator per test module that requires a password, so the tests can check the
    password never reaches a log or an XCom."""
    from mz_schedctl_provider.emulator.control import run_emulator

    with run_emulator(port=0, log_flush_s=0, password=PASSWORD) as emu:
        yield emu


@pytest.fixture(scope="module")
def mz_conn(emulator: Any, airflow_home: Path) -> Iterator[str]:
    """AIRFLOW_CONN_MATERIALIZE_DEFAULT pointing at this module's emulator."""
    value = conn_json(emulator.port)
    old = os.environ.get("AIRFLOW_CONN_MATERIALIZE_DEFAULT")
    os.environ["AIRFLOW_CONN_MATERIALIZE_DEFAULT"] = value
    yield value
    if old is None:
        os.environ.pop("AIRFLOW_CONN_MATERIALIZE_DEFAULT", None)
    else:
        os.environ["AIRFLOW_CONN_MATERIALIZE_DEFAULT"] = old


@pytest.fixture
def kill_switch(airflow_home: Path) -> Iterator[Any]:
    """Set (a value) or delete (None) the kill-switch Variable in the metadata database."""
    from airflow.models import Variable

    def set_to(value: str | None) -> None:
        if value is None:
            Variable.delete("mz_schedctl_paused")
        else:
            Variable.set("mz_schedctl_paused", value)

    yield set_to
    Variable.delete("mz_schedctl_paused")
