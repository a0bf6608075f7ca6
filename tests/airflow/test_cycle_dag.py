"""The shipped cycle DAG, run by Airflow itself (dag.test()) against the emulator.

Each test works on its own clusters and restricts the cycle to them with the filter_clusters
Param, so the tests share one emulator and one Airflow without seeing each other's work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import (
    DAGS_FOLDER,
    actions,
    add_strategy,
    audit_rows,
    bootstrap,
    load_dag,
    make_cluster,
    replicas,
    run_dag,
    snapshot,
    state,
    states_of,
    tis,
    validate_cycle_xcoms,
    xcom,
)

HYDRATE_S = 120  # emulator seconds after which a new replica is online and hydrated
# Fault patterns are anchored at the statement's start: psycopg2 (Airflow 2.11) inlines
# parameters, so the audit INSERT that records a DDL's text would match an unanchored pattern.


@pytest.fixture(scope="module")
def cycle(mz_conn: str, emulator: Any) -> Any:
    bootstrap(emulator)
    return load_dag(DAGS_FOLDER, "mz_schedctl_cycle")


def resize_setup(emu: Any, name: str, size: str = "25cc", target: str = "100cc") -> str:
    cid = make_cluster(emu, name, size)
    add_strategy(emu, cid, "target_size", {"target_size": target})
    emu.advance(HYDRATE_S)  # r1 online and hydrated
    return cid


def test_resize_end_to_end(cycle: Any, emulator: Any) -> None:
    """25cc -> 100cc without downtime: create, wait for hydration, drop; every XCom valid."""
    cid = resize_setup(emulator, "resize_a")

    first = run_dag(cycle, {"filter_clusters": "resize_a"})
    assert state(first) == "success", {t: state(ti) for t, ti in tis(first).items()}
    docs = validate_cycle_xcoms(first)
    planned = actions(docs["decide"])
    assert [(a["kind"], a["size"]) for a in planned] == [("create_replica", "100cc")]
    assert docs["decide"]["dry_run"] is False
    assert docs["apply"]["executed"] is True
    assert [r["outcome"] for r in docs["apply"]["results"]] == ["succeeded"]
    assert docs["persist"] == {
        "schema_version": 1,
        "states_written": 1,
        "problems": [],
        "alerting": [],
        "alerts": [],
    }
    assert states_of(first) == {
        "signals": "success",
        "decide": "success",
        "apply": "success",
        "persist": "success",
    }
    run = xcom(first, "persist")  # the run's summary
    assert run["kind"] == "applied"
    assert run["actions"]["ran"] == 1 and run["actions"]["failed"] == 0
    assert run["credits_per_hour"] == {"before": 0.25, "after": 1.25, "planned_after": 1.25}
    assert run["changed_clusters"] == [
        {
            "cluster": "resize_a",
            "cluster_id": cid,
            "credits_per_hour_before": 0.25,
            "credits_per_hour_after": 1.25,
            "actions": ["create_replica 'r_100cc' succeeded"],
            "ran": True,
        }
    ]
    assert run["headline"].startswith("applied: 1 action(s) ran on 1 cluster(s), 0 failed")
    assert replicas(emulator, "resize_a") == [("r1", "25cc"), ("r_100cc", "100cc")]
    # The cycle id is the run id plus a deployment-specific suffix; the lease was released.
    assert docs["decide"]["cycle_id"].startswith(first.run_id + "~")
    assert emulator.execute(
        "SELECT count(*) FROM mz_cluster_strategy_leases WHERE cycle_id = %s",
        (docs["decide"]["cycle_id"],),
    ) == [(0,)]

    emulator.advance(HYDRATE_S)  # r_100cc hydrates
    second = run_dag(cycle, {"filter_clusters": "resize_a"})
    assert state(second) == "success"
    docs = validate_cycle_xcoms(second)
    assert [(a["kind"], a["replica_name"]) for a in actions(docs["decide"])] == [
        ("drop_replica", "r1")
    ]
    assert replicas(emulator, "resize_a") == [("r_100cc", "100cc")]

    third = run_dag(cycle, {"filter_clusters": "resize_a"})
    assert state(third) == "success"
    assert actions(validate_cycle_xcoms(third)["decide"]) == []
    # Nothing to do: apply is skipped, not green, and the summary says so.
    assert states_of(third)["apply"] == "skipped"
    assert xcom(third, "persist")["kind"] == "nothing_to_do"
    assert replicas(emulator, "resize_a") == [("r_100cc", "100cc")]

    # The audit: an intent and an outcome (executed) for each of the two DDL statements.
    rows = audit_rows(emulator, cid)
    by_action: dict[str, list[str]] = {}
    for r in rows:
        by_action.setdefault(r["action_id"], []).append(r["ctx"]["phase"])
        assert r["ctx"]["cluster_name"] == "resize_a"
    assert sorted(by_action.values()) == [["intent", "outcome"], ["intent", "outcome"]]
    assert all(r["executed"] for r in rows if r["ctx"]["phase"] == "outcome")
    assert {r["ctx"]["cycle_id"] for r in rows} == {
        xcom(first, "decide")["cycle_id"],
        xcom(second, "decide")["cycle_id"],
    }


def test_dry_run_changes_nothing_at_all(cycle: Any, emulator: Any) -> None:
    resize_setup(emulator, "dry_a")
    before = snapshot(emulator)
    dr = run_dag(cycle, {"dry_run": True, "filter_clusters": "dry_a"})
    assert state(dr) == "success"
    docs = validate_cycle_xcoms(dr)
    assert docs["decide"]["dry_run"] is True
    assert [a["kind"] for a in actions(docs["decide"])] == ["create_replica"]
    assert docs["apply"]["executed"] is False
    assert docs["persist"]["states_written"] == 0
    assert states_of(dr)["apply"] == "skipped"
    run = xcom(dr, "persist")
    assert run["kind"] == "dry_run" and run["actions"]["planned"] == 1
    assert run["headline"] == (
        "dry run: 1 action(s) planned, nothing executed; fleet 0.25 -> 1.25 credits/h if applied"
    )
    assert snapshot(emulator) == before  # no replica, state, audit or lease row


@pytest.mark.parametrize(
    "conf",
    [{"dry_run": "yes"}, {"dry_run": 1}, {"filter_clusters": 5}, {"filter_clusters": ["prod"]}],
)
def test_invalid_param_is_rejected_before_a_run_exists(cycle: Any, conf: dict[str, Any]) -> None:
    from airflow.exceptions import ParamValidationError as CoreError

    try:
        from airflow.sdk.exceptions import ParamValidationError as SdkError
    except ImportError:
        SdkError = CoreError
    with pytest.raises((CoreError, SdkError)):
        run_dag(cycle, conf)


def test_kill_switch_audits_held_back_actions_and_changes_nothing(
    cycle: Any, emulator: Any, kill_switch: Callable[[str | None], None]
) -> None:
    cid = resize_setup(emulator, "paused_a")
    before = replicas(emulator, "paused_a")
    kill_switch("true")
    try:
        dr = run_dag(cycle, {"filter_clusters": "paused_a"})
    finally:
        kill_switch(None)
    assert state(dr) == "success"
    docs = validate_cycle_xcoms(dr)
    assert docs["apply"]["executed"] is False
    assert "kill switch" in docs["apply"]["reason"]
    assert docs["persist"]["states_written"] == 0
    assert states_of(dr)["apply"] == "skipped"
    assert xcom(dr, "persist")["kind"] == "held_back"
    assert replicas(emulator, "paused_a") == before
    rows = audit_rows(emulator, cid)
    assert len(rows) == 1
    assert rows[0]["executed"] is False
    assert rows[0]["ctx"]["phase"] == "outcome"
    assert rows[0]["sql"].startswith('CREATE CLUSTER REPLICA "paused_a"."r_100cc"')
    assert emulator.execute(
        "SELECT count(*) FROM mz_cluster_strategy_leases WHERE cycle_id = %s",
        (docs["decide"]["cycle_id"],),
    ) == [(0,)]
    # Switched off again, the next run applies.
    dr = run_dag(cycle, {"filter_clusters": "paused_a"})
    assert state(dr) == "success"
    assert ("r_100cc", "100cc") in replicas(emulator, "paused_a")


def test_invalid_config_fails_the_run_after_the_other_cluster_was_resized(
    cycle: Any, emulator: Any
) -> None:
    bad = make_cluster(emulator, "bad_b")
    add_strategy(emulator, bad, "target_size", {"target_size": "999cc"})
    resize_setup(emulator, "good_b")
    dr = run_dag(cycle, {"filter_clusters": "(bad|good)_b"})
    assert state(dr) == "failed"
    states = {t: state(ti) for t, ti in tis(dr).items()}
    assert states == {
        "signals": "success",
        "decide": "success",
        "apply": "success",
        "persist": "failed",
    }
    assert ("r_100cc", "100cc") in replicas(emulator, "good_b")
    assert replicas(emulator, "bad_b") == [("r1", "25cc")]
    outcome = xcom(dr, "persist", key="outcome")
    assert outcome["states_written"] == 1  # good_b's state; bad_b keeps none
    assert len(outcome["problems"]) == 1
    assert outcome["problems"][0].startswith("bad_b:")
    assert "999cc" in outcome["problems"][0]
    # The failure is not retried: it is a fact of this cycle, not a transient error.
    assert tis(dr)["persist"].try_number == 1


def test_apply_killed_halfway_is_retried_without_duplicates_and_with_a_full_audit(
    cycle: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CREATE runs, the connection drops before the answer, and Materialize stays
    unreachable for the rest of that attempt: the apply task fails. Airflow retries it; the
    retry sees the replica exists, completes the audit of the interrupted action, and the run
    succeeds with exactly one new replica."""
    from mz_schedctl_provider.runtime import cycle as runtime
    from mz_schedctl_provider.runtime.db import ConnectionLost

    cid = resize_setup(emulator, "retry_c")
    emulator.inject_fault(r'^\s*CREATE CLUSTER REPLICA "retry_c"', "drop_after")
    real = runtime.reconnector
    outage = {"left": 1}

    def flaky(connect: Any, **kwargs: Any) -> Any:
        reconnect = real(connect, **kwargs)

        def first_attempt_cannot_reconnect() -> Any:
            if outage["left"]:
                outage["left"] -= 1
                raise ConnectionLost("simulated outage: Materialize unreachable")
            return reconnect()

        return first_attempt_cannot_reconnect

    monkeypatch.setattr(runtime, "reconnector", flaky)
    dr = run_dag(cycle, {"filter_clusters": "retry_c"})
    assert state(dr) == "success", {t: state(ti) for t, ti in tis(dr).items()}
    assert tis(dr)["apply"].try_number == 2
    docs = validate_cycle_xcoms(dr)
    assert [r["outcome"] for r in docs["apply"]["results"]] == ["succeeded"]
    assert replicas(emulator, "retry_c") == [("r1", "25cc"), ("r_100cc", "100cc")]
    rows = audit_rows(emulator, cid)
    assert [(r["ctx"]["phase"], r["executed"]) for r in rows] == [
        ("intent", None),
        ("outcome", True),
    ]
    assert rows[0]["action_id"] == rows[1]["action_id"]
    assert "interrupted attempt" in rows[1]["ctx"]["note"]
    assert docs["persist"]["states_written"] == 1


