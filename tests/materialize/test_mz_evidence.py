"""Evidence that survives a lost state row, end to end on the emulator with both drivers
(issue 14, defects 2, 6 and 7): replica_scope "owned" keeps its replicas after a failed
persist, a crash before persist or wipe-state; a suspended cluster whose state remembers
nothing resumes on a refused query, from the audit trail or from Materialize's
mz_cluster_replica_history (a predecessor's suspend), even a month later after retention ran;
a suspend that only partly ran brings back everything on resume."""

from __future__ import annotations

import re

import psycopg
import pytest
from mzsupport import (
    add_strategy,
    make_cluster,
    q,
    replicas,
    run_cycle,
    state_payload,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import ACTIONS, LEASES, STATE, Store

pytestmark = pytest.mark.usefixtures("tables")


def notes(run: object, name: str) -> list[str]:
    return list(run.cluster(name)["notes"])  # type: ignore[attr-defined]


def refused_query(emu: Emulator, name: str) -> None:
    """A user's query on the suspended cluster: refused, and logged as the resume signal."""
    with (
        psycopg.connect(emu.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")


def lose_state(emu: Emulator, cid: str) -> None:
    emu.execute(f"DELETE FROM {q(STATE)} WHERE cluster_id = %s", (cid,))


# Defect 2 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["persist_fails", "crash_before_persist", "wipe_state"])
def test_owned_burst_survives_a_lost_state_row(
    emulator: Emulator, db: Database, name: str, loss: str
) -> None:
    cid = make_cluster(emulator, name, objects="index", hydration="60 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "replica_scope": "owned"})
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "400cc", "replica_scope": "owned"})
    if loss == "persist_fails":
        emulator.inject_fault(r"^\s*INSERT INTO .*mz_cluster_strategy_state", "error", "disk full")
        try:
            with pytest.raises(Exception, match="disk full"):
                run_cycle(db, only=name)
        finally:
            emulator.execute("SELECT mz_emulator.clear_faults()")
        # The failed persist left its lease claim: let it expire rather than wait for its TTL.
        emulator.execute(f"DELETE FROM {q(LEASES)}")
    elif loss == "crash_before_persist":
        settings = cycle.CycleSettings()
        cycle_id = cycle.new_cycle_id("test")
        assert cycle.claim_lease(db, settings, cycle_id=cycle_id).acquired
        doc = cycle.collect(db, settings, filter_clusters=re.escape(name))
        plan = cycle.decide(doc, cycle_id=cycle_id, dry_run=False)
        cycle.apply(plan, db, settings, paused=False)  # ... and the process dies here
        emulator.execute(f"DELETE FROM {q(LEASES)}")  # its lease claim expires
    else:
        run_cycle(db, only=name)
        cycle.wipe_state(db, cycle.CycleSettings(), filter_clusters=re.escape(name))
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc", "burst": "400cc"}
    assert state_payload(emulator, cid) is None, "the state row really is lost"

    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc", "burst": "400cc"}, (
        "no burst_2 beside the burst the audit says is ours"
    )
    assert run.actions(status="planned") == []
    owned = state_payload(emulator, cid)["owned"]  # type: ignore[index]
    assert set(owned) == {"r_100cc", "burst"}, "ownership is back in the state, r1 is not ours"

    emulator.advance(60)  # r_100cc hydrates: the burst goes, r1 (not ours) stays
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}


# Defect 6 -----------------------------------------------------------------------------------


def suspend(emu: Emulator, db: Database, name: str, cid: str) -> None:
    emu.advance(70)
    add_strategy(emu, cid, "idle_suspend", {"idle_after_s": 300})
    run_cycle(db, only=name)
    emu.advance(400)
    run_cycle(db, only=name)
    assert replicas(emu, name) == {}


