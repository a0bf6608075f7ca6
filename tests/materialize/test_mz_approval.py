"""The approval gate against the emulator (runtime/approvals.py): requests written once by
persist, answers recorded on the server's clock, approvals used once, rejected and expired
requests audited as not executed; and the issue's case, a resume running while a drop waits."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from mzsupport import (
    add_strategy,
    audit,
    cli,
    init_tables,
    make_cluster,
    q,
    replicas,
    run_cycle,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.approval import ApprovalRule
from mz_schedctl_provider.runtime import approvals
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import Store

pytestmark = pytest.mark.usefixtures("tables")

TIMEOUT_S = 600.0
DROPS = ApprovalRule(drops=True, timeout_s=TIMEOUT_S)


def idle_cluster(emu: Emulator, name: str) -> str:
    """A cluster idle long enough that idle_suspend drops its replica on the next cycle."""
    cid = make_cluster(emu, name, size="25cc", objects="index")
    emu.advance(70)
    add_strategy(emu, cid, "idle_suspend", {"idle_after_s": 300})
    emu.advance(400)
    return cid


def rows(db: Database, cid: str) -> list[approvals.ApprovalRow]:
    return [r for r in approvals.read_rows(Store(db)) if r.cluster_id == cid]


def raw_rows(emu: Emulator, request_id: str) -> list[str]:
    got = emu.execute(
        "SELECT status FROM mz_cluster_strategy_approvals WHERE request_id = %s"
        " ORDER BY updated_at",
        (request_id,),
    )
    return [str(r[0]) for r in got]


def drop_of(run: Any, name: str) -> dict[str, Any]:
    (action,) = [a for a in run.cluster(name)["actions"] if a["kind"] == "drop_replica"]
    return action


def not_executed_notes(emu: Emulator, cid: str) -> list[tuple[str, bool | None]]:
    return [
        (str(r.ctx.get("note")), r.executed) for r in audit(emu, cid) if "approval_request" in r.ctx
    ]


def test_a_drop_waits_and_is_asked_for_once_while_pending(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    run = run_cycle(db, only=name, approval=DROPS)
    drop = drop_of(run, name)
    assert drop["status"] == "deferred" and drop["codes"][-1] == "awaiting_approval"
    assert replicas(emulator, name) == {"r1": "25cc"}
    (request_id,) = run.outcome.approval_requests
    (row,) = rows(db, cid)
    assert (row.request_id, row.status, row.cluster_name) == (request_id, "pending", name)
    assert row.action_text == "drop_replica 'r1'"
    assert row.action_sql == f"DROP CLUSTER REPLICA {q(name)}.{q('r1')}"
    # The person sees the cluster's rendered plan, the SQL in it.
    assert f"- {name} ({cid})" in row.plan_text
    assert any("drop_replica" in ln and " deferred " in ln for ln in row.plan_text.splitlines()), (
        row.plan_text
    )
    assert (row.expires_at - row.requested_at).total_seconds() == TIMEOUT_S

    emulator.advance(60)
    run = run_cycle(db, only=name, approval=DROPS)
    assert run.outcome.approval_requests == []
    assert drop_of(run, name)["approval_id"] == request_id
    assert raw_rows(emulator, request_id) == ["pending"]
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_an_approved_drop_runs_in_the_next_cycle_and_its_approval_is_used(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    (request_id,) = run_cycle(db, only=name, approval=DROPS).outcome.approval_requests
    got = approvals.record_answer(Store(db), [request_id], approved=[request_id], by="alice")
    assert got.approved == [request_id]
    (row,) = rows(db, cid)
    assert (row.status, row.decided_by) == ("approved", "alice")

    emulator.advance(30)
    run = run_cycle(db, only=name, approval=DROPS)
    drop = drop_of(run, name)
    assert drop["status"] == "planned" and drop["codes"][-1] == "approved"
    assert run.outcomes() == ["succeeded"]
    assert replicas(emulator, name) == {}
    assert raw_rows(emulator, request_id) == ["pending", "approved", "used"]
    # Answering again changes nothing: it is no longer pending.
    again = approvals.record_answer(Store(db), [request_id], approved=[request_id], by="eve")
    assert again.to_json() == {"approved": [], "rejected": [], "expired": []}


def test_an_approved_drop_the_next_cycle_no_longer_plans_does_not_run(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    (request_id,) = run_cycle(db, only=name, approval=DROPS).outcome.approval_requests
    approvals.record_answer(Store(db), [request_id], approved=[request_id], by="alice")
    # Someone uses the cluster: it is no longer idle, so no cycle plans the drop.
    with psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user:
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    emulator.advance(10)
    run = run_cycle(db, only=name, approval=DROPS)
    assert run.cluster(name)["actions"] == []
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert raw_rows(emulator, request_id) == ["pending", "approved"]

    # Unused past its expiry (server time): expired, audited as not executed.
    emulator.advance(TIMEOUT_S)
    run_cycle(db, only=name, approval=DROPS)
    assert raw_rows(emulator, request_id) == ["pending", "approved", "expired"]
    assert not_executed_notes(emulator, cid) == [("approval expired", False)]
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_a_request_answered_after_its_expiry_is_expired_and_audited(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    (request_id,) = run_cycle(db, only=name, approval=DROPS).outcome.approval_requests
    emulator.advance(TIMEOUT_S)  # exactly at expires_at on the server's clock
    got = approvals.record_answer(Store(db), [request_id], approved=[request_id], by="alice")
    assert got.expired == [request_id] and got.approved == []
    assert raw_rows(emulator, request_id) == ["pending", "expired"]
    assert not_executed_notes(emulator, cid) == [("approval expired", False)]
    (record,) = [r for r in audit(emulator, cid) if "approval_request" in r.ctx]
    assert record.ctx["kind"] == "drop_replica" and record.ctx["replica"] == "r1"
    assert record.error is None  # not a failed DDL: the rate limit does not count it
    # The next cycle asks again (the drop is still wanted), and does not drop.
    run = run_cycle(db, only=name, approval=DROPS)
    assert len(run.outcome.approval_requests) == 1
    assert run.outcome.approval_requests != [request_id]
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_a_rejection_is_audited_and_not_asked_again_until_it_expires(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    (request_id,) = run_cycle(db, only=name, approval=DROPS).outcome.approval_requests
    emulator.advance(100)
    got = approvals.record_answer(Store(db), [request_id], approved=[], by="bob")
    assert got.rejected == [request_id]
    (row,) = rows(db, cid)
    assert row.status == "rejected"
    # The rejection holds for the rule's timeout from the answer, not from the request.
    assert row.decided_at is not None
    assert (row.expires_at - row.decided_at).total_seconds() == TIMEOUT_S
    assert not_executed_notes(emulator, cid) == [("rejected by bob", False)]

    emulator.advance(TIMEOUT_S - 1)
    run = run_cycle(db, only=name, approval=DROPS)
    drop = drop_of(run, name)
    assert (drop["status"], drop["codes"][-1]) == ("deferred", "approval_rejected")
    assert run.outcome.approval_requests == []
    emulator.advance(1)  # the rejection's expiry: asked again
    run = run_cycle(db, only=name, approval=DROPS)
    assert len(run.outcome.approval_requests) == 1
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_a_resume_runs_while_a_drop_awaits_approval(
    emulator: Emulator, db: Database, name: str
) -> None:
    """Two clusters: one idle (its drop waits for a person), one suspended that a refused
    query resumes in the same cycle; the cycle applies the resume and finishes."""
    idle_name, resumed = f"{name}_idle", f"{name}_resumed"
    idle_cid = make_cluster(emulator, idle_name, size="25cc", objects="index")
    res_cid = make_cluster(emulator, resumed, size="50cc", objects="index")
    emulator.advance(70)
    add_strategy(emulator, res_cid, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    run_cycle(db, only=resumed)  # the gate is off: suspended
    assert replicas(emulator, resumed) == {}
    add_strategy(emulator, idle_cid, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={resumed}") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute(f"SELECT * FROM {q(f't_{resumed}')}")
    emulator.advance(10)

    everything = ApprovalRule(drops=True, managed_resizes=True, cost_increase_over=0.0)
    run = run_cycle(db, pattern=f"{idle_name}|{resumed}", approval=everything)
    (create,) = run.cluster(resumed)["actions"]
    assert (create["kind"], create["status"]) == ("create_replica", "planned")
    assert drop_of(run, idle_name)["status"] == "deferred"
    assert replicas(emulator, resumed) == {"r1": "50cc"}
    assert replicas(emulator, idle_name) == {"r1": "25cc"}
    assert len(run.outcome.approval_requests) == 1
    assert run.outcome.problems == []
    assert run.lease is not None and run.lease.acquired
    # The lease is released: the next cycle runs at once, and the drop still waits.
    emulator.advance(10)
    again = run_cycle(db, pattern=f"{idle_name}|{resumed}", approval=everything)
    assert again.lease.acquired
    assert drop_of(again, idle_name)["status"] == "deferred"
    assert again.outcome.approval_requests == []


def test_without_the_gate_nothing_is_asked_and_the_drop_runs(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    run = run_cycle(db, only=name)
    assert run.outcome.approval_requests == []
    assert "approval_requests" not in run.outcome.to_json()
    assert replicas(emulator, name) == {}
    assert rows(db, cid) == []


def test_tables_created_before_the_gate_get_the_approvals_table_at_the_first_request(
    emulator: Emulator, db: Database, name: str
) -> None:
    emulator.execute("DROP TABLE mz_cluster_strategy_approvals")
    try:
        idle_cluster(emulator, name)
        run = run_cycle(db, only=name, approval=DROPS)
        assert run.signals.get("approvals") is None  # read as none while the table is missing
        (request_id,) = run.outcome.approval_requests
        assert raw_rows(emulator, request_id) == ["pending"]
    finally:
        init_tables(emulator)  # the other tests' table back, whatever happened


def test_no_answer_by_the_timeout_means_rejected(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    (request_id,) = run_cycle(db, only=name, approval=DROPS).outcome.approval_requests
    emulator.advance(TIMEOUT_S + 5)  # the HITL timeout fires a little after the expiry
    got = approvals.record_answer(
        Store(db), [request_id], approved=[request_id], by="nobody", answered=False
    )
    assert (got.rejected, got.approved, got.expired) == ([request_id], [], [])
    assert raw_rows(emulator, request_id) == ["pending", "rejected"]
    assert not_executed_notes(emulator, cid) == [("rejected by nobody", False)]
    run = run_cycle(db, only=name, approval=DROPS)
    assert drop_of(run, name)["codes"][-1] == "approval_rejected"
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_the_cli_honours_the_gate_and_names_a_bad_setting(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = idle_cluster(emulator, name)
    gate = {"MZ_SCHEDCTL_APPROVE_DROPS": "true"}
    done = cli("apply", "--filter-clusters", name, url=emulator.url, env=gate)
    assert done.returncode == 0, done.stderr
    assert any("drop_replica" in ln and " deferred " in ln for ln in done.stdout.splitlines())
    assert "awaiting approval" in done.stdout
    assert replicas(emulator, name) == {"r1": "25cc"}
    (row,) = rows(db, cid)
    assert row.status == "pending"
    bad = cli("apply", url=emulator.url, env={"MZ_SCHEDCTL_APPROVE_DROPS": "maybe"})
    assert bad.returncode == 2
    assert "approval gate: approve_drops: expected true or false" in bad.stderr
    assert replicas(emulator, name) == {"r1": "25cc"}
