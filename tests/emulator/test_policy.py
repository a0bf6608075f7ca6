# ruff: noqa: E501  (tables of statements and exact error texts read best one per line)
"""Policy: what Materialize refuses, transaction classes, cluster needs, splitting."""

from __future__ import annotations

import pytest

from mz_schedctl_provider.emulator.policy import analyze, split

REFUSED = [
    ("CREATE TABLE t (a int PRIMARY KEY)", "CREATE TABLE with a primary key or unique constraint is not supported", "0A000"),
    ("CREATE TABLE t (a int, UNIQUE (a))", "CREATE TABLE with a primary key or unique constraint is not supported", "0A000"),
    ("CREATE TABLE t (a int CHECK (a > 0))", "CREATE TABLE with a check constraint is not supported", "0A000"),
    ("CREATE TABLE t (a int REFERENCES u (a))", "CREATE TABLE with a foreign key is not supported", "0A000"),
    ("CREATE TABLE t (id serial)", 'type "serial" does not exist', "42704"),
    ("CREATE TABLE t (id BIGSERIAL NOT NULL)", 'type "bigserial" does not exist', "42704"),
    ("CREATE SEQUENCE s", "CREATE SEQUENCE is not supported", "0A000"),
    ("SELECT nextval('s')", "function nextval(unknown) does not exist", "42883"),
    ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", "INSERT ... ON CONFLICT is not supported", "0A000"),
    ("SELECT * FROM t FOR UPDATE", "SELECT ... FOR UPDATE is not supported", "0A000"),
    ("SELECT * FROM t FOR SHARE SKIP LOCKED", "SELECT ... FOR SHARE is not supported", "0A000"),
    ("SELECT pg_advisory_lock(1)", "function pg_advisory_lock(integer) does not exist", "42883"),
    ("SELECT pg_try_advisory_xact_lock(1)", "function pg_try_advisory_xact_lock(integer) does not exist", "42883"),
    ("SELECT jsonb_set(payload, '{a}', '1') FROM t", "function jsonb_set(unknown, unknown, unknown) does not exist", "42883"),
    ("LISTEN ch", "LISTEN is not supported", "0A000"),
    ("NOTIFY ch", "NOTIFY is not supported", "0A000"),
    ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()", "CREATE TRIGGER is not supported", "0A000"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION is not supported", "0A000"),
    ("CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", "CREATE PROCEDURE is not supported", "0A000"),
    ("DO $$ BEGIN END $$", "DO is not supported", "0A000"),
    ("INSERT INTO t VALUES (mz_now())", "calls to mz_now in write statements are not supported", "0A000"),
    ("UPDATE t SET a = 1 WHERE mz_now() > ts", "calls to mz_now in write statements are not supported", "0A000"),
    ("DELETE FROM t WHERE ts < mz_now()", "calls to mz_now in write statements are not supported", "0A000"),
    ("INSERT INTO mz_catalog.mz_clusters VALUES ('x')", "system item 'mz_catalog.mz_clusters' cannot be modified", "XX000"),
    ("DELETE FROM mz_clusters", "system item 'mz_catalog.mz_clusters' cannot be modified", "XX000"),
    ("UPDATE mz_internal.mz_cluster_schedules SET type = 'x'", "system item 'mz_internal.mz_cluster_schedules' cannot be modified", "XX000"),
    ("CREATE TABLE mz_internal.t (a int)", "system schema 'mz_internal' cannot be modified", "XX000"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "message", "sqlstate"), REFUSED)
def test_refused(sql: str, message: str, sqlstate: str) -> None:
    error = analyze(sql).error
    assert error is not None
    assert (error.message, error.sqlstate) == (message, sqlstate)


ALLOWED = [
    "CREATE TABLE IF NOT EXISTS mz_cluster_strategies (cluster_id TEXT NOT NULL,"
    " strategy_type TEXT NOT NULL, config JSONB NOT NULL, updated_at TIMESTAMPTZ DEFAULT now())",
    "SELECT * FROM t WHERE mz_now() <= ts + INTERVAL '1 day'",
    "SELECT payload -> 'a' ->> 'b', payload || '{}'::jsonb FROM t",
    "INSERT INTO mz_cluster_strategy_actions (action_id) VALUES ('x')",
    "DELETE FROM mz_cluster_strategy_state WHERE updated_at < now() - INTERVAL '7 days'",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_allowed(sql: str) -> None:
    assert analyze(sql).error is None


@pytest.mark.parametrize(
    ("sql", "txn_class", "needs_cluster", "catalog_only"),
    [
        ("SELECT * FROM t", "read", True, False),
        ("SELECT * FROM mz_clusters", "read", False, True),
        (
            "SELECT c.name FROM mz_catalog.mz_clusters c JOIN pg_class p ON true",
            "read",
            False,
            True,
        ),
        ("SELECT * FROM mz_internal.mz_cluster_replica_statuses", "read", False, True),
        (
            "SELECT * FROM mz_clusters c JOIN mz_cluster_strategies s ON s.cluster_id = c.id",
            "read",
            True,
            False,
        ),
        ("SELECT 1", "read", False, False),
        ("SELECT now()", "read", False, False),
        ("WITH x AS (SELECT 1 AS a) SELECT * FROM x", "read", False, False),
        ("SHOW cluster", "read", False, False),
        ("EXPLAIN SELECT * FROM t", "read", True, False),
        ("INSERT INTO t VALUES (1, 'a', now())", "write", False, False),
        ("INSERT INTO t VALUES ((SELECT max(a) FROM u))", "single", True, False),
        ("INSERT INTO t SELECT * FROM u", "single", True, False),
        ("UPDATE t SET a = 1", "single", True, False),
        ("DELETE FROM t", "single", True, False),
        ("CREATE TABLE t (a int)", "single", False, False),
        ("CREATE VIEW v AS SELECT * FROM t", "single", False, False),
        ("BEGIN", "control", False, False),
        ("COMMIT", "control", False, False),
        ("SET application_name = 'x'", "control", False, False),
        ("DISCARD ALL", "control", False, False),
        ("DEALLOCATE ALL", "control", False, False),
    ],
)
def test_classification(sql: str, txn_class: str, needs_cluster: bool, catalog_only: bool) -> None:
    a = analyze(sql)
    assert (a.txn_class, a.needs_cluster, a.catalog_only) == (
        txn_class,
        needs_cluster,
        catalog_only,
    )


def test_calls_emulator() -> None:
    assert analyze("SELECT mz_emulator.advance('1 minute')").calls_emulator
    assert not analyze("SELECT now()").calls_emulator


def test_clock_keywords_rewritten() -> None:
    a = analyze(
        "SELECT CURRENT_TIMESTAMP, localtimestamp(3), 'current_timestamp', \"current_date\""
    )
    assert a.sql == "SELECT now(), now()::timestamp, 'current_timestamp', \"current_date\""


def test_parse_failure_is_left_to_postgres() -> None:
    a = analyze("SELEC 1")
    assert (a.txn_class, a.error) == (
        "control",
        None,
    )  # no transaction class: PostgreSQL reports it


def test_split_keeps_statement_text() -> None:
    sql = "SELECT 1; SELECT $$a;b$$ ;; CREATE CLUSTER \"x;y\" (SIZE = ';');\n-- done"
    assert split(sql) == ["SELECT 1", "SELECT $$a;b$$", "CREATE CLUSTER \"x;y\" (SIZE = ';')"]
    assert split("") == []
