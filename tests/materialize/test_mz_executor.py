"""The executor against the emulator: re-check before each DDL (a retried apply never
duplicates work), one cluster's failure stops only that cluster, state is persisted only where
every action succeeded, every DDL sent has its intent and outcome audited, and a connection
dropped right after a DDL is resolved by reading the truth back."""

from __future__ import annotations

import re
from typing import Any

import pytest
from mzsupport import (
    add_strategy,
    audit,
    cli,
    connect,
    ddl_sent,
    make_cluster,
    replicas,
    run_cycle,
    server_now,
    state_payload,
    state_rows,
    statement_log,
    validate,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, Database

pytestmark = pytest.mark.usefixtures("tables")
SETTINGS = cycle.CycleSettings()


@pytest.fixture(autouse=True)
def no_faults_left(emulator: Emulator) -> Any:
    yield
    emulator.execute("SELECT mz_emulator.clear_faults()")


def planned(db: Database, name: str) -> dict[str, Any]:
    """signals -> decide for the clusters matching ``name``, with our lease claimed."""
    cycle_id = cycle.new_cycle_id("test")
    assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
    signals = cycle.collect(db, SETTINGS, filter_clusters=name)
    return cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=name)


def assert_every_ddl_audited(emu: Emulator, since: Any) -> None:
    """Each replica DDL the controller sent has an intent row before it and an outcome row
    with the same action id (read from the emulator's log and the audit table)."""
    sent = [
        (s, at)
        for s, _status, at in statement_log(emu)
        if re.match(r"(CREATE|DROP) CLUSTER REPLICA", s) and at >= since
    ]
    assert sent
    rows = emu.execute(
        "SELECT action_id, action_sql, decision_ctx ->> 'phase', executed, created_at"
        " FROM mz_cluster_strategy_actions WHERE created_at >= %s",
        (since,),
    )
    for sql_text, at in sent:
        intents = [r for r in rows if r[1] == sql_text and r[2] == "intent" and r[4] <= at]
        assert intents, f"no intent audited before {sql_text}"
        ids = {r[0] for r in intents}
        outcomes = [r for r in rows if r[0] in ids and r[2] == "outcome"]
        assert outcomes, f"no outcome audited for {sql_text}"


