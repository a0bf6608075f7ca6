"""Fault injection through the emulator: the connection dropped before and after each kind of
DDL, a DDL refused, a statement timeout (a slow statement past ``statement_timeout``) at each
place the controller runs one, and the emulator restarted between any two of apply's
statements. In every case the next cycles converge (target reached, nothing duplicated) and
the audit is complete, read from the emulator's statement log."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mzsupport import add_strategy, cli, make_cluster, replicas, server_now
from safetysupport import FIGURES, Observer, audit_gaps, replica_ddl

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database, DatabaseError
from mz_schedctl_provider.runtime.store import Store

pytestmark = pytest.mark.usefixtures("tables")
SETTINGS = cycle.CycleSettings(holder="safety-faults")
TIMEOUT_S = 0.5


@pytest.fixture
def obs(emulator: Emulator) -> Iterator[Observer]:
    o = Observer(emulator)
    yield o
    o.close()


def armed(obs: Observer) -> int:
    """Faults still waiting for their statement."""
    return int(obs.admin("SELECT count(*) FROM mz_emulator.faults WHERE remaining > 0")[0][0])


def plan_for(db: Database, name: str) -> dict[str, Any]:
    cycle_id = cycle.new_cycle_id("faults")
    assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
    signals = cycle.collect(db, SETTINGS, filter_clusters=re.escape(name))
    return cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=re.escape(name))


def run_task(
    plan: dict[str, Any], connect: Callable[[], Database], *, attempts: int = 3
) -> dict[str, Any]:
    """apply then persist as Airflow runs them: a task that raises is retried (up to
    ``attempts``) on a new connection with the same plan document."""
    last: Exception | None = None
    for _ in range(attempts):
        live = [connect()]

        def reconnect(live: list[Database] = live) -> Database:
            live.append(connect())
            return live[-1]

        try:
            result = cycle.apply(plan, live[0], SETTINGS, reconnect=reconnect)
            cycle.persist(plan, result, live[-1], SETTINGS)
            return result
        except DatabaseError as exc:  # the task fails; Airflow retries it
            last = exc
        finally:
            for db in live:
                db.close()
    raise AssertionError(f"apply failed {attempts} times: {last}")


def converge(emu: Emulator, name: str, *, cycles: int = 6) -> list[int]:
    """Cycles 70 s apart (past a first backoff of 60 s and any hydration) until one plans
    nothing; returns the planned-action count of each."""
    counts = []
    for _ in range(cycles):
        emu.advance(70)
        db = Database.connect(emu.url)
        try:
            plan = plan_for(db, name)
            pending = [
                a
                for c in plan["clusters"]
                for a in c["actions"]
                if a["status"] in ("planned", "deferred")
            ]
            counts.append(len(pending))
            run_task(plan, lambda: Database.connect(emu.url))
        finally:
            db.close()
        if not pending:
            return counts
    raise AssertionError(f"no convergence: planned per cycle {counts}")


def assert_converged_and_audited(
    emu: Emulator, obs: Observer, name: str, cid: str, since: Any
) -> None:
    converge(emu, name)
    assert replicas(emu, name) == {"r_100cc": "100cc"}
    ddl = [d for d in replica_ddl(obs, since=since) if d.controller and d.cluster == name]
    creates = Counter(d.size for d in ddl if d.kind == "create" and d.ok)
    assert creates == {"100cc": 1}, ddl
    assert audit_gaps(obs, since=since, cluster_ids=[cid]) == []


def resize_cluster(emu: Emulator, name: str, *, ready_to_drop: bool) -> str:
    """A hydrated 25cc cluster told to become 100cc; with ``ready_to_drop`` the 100cc replica
    exists and is hydrated already, so the next cycle's DDL is the DROP of r1."""
    cid = make_cluster(emu, name, objects="index")
    emu.advance(70)
    add_strategy(emu, cid, "target_size", {"target_size": "100cc"})
    if ready_to_drop:
        db = Database.connect(emu.url)
        try:
            run_task(plan_for(db, name), lambda: Database.connect(emu.url))
        finally:
            db.close()
        assert replicas(emu, name) == {"r1": "25cc", "r_100cc": "100cc"}
    return cid


@pytest.mark.parametrize("kind", ["CREATE", "DROP"])
@pytest.mark.parametrize("action", ["drop_before", "drop_after", "error"])
def test_a_fault_on_each_ddl_converges_with_a_complete_audit(
    emulator: Emulator, obs: Observer, name: str, kind: str, action: str
) -> None:
    since = server_now(emulator)
    cid = resize_cluster(emulator, name, ready_to_drop=kind == "DROP")
    # The drop waits for r_100cc to be hydrated, so the CREATE case faults its first cycle.
    if kind == "DROP":
        emulator.advance(70)
    emulator.inject_fault(
        rf'^\s*{kind} CLUSTER REPLICA "{re.escape(name)}"', action, "injected", "XX000"
    )
    FIGURES["faults_injected"] += 1
    db = Database.connect(emulator.url)
    try:
        plan = plan_for(db, name)
    finally:
        db.close()
    assert [a["kind"] for c in plan["clusters"] for a in c["actions"]] == [
        "create_replica" if kind == "CREATE" else "drop_replica"
    ]
    result = run_task(plan, lambda: Database.connect(emulator.url), attempts=1)
    assert not armed(obs)
    expected = "succeeded" if action == "drop_after" else "failed"
    assert [r["outcome"] for r in result["results"]] == [expected]
    assert audit_gaps(obs, since=since, cluster_ids=[cid]) == []

    assert_converged_and_audited(emulator, obs, name, cid, since)


