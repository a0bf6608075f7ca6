"""A run that explains itself (issue 17), through a real Airflow (dag.test(), 3.3 and 2.11):
one alert per problem on the server's clock, the preview DAG, no plan copy in Rendered
Templates. Run kinds and the summary of the cycle's runs: tests/airflow/test_cycle_dag.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from afsupport import (
    DAGS_FOLDER,
    add_strategy,
    airflow_major,
    bootstrap,
    load_dag,
    make_cluster,
    run_dag,
    snapshot,
    state,
    states_of,
    xcom,
)

CYCLE_MINUTES = 2


@pytest.fixture(scope="module")
def ready(mz_conn: str, emulator: Any) -> None:
    bootstrap(emulator)


def test_one_bad_row_over_40_cycles_fails_exactly_2_runs(
    ready: None, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 cycles 2 minutes apart on the emulator's clock (the server's: Airflow's own clock
    barely moves), a typo in one cluster's row, a healthy cluster beside it, wipe-state in the
    middle: the runs at minute 0 and minute 60 fail, the other 38 succeed and list the problem
    in their summary, and the failure callback (where a notifier plugs in) fires twice."""
    alerts = tmp_path / "alerts.log"
    monkeypatch.setenv("MZ_TEST_ALERTS", str(alerts))
    bad = make_cluster(emulator, "typo_a")
    add_strategy(emulator, bad, "burst", {"burst_replica_size": "800xx"})
    good = make_cluster(emulator, "fine_a")
    add_strategy(emulator, good, "target_size", {"target_size": "50cc"})
    dag = load_dag(DAGS_FOLDER, "mz_test_alerting")
    wipe = load_dag(DAGS_FOLDER, "mz_schedctl_wipe_state")
    failed, listed = [], 0
    for i in range(40):
        if i == 15:
            assert state(run_dag(wipe)) == "success"
        dr = run_dag(dag, {"filter_clusters": "(typo|fine)_a"})
        if state(dr) == "failed":
            failed.append(i * CYCLE_MINUTES)
            assert states_of(dr)["persist"] == "failed"
        else:
            assert state(dr) == "success", states_of(dr)
        run = xcom(dr, "persist")
        problems = run["problems"] if run else xcom(dr, "persist", key="outcome")["alerts"]
        if any("800xx" in p["message"] for p in problems):
            listed += 1
        emulator.advance(CYCLE_MINUTES * 60)
    assert failed == [0, 60]
    assert listed == 40
    if airflow_major() < 3:  # a task may set its run's note on 2.x only: the headline
        from airflow.models import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            stored = session.query(DagRun).filter_by(dag_id=dr.dag_id, run_id=dr.run_id).one()
            assert stored.note == xcom(dr, "persist")["headline"]
    assert len(alerts.read_text().splitlines()) == 2
    # The healthy cluster was served all along.
    sizes = emulator.execute(
        "SELECT r.size FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
        " WHERE c.name = 'fine_a'"
    )
    assert sizes == [("50cc",)]


def test_the_preview_dag_looks_while_a_cycle_holds_the_lease(ready: None, emulator: Any) -> None:
    """mz_schedctl_plan: a dry run of its own (signals -> decide -> summary), no lease, nothing
    written, even while another cycle holds the lease; manual only; no dry_run Param (it is
    always one)."""
    cid = make_cluster(emulator, "look_b")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    emulator.advance(120)
    emulator.execute(
        "INSERT INTO mz_cluster_strategy_leases (holder, cycle_id, claimed_at, expires_at)"
        " VALUES ('busy-cycle', 'scheduled__busy', now(), now() + interval '10 minutes')"
    )
    try:
        before = snapshot(emulator)
        preview = load_dag(DAGS_FOLDER, "mz_schedctl_plan")
        assert preview.schedule_interval is None if hasattr(preview, "schedule_interval") else True
        assert "dry_run" not in preview.params
        dr = run_dag(preview, {"filter_clusters": "look_b"})
        assert states_of(dr) == {"signals": "success", "decide": "success", "summary": "success"}
        run = xcom(dr, "summary")
        assert run["kind"] == "dry_run"
        assert run["actions"]["planned"] == 1
        assert run["credits_per_hour"]["planned_after"] == run["credits_per_hour"]["before"] + 1
        assert snapshot(emulator) == before  # no replica, state, audit, alert or lease row
    finally:
        emulator.execute("DELETE FROM mz_cluster_strategy_leases WHERE holder = 'busy-cycle'")
    assert emulator.execute(
        "SELECT count(*) FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
        " WHERE c.name = 'look_b'"
    ) == [(1,)]


def test_rendered_templates_carry_no_plan(ready: None, emulator: Any) -> None:
    """Every task of the shipped DAGs templates only its connection id and filter: the plan,
    signals and apply result are read as XComs inside the tasks, so Rendered Templates stay
    small whatever the fleet size."""
    for dag_id in ("mz_schedctl_cycle", "mz_schedctl_plan", "mz_schedctl_wipe_state"):
        dag = load_dag(DAGS_FOLDER, dag_id)
        for task in dag.tasks:
            assert set(task.template_fields) <= {"materialize_conn_id", "filter_clusters"}, (
                dag_id,
                task.task_id,
                task.template_fields,
            )