def test_apply_twice_from_one_plan_never_duplicates(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    plan = planned(db, name)

    first = cycle.apply(plan, db, SETTINGS)
    second = cycle.apply(plan, db, SETTINGS)  # an Airflow retry of the same task
    validate(second, "apply_result")

    assert [r["outcome"] for r in first["results"]] == ["succeeded"]
    assert [r["outcome"] for r in second["results"]] == ["already_true"]
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    creates = [s for s in ddl_sent(emulator, since=since) if f'"{name}"' in s]
    assert len(creates) == 1
    outcomes = [r for r in audit(emulator, cid) if r.phase == "outcome"]
    assert [r.executed for r in outcomes] == [True, False]
    assert outcomes[1].ctx["note"] == "replica already exists with that size"
    assert_every_ddl_audited(emulator, since)
    cycle.persist(plan, second, db, SETTINGS)

    # The same for a drop: the second attempt finds the replica already gone.
    emulator.advance(40)
    plan = planned(db, name)
    assert [a["kind"] for c in plan["clusters"] for a in c["actions"]] == ["drop_replica"]
    first = cycle.apply(plan, db, SETTINGS)
    second = cycle.apply(plan, db, SETTINGS)
    assert [r["outcome"] for r in first["results"]] == ["succeeded"]
    assert [r["outcome"] for r in second["results"]] == ["already_true"]
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    cycle.persist(plan, second, db, SETTINGS)


def test_a_failed_ddl_stops_its_cluster_only_and_keeps_its_state(
    emulator: Emulator, db: Database, name: str
) -> None:
    # Data as big as 60 s at 25cc, so nothing is hydrated when the cycle runs.
    bad = make_cluster(emulator, f"{name}_bad", objects="index", hydration="60 seconds")
    good = make_cluster(emulator, f"{name}_good", objects="index", hydration="60 seconds")
    for cid in (bad, good):
        add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
        add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc"})
    since = server_now(emulator)
    emulator.inject_fault(
        "^" + re.escape(f'CREATE CLUSTER REPLICA "{name}_bad"."r_100cc"'),
        "error",
        "injected: out of quota",
        "53000",
    )

    run = run_cycle(db, pattern=f"{name}_.*")

    bad_plan, good_plan = run.cluster(f"{name}_bad"), run.cluster(f"{name}_good")
    outcome = {r["action_id"]: r for r in run.result["results"]}  # type: ignore[union-attr]
    assert [outcome[a["id"]]["outcome"] for a in bad_plan["actions"]] == [
        "failed",
        "not_executed",
    ]
    assert "injected: out of quota" in outcome[bad_plan["actions"][0]["id"]]["error"]
    assert [outcome[a["id"]]["outcome"] for a in good_plan["actions"]] == [
        "succeeded",
        "succeeded",
    ]
    # Ground truth: the failed cluster got nothing (its burst was never attempted).
    assert replicas(emulator, f"{name}_bad") == {"r1": "25cc"}
    assert replicas(emulator, f"{name}_good") == {
        "r1": "25cc",
        "r_100cc": "100cc",
        "burst": "800cc",
    }
    assert not [s for s in ddl_sent(emulator, since=since) if f'"{name}_bad"."burst"' in s]
    # The failure is audited with Materialize's error, and it fails the run.
    # Every intent is written before the first DDL, so the burst has one too; its outcome
    # says it never ran (no error: it sent nothing, the rate limit does not count it).
    bad_rows = audit(emulator, bad)
    first, burst = (a["id"] for a in bad_plan["actions"])
    rows = {(r.action_id, r.phase): r for r in bad_rows}
    assert len(bad_rows) == 4 and set(rows) == {
        (aid, phase) for aid in (first, burst) for phase in ("intent", "outcome")
    }
    assert rows[first, "outcome"].executed is False
    assert "injected: out of quota" in (rows[first, "outcome"].error or "")
    assert rows[burst, "outcome"].executed is False and rows[burst, "outcome"].error is None
    assert "not run after earlier failure" in rows[burst, "outcome"].ctx["note"]
    assert any(
        p.startswith(f"{name}_bad: create_replica 'r_100cc' failed") for p in run.outcome.problems
    )
    # State: the good cluster's strategies moved on; the failed one kept its old (empty)
    # strategy state and only recorded a backoff.
    good_state = state_payload(emulator, good)
    assert good_state is not None
    assert "last_action_at" in good_state["strategies"]["target_size"]
    assert "started_at" in good_state["strategies"]["burst"]
    bad_state = state_payload(emulator, bad)
    assert bad_state is not None
    assert bad_state["strategies"] == {}
    assert bad_state["backoff"]["failures"] == 1
    assert_every_ddl_audited(emulator, since)

    # Inside the backoff the failed cluster is left alone; the state row count stays.
    rows = state_rows(emulator, bad)
    run = run_cycle(db, only=f"{name}_bad")
    assert [a["status"] for a in run.actions()] == ["deferred", "deferred"]
    assert state_rows(emulator, bad) == rows
    # After it, the cluster converges.
    emulator.advance(61)
    run = run_cycle(db, only=f"{name}_bad")
    assert replicas(emulator, f"{name}_bad") == {"r1": "25cc", "r_100cc": "100cc", "burst": "800cc"}
    assert "backoff" not in (state_payload(emulator, bad) or {})


def test_a_connection_dropped_after_the_ddl_is_resolved_from_the_catalog(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    emulator.inject_fault(
        "^" + re.escape(f'CREATE CLUSTER REPLICA "{name}"."r_100cc"'), "drop_after"
    )
    driver = "psycopg2" if "psycopg2" in type(db.conn).__module__ else "psycopg"

    run = run_cycle(db, only=name, reconnect=lambda: connect(emulator, driver))

    assert run.outcomes() == ["succeeded"]
    assert run.outcome.problems == []
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    # The DDL ran once (the emulator saw it), and the audit says it was executed.
    assert len([s for s in ddl_sent(emulator, since=since) if f'"{name}"' in s]) == 1
    rows = audit(emulator, cid)
    assert [(r.phase, r.executed) for r in rows] == [("intent", None), ("outcome", True)]
    assert "connection lost" in rows[1].ctx["note"]
    assert "the catalog shows it ran" in rows[1].ctx["note"]
    # And the state was persisted after it (on the new connection).
    state = state_payload(emulator, cid)
    assert state is not None and state["owned"] == ["r_100cc"]


def test_cli_survives_a_connection_dropped_after_the_ddl(emulator: Emulator, name: str) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    emulator.inject_fault(
        "^" + re.escape(f'CREATE CLUSTER REPLICA "{name}"."r_100cc"'), "drop_after"
    )

    done = cli("apply", "--filter-clusters", name, url=emulator.url)

    assert done.returncode == 0, done.stdout + done.stderr
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    assert [(r.phase, r.executed) for r in audit(emulator, cid)] == [
        ("intent", None),
        ("outcome", True),
    ]
    state = state_payload(emulator, cid)
    assert state is not None and state["owned"] == ["r_100cc"]
    assert APPLICATION_NAME  # the CLI's sessions are tagged (checked in the signals tests)


def test_a_connection_dropped_before_the_ddl_is_audited_as_not_run(
    emulator: Emulator, db3: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    emulator.inject_fault("^" + re.escape(f'CREATE CLUSTER REPLICA "{name}"'), "drop_before")

    run = run_cycle(db3, only=name, reconnect=lambda: connect(emulator, "psycopg"))

    assert run.outcomes() == ["failed"]
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert not [s for s in ddl_sent(emulator, since=since) if f'"{name}"' in s]
    rows = audit(emulator, cid)
    assert [(r.phase, r.executed) for r in rows] == [("intent", None), ("outcome", False)]
    assert "the catalog shows it did not run" in rows[1].ctx["note"]
    # After the backoff the next cycle (a new run: the old connection is gone) does it, once.
    emulator.advance(61)
    fresh = connect(emulator, "psycopg")
    try:
        run_cycle(fresh, only=name)
    finally:
        fresh.close()
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}


def test_cli_exits_1_when_an_action_fails(emulator: Emulator, name: str) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    emulator.inject_fault(
        "^" + re.escape(f'CREATE CLUSTER REPLICA "{name}"'), "error", "injected refusal"
    )

    done = cli("apply", "--filter-clusters", name, url=emulator.url)

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{name}: create_replica 'r_100cc' failed: injected refusal" in done.stderr
    assert "Traceback" not in done.stderr
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_a_crash_between_apply_and_persist_converges_without_duplicates(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    plan = planned(db, name)
    cycle.apply(plan, db, SETTINGS)  # ...and the process dies: no persist, lease not released
    assert state_rows(emulator, cid) == 0

    # The dead cycle's claim blocks others until it expires.
    blocked = run_cycle(db, only=name)
    assert blocked.result["executed"] is False
    emulator.advance(SETTINGS.lease_ttl_s + 1)
    for _ in range(3):
        run_cycle(db, only=name)
        emulator.advance(20)
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    creates = [s for s in ddl_sent(emulator, since=since) if s.startswith("CREATE") and name in s]
    assert len(creates) == 1, creates
    assert_every_ddl_audited(emulator, since)


def test_dropping_an_unhydrated_extra_replica_is_allowed_while_none_is_hydrated(
    emulator: Emulator, name: str
) -> None:
    """The executor's drop check protects hydrated replicas only: an extra replica that is
    itself still hydrating can go even when no replica is hydrated yet (the planner asks for
    it; refusing it would fail every cycle until something hydrated)."""
    cid = make_cluster(emulator, name, replica="r_25cc")
    emulator.execute(f"CREATE CLUSTER REPLICA \"{name}\".r2 (SIZE = '25cc')")
    emulator.execute("SELECT mz_emulator.set_hydration_delay(%s, '10 hours')", (name,))
    emulator.advance(10)  # both online, neither hydrated
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc"})
    db = connect(emulator, "psycopg")
    try:
        run = run_cycle(db, only=name)
    finally:
        db.close()
    drops = [a for c in run.plan["clusters"] for a in c["actions"] if a["kind"] == "drop_replica"]
    assert [a["replica_name"] for a in drops] == ["r2"]
    assert [r["outcome"] for r in run.result["results"]] == ["succeeded"]
    assert set(replicas(emulator, name)) == {"r_25cc"}