def test_connection_dropped_after_ddl_is_recovered_within_the_attempt(
    cycle: Any, emulator: Any
) -> None:
    """Same fault, Materialize reachable again at once: the task reconnects, reads back that
    the DDL ran and audits it, without a retry."""
    cid = resize_setup(emulator, "drop_d")
    emulator.inject_fault(r'^\s*CREATE CLUSTER REPLICA "drop_d"', "drop_after")
    dr = run_dag(cycle, {"filter_clusters": "drop_d"})
    assert state(dr) == "success"
    assert tis(dr)["apply"].try_number == 1
    assert replicas(emulator, "drop_d") == [("r1", "25cc"), ("r_100cc", "100cc")]
    rows = audit_rows(emulator, cid)
    assert [(r["ctx"]["phase"], r["executed"]) for r in rows] == [
        ("intent", None),
        ("outcome", True),
    ]
    assert "connection lost" in rows[1]["ctx"]["note"]


def test_a_failed_statement_fails_the_run_but_not_the_other_clusters(
    cycle: Any, emulator: Any
) -> None:
    """Materialize refuses one cluster's DDL: the other cluster is still resized; persist fails
    the run listing the failed action, and keeps the failed cluster's old state."""
    refused = resize_setup(emulator, "refused_e")
    resize_setup(emulator, "fine_e")
    emulator.inject_fault(r'^\s*CREATE CLUSTER REPLICA "refused_e"', "error", "out of credits")
    dr = run_dag(cycle, {"filter_clusters": "(refused|fine)_e"})
    assert state(dr) == "failed"
    # apply fails on the failed action (after running the other's) and persist records both.
    assert states_of(dr)["apply"] == "failed" and states_of(dr)["persist"] == "failed"
    run = xcom(dr, "persist", key="outcome")
    assert run["states_written"] == 2  # fine_e's new state, refused_e's failure (its backoff)
    assert ("r_100cc", "100cc") in replicas(emulator, "fine_e")
    assert replicas(emulator, "refused_e") == [("r1", "25cc")]
    outcome = xcom(dr, "persist", key="outcome")
    assert any(p.startswith("refused_e:") and "out of credits" in p for p in outcome["problems"])
    rows = audit_rows(emulator, refused)
    assert [(r["ctx"]["phase"], r["executed"]) for r in rows] == [
        ("intent", None),
        ("outcome", False),
    ]
    assert "out of credits" in rows[1]["error"]