def test_wipe_state_of_a_suspended_cluster_resumes_from_the_audit_a_month_later(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="50cc", objects="index")
    suspend(emulator, db, name, cid)
    emulator.advance(30 * 86400)  # a month suspended: retention runs in every persist
    run_cycle(db, only=name)
    kept = emulator.execute(
        f"SELECT count(*) FROM {q(ACTIONS)} WHERE cluster_id = %s"
        " AND decision_ctx ->> 'kind' = 'drop_replica' AND executed",
        (cid,),
    )[0][0]
    assert kept == 1, "retention kept the newest suspend's drop"
    pruned = emulator.execute(
        f"SELECT count(*) FROM {q(ACTIONS)} WHERE cluster_id = %s"
        " AND decision_ctx ->> 'phase' = 'intent'",
        (cid,),
    )[0][0]
    assert pruned == 0, "retention still prunes what is not evidence"
    cycle.wipe_state(db, cycle.CycleSettings(), filter_clusters=re.escape(name))
    assert state_payload(emulator, cid) is None

    refused_query(emulator, name)
    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "50cc"}
    assert any("replica set from the audit trail" in n for n in notes(run, name)), notes(run, name)


def test_a_predecessor_suspend_resumes_from_materialize_replica_history(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="100cc", replica="r_100cc", objects="index")
    emulator.advance(70)
    # mz-clusterctl suspended it: its own DDL (no audit row of ours) and a version-1 state row.
    emulator.execute(f"DROP CLUSTER REPLICA {q(name)}.{q('r_100cc')}")
    emulator.execute(
        f"INSERT INTO {q(STATE)} (cluster_id, state_version, payload)"
        " VALUES (%s, 1, '{\"suspended\": true}'::jsonb)",
        (cid,),
    )
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(60)
    refused_query(emulator, name)
    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    assert any("replica set from mz_cluster_replica_history" in n for n in notes(run, name)), notes(
        run, name
    )


# Defect 7 -----------------------------------------------------------------------------------


def test_a_suspend_whose_second_drop_failed_resumes_both_replicas(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    emulator.execute(f"CREATE CLUSTER REPLICA {q(name)}.{q('r2')} (SIZE = '50cc')")
    emulator.advance(70)
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})
    run_cycle(db, only=name)
    emulator.advance(400)
    emulator.inject_fault(
        "^" + re.escape(f"DROP CLUSTER REPLICA {q(name)}.{q('r2')}"), "error", "injected"
    )
    try:
        run = run_cycle(db, only=name)
    finally:
        emulator.execute("SELECT mz_emulator.clear_faults()")
    assert "failed" in run.outcomes()
    assert replicas(emulator, name) == {"r2": "50cc"}, "the suspend only partly ran"

    emulator.advance(120)  # past the backoff: the suspend finishes
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {}
    idle = state_payload(emulator, cid)["strategies"]["idle_suspend"]  # type: ignore[index]
    assert sorted(r["name"] for r in idle["remembered"]) == ["r1", "r2"]

    refused_query(emulator, name)
    emulator.advance(5)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "r2": "50cc"}, "not shrunk for good"


def test_prune_keeps_the_newest_evidence_per_replica(emulator: Emulator, db: Database) -> None:
    """Retention on its own: an old executed create of a replica still running is kept, an
    old intent and an older create of the same name are pruned."""
    store = Store(db)
    emulator.execute(
        f"INSERT INTO {q(ACTIONS)} (action_id, cluster_id, decision_ctx, executed, created_at)"
        ' VALUES (\'old\', \'u_ev\', \'{"kind": "create_replica", "replica": "x",'
        ' "phase": "outcome"}\'::jsonb, true, now() - INTERVAL \'20 days\'),'
        ' (\'new\', \'u_ev\', \'{"kind": "create_replica", "replica": "x",'
        ' "phase": "outcome"}\'::jsonb, true, now() - INTERVAL \'10 days\'),'
        ' (\'intent\', \'u_ev\', \'{"kind": "create_replica", "replica": "x",'
        ' "phase": "intent"}\'::jsonb, NULL, now() - INTERVAL \'10 days\')'
    )
    store.prune(audit_days=7)
    left = emulator.execute(
        f"SELECT action_id FROM {q(ACTIONS)} WHERE cluster_id = 'u_ev' ORDER BY action_id"
    )
    assert [r[0] for r in left] == ["new"]
