"""Apply in a handful of statements plus one per action (issue 16), with every safety property
kept: one fresh read before the DDL phase, all intents in one INSERT before the first DDL, all
outcomes in one after the last; a drop whose survivors' hydration was read too long ago is
re-checked singly (in the previous DDL's round trip where the driver pipelines); a crash
mid-phase still writes the outcomes of what finished. Counted in statements and round trips,
never timed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mzsupport import add_strategy, audit, connect, make_cluster, q, replicas

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")
SETTINGS = cycle.CycleSettings(holder="batching")
HYDRATE_S = 120
CREATES = 4


def _fleet(emu: Emulator, name: str) -> tuple[list[str], str]:
    """``CREATES`` hydrated 25cc clusters told to become 50cc (each plans a CREATE), then one
    whose 50cc replica is hydrated already (it plans the DROP of r1, guarded: its survivor
    must be hydrated). Returns the creating clusters' ids and the dropping one's."""
    ids = []
    for i in range(CREATES):
        cid = make_cluster(emu, f"{name}_a{i}", hydration="5 seconds")
        add_strategy(emu, cid, "target_size", {"target_size": "50cc"})
        ids.append(cid)
    last = f"{name}_z"
    drop_id = make_cluster(emu, last, hydration="5 seconds")
    emu.execute(f"CREATE CLUSTER REPLICA {q(last)}.r_50cc (SIZE = '50cc')")
    add_strategy(emu, drop_id, "target_size", {"target_size": "50cc"})
    emu.advance(HYDRATE_S)
    return ids, drop_id


def _plan(db: Database, name: str) -> dict[str, Any]:
    pattern = re.escape(name) + "_.*"
    cycle_id = cycle.new_cycle_id("batching")
    assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
    signals = cycle.collect(db, SETTINGS, filter_clusters=pattern)
    plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=pattern)
    planned = [(c["cluster_name"], a["kind"]) for c in plan["clusters"] for a in c["actions"]]
    # The guarded DROP comes last, CREATES + 1 statements after the fresh read: stale.
    assert planned == [(f"{name}_a{i}", "create_replica") for i in range(CREATES)] + [
        (f"{name}_z", "drop_replica")
    ], planned
    return plan


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_apply_sends_a_handful_of_statements_plus_one_per_action(
    emulator: Emulator, name: str, driver: str
) -> None:
    _fleet(emulator, name)
    db = connect(emulator, driver)
    try:
        plan = _plan(db, name)
        statements, round_trips = db.statements, db.round_trips
        result = cycle.apply(plan, db, SETTINGS)
        sent, waited = db.statements - statements, db.round_trips - round_trips
        cycle.persist(plan, result, db, SETTINGS)
    finally:
        db.close()
    assert [r["outcome"] for r in result["results"]] == ["succeeded"] * (CREATES + 1)
    # Lease check, interrupted-intents read, the fresh read, the intents, 5 DDLs, the DROP's
    # single re-check of its survivors, the outcomes.
    assert sent == 4 + (CREATES + 1) + 1 + 1
    # psycopg 3 sends the re-check in the last CREATE's round trip; psycopg2 cannot.
    assert waited == sent - (1 if driver == "psycopg" else 0)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_survivor_lost_during_the_ddl_phase_stops_its_drop(
    emulator: Emulator, name: str, driver: str
) -> None:
    """The survivor r_50cc is OOM-killed after the fresh read, when the first CREATE goes
    out: the fresh read said it was hydrated, but by the DROP that read is stale, so the drop
    is re-checked singly and refused; r1 keeps serving."""
    _ids, drop_id = _fleet(emulator, name)
    base = connect(emulator, driver)
    killed: list[str] = []

    class OomDuringPhase(Database):
        def _run(self, sql: str, params: Any, **bounds: Any) -> Any:
            if sql.startswith("CREATE CLUSTER REPLICA") and not killed:
                emulator.inject_oom(f"{name}_z", "r_50cc")
                killed.append(sql)
            return super()._run(sql, params, **bounds)

    db = OomDuringPhase(base.conn)
    try:
        plan = _plan(db, name)
        result = cycle.apply(plan, db, SETTINGS)
        cycle.persist(plan, result, db, SETTINGS)
    finally:
        db.close()
    assert killed
    outcomes = [r["outcome"] for r in result["results"]]
    assert outcomes == ["succeeded"] * CREATES + ["failed"], result
    assert "no other hydrated replica" in (result["results"][-1]["error"] or "")
    assert replicas(emulator, f"{name}_z") == {"r1": "25cc", "r_50cc": "50cc"}
    rows = audit(emulator, drop_id)
    assert [(r.phase, r.executed) for r in rows] == [("intent", None), ("outcome", False)]


def test_a_crash_mid_phase_writes_the_outcomes_of_what_finished(
    emulator: Emulator, name: str
) -> None:
    """apply fails before the third CREATE is sent (an unexpected error in the worker, the
    connection still up): the outcomes of the two CREATEs that ran are written before the
    error leaves apply; the retry (the same plan, as Airflow retries the task) completes the
    rest, and every intent ends with an outcome."""
    ids, drop_id = _fleet(emulator, name)

    class Crashing(Database):
        def _run(self, sql: str, params: Any, **bounds: Any) -> Any:
            if sql.startswith(f'CREATE CLUSTER REPLICA "{name}_a2"'):
                raise RuntimeError("the worker crashed")
            return super()._run(sql, params, **bounds)

    db = Database.connect(emulator.url)
    try:
        plan = _plan(db, name)
    finally:
        db.close()
    crashing = Crashing(Database.connect(emulator.url).conn)
    try:
        with pytest.raises(RuntimeError):
            cycle.apply(plan, crashing, SETTINGS)
    finally:
        crashing.close()
    phases = {cid: [(r.phase, r.executed) for r in audit(emulator, cid)] for cid in ids}
    assert phases[ids[0]] == phases[ids[1]] == [("intent", None), ("outcome", True)]
    assert phases[ids[2]] == phases[ids[3]] == [("intent", None)]

    db = Database.connect(emulator.url)
    try:
        result = cycle.apply(plan, db, SETTINGS)
        cycle.persist(plan, result, db, SETTINGS)
    finally:
        db.close()
    # The first two have their outcome already (not interrupted): the retry sees them done.
    assert [r["outcome"] for r in result["results"]] == ["already_true"] * 2 + ["succeeded"] * (
        CREATES - 1
    )
    for cid in [*ids, drop_id]:
        rows = audit(emulator, cid)
        intents = {r.action_id for r in rows if r.phase == "intent"}
        outcomes = [r.action_id for r in rows if r.phase == "outcome"]
        assert set(outcomes) == intents, rows
    for i in range(CREATES):
        assert replicas(emulator, f"{name}_a{i}") == {"r1": "25cc", "r_50cc": "50cc"}


def test_a_drop_counts_the_replicas_this_apply_dropped_as_gone(
    emulator: Emulator, name: str
) -> None:
    """r1 and r2 retire for a hydrated r_50cc, which is OOM-killed after decide. The fresh
    read sees r1 and r2 hydrated: dropping r1 leaves r2, but r2's drop must not count r1 (gone
    since this apply's own DROP) as its hydrated survivor: it is refused and r2 keeps
    serving."""
    cluster = f"{name}_pair"
    cid = make_cluster(emulator, cluster, hydration="5 seconds")
    emulator.execute(f"CREATE CLUSTER REPLICA {q(cluster)}.r2 (SIZE = '25cc')")
    emulator.execute(f"CREATE CLUSTER REPLICA {q(cluster)}.r_50cc (SIZE = '50cc')")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    emulator.advance(HYDRATE_S)
    db = Database.connect(emulator.url)
    try:
        cycle_id = cycle.new_cycle_id("batching")
        assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
        pattern = re.escape(cluster)
        signals = cycle.collect(db, SETTINGS, filter_clusters=pattern)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=pattern)
        planned = [(a["kind"], a["replica_name"]) for c in plan["clusters"] for a in c["actions"]]
        assert planned == [("drop_replica", "r1"), ("drop_replica", "r2")]
        emulator.inject_oom(cluster, "r_50cc")
        result = cycle.apply(plan, db, SETTINGS)
        cycle.persist(plan, result, db, SETTINGS)
    finally:
        db.close()
    assert [r["outcome"] for r in result["results"]] == ["succeeded", "failed"]
    assert replicas(emulator, cluster) == {"r2": "25cc", "r_50cc": "50cc"}
