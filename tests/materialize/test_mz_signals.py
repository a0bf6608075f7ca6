"""The signals stage reads everything in a constant number of statements, whatever the number
of clusters: counted by the connection wrapper and by the emulator's own statement log (here
sampled at rate 1, so every statement is logged)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from mzsupport import DRIVERS, add_strategy, connect, make_cluster, statement_log

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")

STRATEGIES = {
    "target_size": {"target_size": "100cc"},
    "burst": {"burst_replica_size": "800cc"},
    "idle_suspend": {"idle_after_s": 600},
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """This module's own emulator, logging every statement."""
    with run_emulator(port=0, log_flush_s=0, sample_rate=1.0) as emu:
        yield emu


def add_clusters(emu: Emulator, prefix: str, first: int, last: int) -> None:
    for i in range(first, last):
        kind = ("mv", "index", "source", None)[i % 4]
        cid = make_cluster(emu, f"{prefix}{i}", objects=kind)
        for strategy, config in STRATEGIES.items():
            add_strategy(emu, cid, strategy, config)
        emu.record_activity(f"{prefix}{i}")


def measure(emu: Emulator, db: Database) -> tuple[int, int, dict[str, object]]:
    """(statements the wrapper sent, statements the emulator logged, the signals document)."""
    sent, logged = db.statements, len(statement_log(emu))
    doc = cycle.collect(db, cycle.CycleSettings())
    return db.statements - sent, len(statement_log(emu)) - logged, doc


def test_signals_cost_the_same_for_1_and_20_clusters(emulator: Emulator, name: str) -> None:
    prefix = f"{name}_"
    drivers = {driver: connect(emulator, driver) for driver in DRIVERS}
    try:
        add_clusters(emulator, prefix, 0, 1)
        one = {d: measure(emulator, db) for d, db in drivers.items()}
        add_clusters(emulator, prefix, 1, 20)
        emulator.advance(30)
        many = {d: measure(emulator, db) for d, db in drivers.items()}
    finally:
        for db in drivers.values():
            db.close()

    for driver in DRIVERS:
        (sent_one, logged_one, doc_one), (sent_many, logged_many, doc_many) = (
            one[driver],
            many[driver],
        )
        mine_one = [c for c in doc_one["clusters"] if c["name"].startswith(prefix)]  # type: ignore[attr-defined,index]
        mine_many = [c for c in doc_many["clusters"] if c["name"].startswith(prefix)]  # type: ignore[attr-defined,index]
        assert len(mine_one) == 1 and len(mine_many) == 20
        assert sent_one == sent_many, (driver, sent_one, sent_many)
        assert logged_one == logged_many == sent_one, (driver, logged_one, logged_many, sent_one)
        assert sent_one <= 16  # 16th: the approval gate's requests (runtime/approvals.py)
        # The per-cluster facts are really there: replicas and activity of every cluster.
        assert all(c["replicas"] for c in mine_many)
        assert all(c["last_activity"] for c in mine_many)


def replica_facts(db: Database, cluster: str) -> dict[str, dict[str, object]]:
    """Per replica name of the cluster: created_at, crash_count and oom_count as signals read."""
    doc = cycle.collect(db, cycle.CycleSettings())
    [found] = [c for c in doc["clusters"] if c["name"] == cluster]  # type: ignore[attr-defined,index]
    return {
        r["name"]: {
            "created_at": datetime.fromisoformat(r["created_at"]) if r["created_at"] else None,
            "crash_count": r["crash_count"],
            "oom_count": r["oom_count"],
        }
        for r in found["replicas"]
    }


def test_crashes_count_only_after_the_replica_was_online(
    emulator: Emulator, db: Database, name: str
) -> None:
    """A real injected crash and restart on the emulator, read by the signals stage: an offline
    row before the first online one is start-up, not a crash (Kubernetes reports a starting pod
    offline with reason NULL); after it, it is; an OOM kill counts even while starting."""
    emulator.execute("SELECT mz_emulator.set_delays('3 seconds', '60 seconds')")
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc"})
    created = emulator.execute(
        "SELECT created_at FROM mz_internal.mz_cluster_replica_history WHERE replica_id ="
        " (SELECT id FROM mz_catalog.mz_cluster_replicas WHERE cluster_id = %s AND name = 'r1')",
        (cid,),
    )[0][0]
    facts = replica_facts(db, name)["r1"]
    # Still initializing, no status history yet: its creation comes from the replica history.
    assert facts == {"created_at": created, "crash_count": 0, "oom_count": 0}

    # It dies before it ever came up: start-up, not a crash.
    emulator.execute("SELECT mz_emulator.inject_crash(%s, 'r1', NULL)", (name,))
    emulator.advance(4)  # restarted one second later, online three seconds after that
    assert replica_facts(db, name)["r1"]["crash_count"] == 0

    # Online, then a real crash (reason NULL, as the docker image reports it) and a restart.
    emulator.execute("SELECT mz_emulator.inject_crash(%s, 'r1', 'segfault')", (name,))
    emulator.advance(4)
    emulator.advance(61)  # and rehydrates
    assert hydrated_on(emulator, cid) == {"r1"}
    assert replica_facts(db, name)["r1"] == {
        "created_at": created,
        "crash_count": 1,
        "oom_count": 0,
    }

    # An OOM kill is a crash and an OOM; a second replica OOM-killed while starting counts too.
    emulator.inject_oom(name, "r1")
    emulator.execute(f"CREATE CLUSTER REPLICA {name}.r2 (SIZE = '25cc')")
    emulator.inject_oom(name, "r2")
    facts_now = replica_facts(db, name)
    assert {k: facts_now["r1"][k] for k in ("crash_count", "oom_count")} == {
        "crash_count": 2,
        "oom_count": 1,
    }
    assert {k: facts_now["r2"][k] for k in ("crash_count", "oom_count")} == {
        "crash_count": 1,
        "oom_count": 1,
    }

    # Out of the crash window, nothing counts any more.
    emulator.advance(3601)
    assert {r: (f["crash_count"], f["oom_count"]) for r, f in replica_facts(db, name).items()} == {
        "r1": (0, 0),
        "r2": (0, 0),
    }


def hydrated_on(emu: Emulator, cid: str) -> set[str]:
    """Replicas of the cluster on which its user index is hydrated."""
    return {
        str(r[0])
        for r in emu.execute(
            "SELECT r.name FROM mz_internal.mz_compute_hydration_statuses h"
            " JOIN mz_catalog.mz_cluster_replicas r ON r.id = h.replica_id"
            " WHERE r.cluster_id = %s AND h.object_id LIKE 'u%%' AND h.hydrated",
            (cid,),
        )
    }