@pytest.mark.parametrize(
    "where",
    [
        "signals",  # a read of collect: the cycle fails before planning
        "intent",  # the audit intent INSERT before the DDL: nothing ran
        "ddl",  # the DDL itself: cancelled, never ran
        "outcome",  # the outcome INSERT after the DDL ran
        "persist",  # the state INSERT of persist
    ],
)
def test_a_statement_timeout_anywhere_converges(
    emulator: Emulator, obs: Observer, name: str, where: str
) -> None:
    since = server_now(emulator)
    cid = resize_cluster(emulator, name, ready_to_drop=False)
    # Statements are sent with their parameters bound separately (psycopg 3): an audit
    # INSERT's text does not say its phase, so the intents INSERT is the first actions INSERT
    # of the cycle and the outcomes INSERT the second (a zero delay lets the first through).
    audit_insert = r"^INSERT INTO \S+\.\"mz_cluster_strategy_actions\""
    faults = {
        "signals": [(r"^SELECT size, credits_per_hour", "slow")],
        "intent": [(audit_insert, "slow")],
        "ddl": [(rf'^CREATE CLUSTER REPLICA "{re.escape(name)}"', "slow")],
        "outcome": [(audit_insert, "0"), (audit_insert, "slow")],
        "persist": [(r"^INSERT INTO \S+\.\"mz_cluster_strategy_state\"", "slow")],
    }[where]
    for pattern, delay in faults:
        emulator.inject_fault(pattern, "delay", str(TIMEOUT_S * 4) if delay == "slow" else delay)
    FIGURES["faults_injected"] += 1

    def slow() -> Database:
        return Database.connect(emulator.url, statement_timeout_s=TIMEOUT_S)

    db = slow()
    try:
        if where == "signals":
            cycle_id = cycle.new_cycle_id("faults")
            assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
            with pytest.raises(DatabaseError) as info:
                cycle.collect(db, SETTINGS, filter_clusters=re.escape(name))
            assert info.value.sqlstate == "57014"
            # The DAG's persist task runs anyway (trigger rule all_done) and, finding no
            # plan, releases the failed cycle's claim: as it does.
            Store(db).release_lease(cycle_id=cycle_id)
        else:
            plan = plan_for(db, name)
            run_task(plan, slow)
    finally:
        db.close()
    assert not armed(obs), "the slow statement never came"
    assert_converged_and_audited(emulator, obs, name, cid, since)


@pytest.mark.parametrize("at", range(8))
def test_the_emulator_restarting_between_any_two_statements_of_apply(
    emulator: Emulator, obs: Observer, name: str, at: int
) -> None:
    """apply of a resize (one CREATE) sends: 0 lease check, 1 interrupted-intents read, 2 the
    fresh catalog read of the whole batch, 3 the intents INSERT, 4 the DDL, 5 the outcomes
    INSERT; then persist: 6 the state INSERT, 7 the first retention DELETE. (Before batching
    the same positions were lease, intents read, re-read, intent, DDL, outcome, state,
    retention: every case keeps its place.) The emulator restarts just before statement
    ``at``."""
    since = server_now(emulator)
    cid = resize_cluster(emulator, name, ready_to_drop=False)

    class Restarting(Database):
        def _run(self, sql: str, params: Any, **bounds: Any) -> Any:
            if self.statements == at and not restarted:
                restarted.append(sql)
                emulator.restart()
                FIGURES["faults_injected"] += 1
            return super()._run(sql, params, **bounds)

    restarted: list[str] = []
    db = Database.connect(emulator.url)
    try:
        plan = plan_for(db, name)
    finally:
        db.close()
    run_task(plan, lambda: Restarting.connect(emulator.url))
    assert restarted, f"apply and persist sent fewer than {at + 1} statements"
    assert_converged_and_audited(emulator, obs, name, cid, since)


@pytest.mark.parametrize("stage", ["signals", "apply"])
def test_a_cli_cycle_that_fails_does_not_leave_its_lease_behind(
    emulator: Emulator, obs: Observer, name: str, stage: str
) -> None:
    """A refused statement after the claim fails the run (exit 1), and the next run, right
    after, applies: the failed cycle released its claim instead of blocking every cycle for
    the lease TTL (15 minutes by default)."""
    since = server_now(emulator)
    cid = resize_cluster(emulator, name, ready_to_drop=False)
    pattern = {
        "signals": r"^SELECT size, credits_per_hour",
        "apply": r"^INSERT INTO \S+\.\"mz_cluster_strategy_actions\"",
    }[stage]
    emulator.inject_fault(pattern, "error", "injected refusal", "XX000")
    FIGURES["faults_injected"] += 1

    failed = cli("apply", "--filter-clusters", re.escape(name), url=emulator.url)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "injected refusal" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not armed(obs)

    again = cli("apply", "--filter-clusters", re.escape(name), url=emulator.url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    assert audit_gaps(obs, since=since, cluster_ids=[cid]) == []