def test_persist_releases_the_lease_even_when_apply_fails_for_good(
    cycle: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apply crashes on every attempt: persist still runs (all_done), releases the lease,
    writes no state and fails the run."""
    from mz_schedctl_provider.operators.materialize import MaterializeApplyOperator

    resize_setup(emulator, "crash_f")

    def crash(self: Any, context: Any) -> Any:
        raise RuntimeError("worker lost")

    monkeypatch.setattr(MaterializeApplyOperator, "execute", crash)
    dr = run_dag(cycle, {"filter_clusters": "crash_f"})
    assert state(dr) == "failed"
    states = {t: state(ti) for t, ti in tis(dr).items()}
    assert states["apply"] == "failed" and states["persist"] == "failed"
    assert tis(dr)["apply"].try_number == 3  # two retries
    outcome = xcom(dr, "persist", key="outcome")
    assert outcome["states_written"] == 0
    assert any("apply did not finish" in p for p in outcome["problems"])
    cycle_id = xcom(dr, "decide")["cycle_id"]
    assert emulator.execute(
        "SELECT count(*) FROM mz_cluster_strategy_leases WHERE cycle_id = %s", (cycle_id,)
    ) == [(0,)]
    assert replicas(emulator, "crash_f") == [("r1", "25cc")]


def test_second_deployment_holding_the_lease_blocks_apply(cycle: Any, emulator: Any) -> None:
    """Another Airflow (or the CLI) holds the lease: this run plans, applies nothing, says why."""
    cid = resize_setup(emulator, "lease_g")
    emulator.execute(
        "INSERT INTO mz_cluster_strategy_leases (holder, cycle_id, claimed_at, expires_at)"
        " VALUES ('other-airflow', 'scheduled__x~other', now() - interval '1 minute',"
        " now() + interval '10 minutes')"
    )
    try:
        dr = run_dag(cycle, {"filter_clusters": "lease_g"})
    finally:
        emulator.execute(
            "DELETE FROM mz_cluster_strategy_leases WHERE cycle_id = 'scheduled__x~other'"
        )
    assert state(dr) == "success"
    docs = validate_cycle_xcoms(dr)
    assert docs["apply"]["executed"] is False
    assert "other-airflow" in docs["apply"]["reason"]
    assert states_of(dr)["apply"] == "skipped"
    assert xcom(dr, "persist")["kind"] == "lease_held"
    assert replicas(emulator, "lease_g") == [("r1", "25cc")]
    assert [r["executed"] for r in audit_rows(emulator, cid)] == [False]


def test_an_edited_plan_is_refused_by_apply_and_persist(cycle: Any, emulator: Any) -> None:
    """The plan is edited between decide and apply (another size, SQL of its own): apply
    refuses it before any statement, persist writes no state but releases the lease, and the
    run fails; the real cycle then runs normally."""
    from afsupport import table_rows

    cid = resize_setup(emulator, "edited_f")
    dag = load_dag(DAGS_FOLDER, "mz_test_tampered_plan")
    dr = run_dag(dag, {"filter_clusters": "edited_f"})
    states = {t: state(ti) for t, ti in tis(dr).items()}
    assert states["apply"] == "failed" and states["persist"] == "failed", states
    assert replicas(emulator, "edited_f") == [("r1", "25cc")]
    assert table_rows(emulator, "edited_via_xcom") is None
    assert audit_rows(emulator, cid) == []
    after = run_dag(cycle, {"filter_clusters": "edited_f"})  # not held back by a lease
    assert state(after) == "success"
    assert replicas(emulator, "edited_f") == [("r1", "25cc"), ("r_100cc", "100cc")]
