"""First contact: the first cycle on a database where nothing of the controller exists yet, or
only what its predecessor (mz-clusterctl) left, through the real CLI in a subprocess and through
the API with both drivers. Each test gets an emulator of its own: nothing created beforehand.

The README promises "the first applying cycle creates the controller's tables"; before this,
every test created them first, and the first apply on a fresh install hung in the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mzsupport import (
    CONTROLLER_TABLES,
    cli,
    connect,
    ddl_sent,
    json_docs,
    make_cluster,
    replicas,
    run_cycle,
    snapshot,
    table_rows,
)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

# The predecessor's schemas, exactly (behaviour.md "Tables"): no lease table.
PREDECESSOR_STRATEGIES = """CREATE TABLE IF NOT EXISTS mz_cluster_strategies (
    cluster_id TEXT NOT NULL, strategy_type TEXT NOT NULL, config JSONB NOT NULL,
    updated_at TIMESTAMPTZ DEFAULT now())"""
PREDECESSOR_STATE = """CREATE TABLE IF NOT EXISTS mz_cluster_strategy_state (
    cluster_id TEXT NOT NULL, state_version INT NOT NULL, payload JSONB NOT NULL,
    updated_at TIMESTAMPTZ DEFAULT now())"""
PREDECESSOR_ACTIONS = """CREATE TABLE IF NOT EXISTS mz_cluster_strategy_actions (
    action_id TEXT NOT NULL, cluster_id TEXT, action_sql TEXT, decision_ctx JSONB,
    executed BOOL, error_message TEXT, created_at TIMESTAMPTZ DEFAULT now())"""


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    """An emulator of this test's own: a database where the controller never ran."""
    with run_emulator(port=0, sample_rate=1.0) as emu:
        yield emu


def _existing_tables(emu: Emulator) -> list[str]:
    return [t for t in CONTROLLER_TABLES if table_rows(emu, t) is not None]


def _apply(emu: Emulator, *args: str) -> Any:
    # A bound on the subprocess: the first apply used to hang forever.
    return cli("apply", *args, url=emu.url, timeout=60)


def test_apply_on_an_empty_database_creates_the_four_tables_and_runs_no_ddl(
    fresh: Emulator,
) -> None:
    assert _existing_tables(fresh) == []
    make_cluster(fresh, "untouched")  # a cluster with no strategy row is never in scope
    before = replicas(fresh, "untouched")

    done = _apply(fresh)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "no clusters with enabled strategies in scope" in done.stdout
    assert _existing_tables(fresh) == list(CONTROLLER_TABLES)
    assert ddl_sent(fresh) == []
    assert replicas(fresh, "untouched") == before
    # The lease was claimed and released: the next cycle is not held back.
    assert _apply(fresh).returncode == 0


def test_dry_run_before_anything_exists_writes_nothing(fresh: Emulator) -> None:
    make_cluster(fresh, "c")
    before = snapshot(fresh)

    done = cli("plan", url=fresh.url, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    assert snapshot(fresh) == before
    assert _existing_tables(fresh) == []


def test_only_the_predecessors_strategies_table_first_apply_completes_tables_and_acts(
    fresh: Emulator,
) -> None:
    """Upgrading from mz-clusterctl with only its strategy table and one target_size row."""
    cid = make_cluster(fresh, "analytics", size="25cc")
    fresh.execute(PREDECESSOR_STRATEGIES)
    fresh.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'target_size', '{\"target_size\": \"50cc\"}')",
        (cid,),
    )

    done = _apply(fresh, "--json")

    assert done.returncode == 0, done.stdout + done.stderr
    assert _existing_tables(fresh) == list(CONTROLLER_TABLES)
    assert replicas(fresh, "analytics") == {"r1": "25cc", "r_50cc": "50cc"}
    plan, result = json_docs(done.stdout)
    assert [a["kind"] for c in plan["clusters"] for a in c["actions"]] == ["create_replica"]
    assert [r["outcome"] for r in result["results"]] == ["succeeded"]
    # The user's row is untouched: the table was completed, not recreated.
    assert len(fresh.execute("SELECT * FROM mz_cluster_strategies")) == 1


def _predecessor_install(emu: Emulator) -> str:
    """The predecessor's three tables with its rows: a strategy, a state row at version 1 (its
    format) and two audit rows of its own."""
    cid = make_cluster(emu, "reporting", size="25cc")
    for ddl in (PREDECESSOR_STRATEGIES, PREDECESSOR_STATE, PREDECESSOR_ACTIONS):
        emu.execute(ddl)
    emu.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'target_size', '{\"target_size\": \"100cc\"}')",
        (cid,),
    )
    old_payload = {
        "strategy_type": "target_size",
        "last_decision_time": "2026-11-30T10:00:00+00:00",
        "cooldown_until": "2026-11-30T10:05:00+00:00",
        "target_size": "50cc",
    }
    emu.execute(
        "INSERT INTO mz_cluster_strategy_state (cluster_id, state_version, payload)"
        " VALUES (%s, 1, %s::jsonb)",
        (cid, json.dumps(old_payload)),
    )
    emu.execute(
        "INSERT INTO mz_cluster_strategy_actions"
        " (action_id, cluster_id, action_sql, decision_ctx, executed, error_message)"
        " VALUES ('a-old-1', %s, 'CREATE CLUSTER REPLICA reporting.r_50cc (SIZE ''50cc'')',"
        ' \'{"reason": "resize"}\', true, NULL),'
        " ('a-old-2', %s, 'DROP CLUSTER REPLICA reporting.r_50cc', '{}', true, NULL)",
        (cid, cid),
    )
    return cid


def test_predecessors_three_tables_first_apply_through_the_cli(fresh: Emulator) -> None:
    cid = _predecessor_install(fresh)

    done = _apply(fresh)

    assert done.returncode == 0, done.stdout + done.stderr
    assert _existing_tables(fresh) == list(CONTROLLER_TABLES)
    # Version 1 is not ours: ignored, said so, and the strategy decides from the catalog.
    assert "a state row of version 1" in done.stdout
    assert replicas(fresh, "reporting") == {"r1": "25cc", "r_100cc": "100cc"}
    # Nothing of the predecessor's history is lost.
    ids = [r[0] for r in fresh.execute("SELECT action_id FROM mz_cluster_strategy_actions")]
    assert {"a-old-1", "a-old-2"} <= set(ids)
    # Our state row supersedes the predecessor's (which retention then prunes, as any
    # superseded state row).
    versions = fresh.execute(
        "SELECT state_version FROM mz_cluster_strategy_state WHERE cluster_id = %s", (cid,)
    )
    assert [v for (v,) in versions] == [2]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_predecessors_tables_first_cycle_through_both_drivers(fresh: Emulator, driver: str) -> None:
    _predecessor_install(fresh)
    db = connect(fresh, driver)
    try:
        run = run_cycle(db)
    finally:
        db.close()

    assert run.lease is not None and run.lease.acquired
    assert run.outcomes() == ["succeeded"]
    assert run.outcome.problems == []
    assert replicas(fresh, "reporting") == {"r1": "25cc", "r_100cc": "100cc"}
    assert _existing_tables(fresh) == list(CONTROLLER_TABLES)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_empty_database_first_cycle_through_both_drivers(fresh: Emulator, driver: str) -> None:
    db = connect(fresh, driver)
    try:
        run = run_cycle(db)
    finally:
        db.close()
    assert run.lease is not None and run.lease.acquired
    assert run.outcome.problems == []
    assert _existing_tables(fresh) == list(CONTROLLER_TABLES)
