"""First contact through a real Airflow (dag.test(), Airflow 3.3 with psycopg 3 and 2.11 with
psycopg2): the cycle DAG's first runs on a database where the controller never ran, and on one
where only its predecessor (mz-clusterctl) left its three tables. Each test has an emulator of
its own; nothing is created beforehand. Every task must succeed on its first try: the first
applying run used to hang in signals until its execution_timeout, and only the retry worked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("airflow.models")

from afsupport import (
    CONTROLLER_TABLES,
    DAGS_FOLDER,
    PASSWORD,
    actions,
    conn_json,
    load_dag,
    make_cluster,
    replicas,
    run_dag,
    snapshot,
    state,
    table_rows,
    tis,
    validate_cycle_xcoms,
    xcom,
)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

# The predecessor's own schemas (behaviour.md "Tables"): it never had a lease table.
PREDECESSOR_TABLES = (
    "CREATE TABLE mz_cluster_strategies (cluster_id TEXT NOT NULL, strategy_type TEXT NOT NULL,"
    " config JSONB NOT NULL, updated_at TIMESTAMPTZ DEFAULT now())",
    "CREATE TABLE mz_cluster_strategy_state (cluster_id TEXT NOT NULL,"
    " state_version INT NOT NULL, payload JSONB NOT NULL, updated_at TIMESTAMPTZ DEFAULT now())",
    "CREATE TABLE mz_cluster_strategy_actions (action_id TEXT NOT NULL, cluster_id TEXT,"
    " action_sql TEXT, decision_ctx JSONB, executed BOOL, error_message TEXT,"
    " created_at TIMESTAMPTZ DEFAULT now())",
)


@pytest.fixture
def fresh(airflow_home: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator of this test's own, and the Airflow connection pointing at it."""
    with run_emulator(port=0, password=PASSWORD, sample_rate=1.0) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_MATERIALIZE_DEFAULT", conn_json(emu.port))
        yield emu


def _existing(emu: Emulator) -> list[str]:
    return [t for t in CONTROLLER_TABLES if table_rows(emu, t) is not None]


def _succeeded_first_try(dr: Any, *, skipped: tuple[str, ...] = ()) -> None:
    """Every task ended as expected on its first try: success, or skipped where named (apply
    when no action ran)."""
    assert state(dr) == "success"
    for task_id, ti in tis(dr).items():
        assert state(ti) == ("skipped" if task_id in skipped else "success"), task_id
        assert ti.try_number == 1, f"{task_id} needed {ti.try_number} tries"


def test_first_runs_on_an_empty_database(fresh: Emulator) -> None:
    dag = load_dag(DAGS_FOLDER, "mz_schedctl_cycle")
    make_cluster(fresh, "untouched")
    before = snapshot(fresh)

    preview = run_dag(dag, {"dry_run": True})
    _succeeded_first_try(preview, skipped=("apply",))
    assert snapshot(fresh) == before  # a dry run writes nothing, not even the tables
    assert _existing(fresh) == []
    look = run_dag(load_dag(DAGS_FOLDER, "mz_schedctl_plan"))
    _succeeded_first_try(look)
    assert xcom(look, "summary")["kind"] == "dry_run"
    assert snapshot(fresh) == before  # nor does the preview DAG
    assert _existing(fresh) == []

    first = run_dag(dag)
    _succeeded_first_try(first, skipped=("apply",))  # nothing to do
    docs = validate_cycle_xcoms(first)
    assert actions(docs["decide"]) == []
    assert _existing(fresh) == list(CONTROLLER_TABLES)
    after = snapshot(fresh)
    assert (after["clusters"], after["replicas"]) == (before["clusters"], before["replicas"])
    assert after["mz_cluster_strategy_actions"] == []  # nothing to do, nothing audited


def test_first_runs_on_the_predecessors_tables(fresh: Emulator) -> None:
    cid = make_cluster(fresh, "reporting")
    for ddl in PREDECESSOR_TABLES:
        fresh.execute(ddl)
    fresh.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'target_size', %s)",
        (cid, json.dumps({"target_size": "50cc"})),
    )
    fresh.execute(
        "INSERT INTO mz_cluster_strategy_state (cluster_id, state_version, payload)"
        " VALUES (%s, 1, %s)",
        (cid, json.dumps({"strategy_type": "target_size", "last_decision_time": "2026-11-30"})),
    )
    fresh.execute(
        "INSERT INTO mz_cluster_strategy_actions (action_id, cluster_id, action_sql, executed)"
        " VALUES ('a-old', %s, 'DROP CLUSTER REPLICA reporting.r_old', true)",
        (cid,),
    )
    dag = load_dag(DAGS_FOLDER, "mz_schedctl_cycle")

    preview = run_dag(dag, {"dry_run": True})
    _succeeded_first_try(preview, skipped=("apply",))
    assert [a["kind"] for a in actions(validate_cycle_xcoms(preview)["decide"])] == [
        "create_replica"
    ]
    assert _existing(fresh) == list(CONTROLLER_TABLES[:3])  # the lease table is not made

    first = run_dag(dag)
    _succeeded_first_try(first)
    assert _existing(fresh) == list(CONTROLLER_TABLES)
    assert replicas(fresh, "reporting") == [("r1", "25cc"), ("r_50cc", "50cc")]
    ids = {r[0] for r in fresh.execute("SELECT action_id FROM mz_cluster_strategy_actions")}
    assert "a-old" in ids  # the predecessor's audit is kept
