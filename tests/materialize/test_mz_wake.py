"""The event trigger's reads (runtime/event_reads.py) and its decision (engine/wake.py) on the
emulator, through both drivers: a refused query on a suspended cluster and a hydrated base
under a burst wake the cycle, the cycle that acts on them ends the condition, and a poll costs
the same five statements at 10 and at 1,000 clusters."""

from __future__ import annotations

import psycopg
import pytest
from mzsupport import (
    add_strategy,
    connect,
    make_cluster,
    q,
    replicas,
    run_cycle,
    state_payload,
    statement_log,
)

from benchmarks import scenario
from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.engine.wake import WakeDecision, decide_wake
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.event_reads import EVENT_STATEMENTS_PER_POLL, read_wake_facts
from mz_schedctl_provider.runtime.store import Store

DRIVERS = ("psycopg", "psycopg2")


def poll(db: Database) -> WakeDecision:
    return decide_wake(read_wake_facts(db, Store(db)), min_interval_s=30)


def mine(decision: WakeDecision, cid: str) -> list[str]:
    return [w.reason for w in decision.reasons if w.cluster_id == cid]


def suspended_by_the_controller(emulator: Emulator, db: Database, name: str) -> str:
    """A cluster with an index that idle_suspend suspended a minute ago; its id."""
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(70)
    run_cycle(db, only=name)
    emulator.advance(400)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {}, "suspended"
    emulator.advance(60)
    return cid


@pytest.mark.usefixtures("tables")
def test_a_refused_query_on_a_suspended_cluster_wakes_until_a_cycle_resumes_it(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = suspended_by_the_controller(emulator, db, name)
    assert mine(poll(db), cid) == [], "nobody asked: no wake"

    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    decision = poll(db)
    assert decision.wake and mine(decision, cid) == ["refused_query"]

    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}
    emulator.advance(60)
    assert mine(poll(db), cid) == [], "resumed: the condition is gone"


@pytest.mark.usefixtures("tables")
def test_the_rate_limit_holds_a_wake_right_after_a_cycle(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    run_cycle(db, only=name)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {}
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    held = poll(db)
    assert not held.wake and mine(held, cid) == ["refused_query"]
    assert held.held_until is not None and held.cursor is not None
    emulator.advance(31)
    assert poll(db).wake


@pytest.mark.usefixtures("tables")
def test_a_hydrated_base_under_a_burst_wakes_until_the_burst_is_dropped(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="mv", hydration="60 seconds")
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc"})
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}
    assert "started_at" in state_payload(emulator, cid)["strategies"]["burst"]  # type: ignore[index]
    emulator.advance(40)  # the burst is hydrated, r1 not yet
    assert mine(poll(db), cid) == []
    emulator.advance(30)  # r1 hydrated at ~63 s
    decision = poll(db)
    assert decision.wake and mine(decision, cid) == ["burst_base_hydrated"]
    run = run_cycle(db, only=name)
    assert [(a["kind"], a["replica_name"]) for a in run.actions()] == [("drop_replica", "burst")]
    emulator.advance(60)
    assert mine(poll(db), cid) == []


def test_the_trigger_sends_the_same_statements_at_10_and_1000_clusters() -> None:
    """A realistic fleet (benchmarks/scenario.py) after one real cycle (so clusters are
    suspended, bursting and resizing): the poll's statement count, as the wrapper counts it
    and as the emulator logged it, does not depend on the fleet size, with either driver."""
    counts: dict[int, dict[str, tuple[int, int]]] = {}
    watched: dict[int, int] = {}
    for n in (10, 1000):
        # Every statement logged (the default max rate is 0.99), so the log counts them all.
        with run_emulator(port=0, log_flush_s=0, sample_rate=1.0) as emu:
            scenario.build(emu.url, n)
            cycle_db = connect(emu, "psycopg")
            run_cycle(cycle_db)
            cycle_db.close()
            emu.advance(60)
            counts[n] = {}
            for driver in DRIVERS:
                db = connect(emu, driver)
                try:
                    sent, logged = db.statements, len(statement_log(emu))
                    facts = read_wake_facts(db, Store(db))
                    counts[n][driver] = (db.statements - sent, len(statement_log(emu)) - logged)
                finally:
                    db.close()
            watched[n] = len({r.cluster_id for r in facts.replicas})
    expected = (EVENT_STATEMENTS_PER_POLL, EVENT_STATEMENTS_PER_POLL)
    assert counts[10] == counts[1000] == {d: expected for d in DRIVERS}
    assert 0 < watched[10] < watched[1000], watched  # the replica read covered more clusters


@pytest.mark.usefixtures("tables")
def test_a_refusal_during_a_run_is_not_lost(emulator: Emulator, db: Database, name: str) -> None:
    """A query refused while a cycle runs (after its signals were read, before its persist):
    that cycle cannot resume the cluster, and once it ends the trigger wakes for the refusal
    (past the rate limit), so the next cycle does: the event is not lost with the run."""
    from mz_schedctl_provider.runtime import cycle

    cid = suspended_by_the_controller(emulator, db, name)
    settings = cycle.CycleSettings()
    cycle_id = cycle.new_cycle_id("test")
    assert cycle.claim_lease(db, settings, cycle_id=cycle_id).acquired
    signals = cycle.collect(db, settings, filter_clusters=name)
    plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=name)
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    emulator.advance(12)
    # The cycle writes after the query (another cluster's action audited, say): the cursor,
    # its newest write, passes the refusal by more than the flush lag.
    emulator.execute(
        "INSERT INTO mz_cluster_strategy_actions (action_id, cluster_id, executed)"
        " VALUES ('other-cluster', 'u999', true)"
    )
    cycle.persist(plan, cycle.apply(plan, db, settings), db, settings)
    assert replicas(emulator, name) == {}, "the running cycle read its signals before the query"
    emulator.advance(31)  # past the rate limit after that cycle
    assert mine(poll(db), cid) == ["refused_query"]
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}
