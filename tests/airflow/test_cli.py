"""The ``airflow`` CLI against a running emulator: ``airflow dags test`` of the cycle as a dry
run prints the plan in the decide task's log and leaves Materialize untouched, even before the
controller's tables exist."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import (
    CONTROLLER_TABLES,
    PASSWORD,
    add_strategy,
    airflow_cli,
    bootstrap,
    conn_json,
    make_cluster,
    snapshot,
)


def dags_test_dry_run(emulator: Any) -> Any:
    start = time.monotonic()
    done = airflow_cli(
        "dags",
        "test",
        "mz_schedctl_cycle",
        "-c",
        '{"dry_run": true}',
        env={"AIRFLOW_CONN_MATERIALIZE_DEFAULT": conn_json(emulator.port)},
    )
    print(f"\nairflow dags test (dry run): {time.monotonic() - start:.1f} s")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert PASSWORD not in output
    return output


def test_dry_run_before_init_creates_nothing(airflow_home: Path, emulator: Any) -> None:
    before = snapshot(emulator)
    assert all(before[t] is None for t in CONTROLLER_TABLES)
    output = dags_test_dry_run(emulator)
    assert "DRY RUN plan" in output
    assert snapshot(emulator) == before  # not even the tables


def test_dry_run_prints_the_plan_in_the_decide_log(airflow_home: Path, emulator: Any) -> None:
    bootstrap(emulator)
    cid = make_cluster(emulator, "cli_a")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    emulator.advance(120)
    before = snapshot(emulator)
    output = dags_test_dry_run(emulator)
    assert "DRY RUN plan for cycle" in output
    line = next(ln for ln in output.splitlines() if "create_replica" in ln and "cli_a" in ln)
    assert 'CREATE CLUSTER REPLICA "cli_a"."r_100cc" (SIZE = \'100cc\')' in line
    assert "no replica of target size 100cc" in line
    assert "::group::cli_a (" in output  # folded per cluster in Airflow's log view
    assert snapshot(emulator) == before
