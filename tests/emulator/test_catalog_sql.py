# ruff: noqa: F811, E501  (fixtures imported from emucatalog_fixtures; one-line error tables)
"""The simulated catalog against a real PostgreSQL: columns, seeding, the timeline, controls."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from emucatalog_fixtures import Env, env, pg_uri  # noqa: F401

EXPECTED_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "mz_catalog.mz_clusters": [
        ("id", "text"),
        ("name", "text"),
        ("owner_id", "text"),
        ("privileges", "ARRAY"),
        ("managed", "boolean"),
        ("size", "text"),
        ("replication_factor", "bigint"),
        ("disk", "boolean"),
        ("availability_zones", "ARRAY"),
        ("introspection_debugging", "boolean"),
        ("introspection_interval", "interval"),
    ],
    "mz_catalog.mz_cluster_replicas": [
        ("id", "text"),
        ("name", "text"),
        ("cluster_id", "text"),
        ("size", "text"),
        ("availability_zone", "text"),
        ("owner_id", "text"),
        ("disk", "boolean"),
    ],
    "mz_catalog.mz_cluster_replica_sizes": [
        ("size", "text"),
        ("processes", "bigint"),
        ("workers", "bigint"),
        ("cpu_nano_cores", "bigint"),
        ("memory_bytes", "bigint"),
        ("disk_bytes", "bigint"),
        ("credits_per_hour", "numeric"),
    ],
    "mz_catalog.mz_indexes": [
        ("id", "text"),
        ("oid", "oid"),
        ("name", "text"),
        ("on_id", "text"),
        ("cluster_id", "text"),
        ("owner_id", "text"),
        ("create_sql", "text"),
        ("redacted_create_sql", "text"),
    ],
    "mz_catalog.mz_materialized_views": [
        ("id", "text"),
        ("oid", "oid"),
        ("schema_id", "text"),
        ("name", "text"),
        ("cluster_id", "text"),
        ("definition", "text"),
        ("owner_id", "text"),
        ("privileges", "ARRAY"),
        ("create_sql", "text"),
        ("redacted_create_sql", "text"),
    ],
    "mz_catalog.mz_sources": [
        ("id", "text"),
        ("oid", "oid"),
        ("schema_id", "text"),
        ("name", "text"),
        ("type", "text"),
        ("connection_id", "text"),
        ("size", "text"),
        ("envelope_type", "text"),
        ("key_format", "text"),
        ("value_format", "text"),
        ("cluster_id", "text"),
        ("owner_id", "text"),
        ("privileges", "ARRAY"),
        ("create_sql", "text"),
        ("redacted_create_sql", "text"),
    ],
    "mz_catalog.mz_sinks": [
        ("id", "text"),
        ("oid", "oid"),
        ("schema_id", "text"),
        ("name", "text"),
        ("type", "text"),
        ("connection_id", "text"),
        ("size", "text"),
        ("envelope_type", "text"),
        ("format", "text"),
        ("key_format", "text"),
        ("value_format", "text"),
        ("cluster_id", "text"),
        ("owner_id", "text"),
        ("create_sql", "text"),
        ("redacted_create_sql", "text"),
    ],
    "mz_internal.mz_hydration_statuses": [
        ("object_id", "text"),
        ("replica_id", "text"),
        ("hydrated", "boolean"),
    ],
    "mz_internal.mz_compute_hydration_statuses": [
        ("object_id", "text"),
        ("replica_id", "text"),
        ("hydrated", "boolean"),
        ("hydration_time", "interval"),
    ],
    # src/catalog/src/builtin.rs, MZ_CLUSTER_REPLICA_HISTORY.
    "mz_internal.mz_cluster_replica_history": [
        ("replica_id", "text"),
        ("size", "text"),
        ("cluster_id", "text"),
        ("cluster_name", "text"),
        ("replica_name", "text"),
        ("created_at", "timestamp with time zone"),
        ("dropped_at", "timestamp with time zone"),
        ("credits_per_hour", "numeric"),
    ],
    "mz_internal.mz_cluster_replica_status_history": [
        ("replica_id", "text"),
        ("process_id", "bigint"),
        ("status", "text"),
        ("reason", "text"),
        ("occurred_at", "timestamp with time zone"),
    ],
    "mz_internal.mz_cluster_replica_statuses": [
        ("replica_id", "text"),
        ("process_id", "bigint"),
        ("status", "text"),
        ("reason", "text"),
        ("updated_at", "timestamp with time zone"),
    ],
    "mz_internal.mz_cluster_replica_utilization": [
        ("replica_id", "text"),
        ("process_id", "bigint"),
        ("cpu_percent", "double precision"),
        ("memory_percent", "double precision"),
        ("disk_percent", "double precision"),
        ("heap_percent", "double precision"),
    ],
    "mz_internal.mz_statement_execution_history_redacted": [
        ("id", "uuid"),
        ("prepared_statement_id", "uuid"),
        ("sample_rate", "double precision"),
        ("cluster_id", "text"),
        ("application_name", "text"),
        ("cluster_name", "text"),
        ("database_name", "text"),
        ("search_path", "ARRAY"),
        ("transaction_isolation", "text"),
        ("execution_timestamp", "numeric"),
        ("transaction_id", "bigint"),
        ("transient_index_id", "text"),
        ("mz_version", "text"),
        ("began_at", "timestamp with time zone"),
        ("finished_at", "timestamp with time zone"),
        ("finished_status", "text"),
        ("result_size", "bigint"),
        ("rows_returned", "bigint"),
        ("execution_strategy", "text"),
    ],
    "mz_internal.mz_cluster_schedules": [
        ("cluster_id", "text"),
        ("type", "text"),
        ("refresh_hydration_time_estimate", "interval"),
    ],
    "mz_internal.mz_cluster_auto_scaling_strategies": [
        ("cluster_id", "text"),
        ("strategy", "jsonb"),
        ("state", "jsonb"),
    ],
    "mz_internal.mz_cluster_reconfigurations": [
        ("cluster_id", "text"),
        ("status", "text"),
        ("deadline", "timestamp with time zone"),
        ("on_timeout", "text"),
        ("target", "jsonb"),
        ("changes", "jsonb"),
    ],
}

RECENT_ACTIVITY_COLUMNS = [
    "execution_id", "sample_rate", "cluster_id", "application_name", "cluster_name",
    "database_name", "search_path", "transaction_isolation", "execution_timestamp",
    "transient_index_id", "mz_version", "began_at", "finished_at", "finished_status",
    "result_size", "rows_returned", "execution_strategy", "transaction_id",
    "prepared_statement_id", "sql_hash", "prepared_statement_name", "session_id", "prepared_at",
    "statement_type", "throttled_count", "initial_application_name", "authenticated_user",
    "redacted_sql",
]  # fmt: skip


def _columns(env: Env, qualified: str) -> list[tuple[str, str]]:
    schema, name = qualified.split(".")
    return env.rows(
        "SELECT column_name::text, data_type::text FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, name),
    )


@pytest.mark.parametrize("relation", sorted(EXPECTED_COLUMNS))
def test_view_columns_in_order(env: Env, relation: str) -> None:
    assert _columns(env, relation) == EXPECTED_COLUMNS[relation]


def test_recent_activity_and_unredacted_history_columns(env: Env) -> None:
    cols = [c for c, _ in _columns(env, "mz_internal.mz_recent_activity_log_redacted")]
    assert cols == RECENT_ACTIVITY_COLUMNS
    history = [c for c, _ in _columns(env, "mz_internal.mz_statement_execution_history")]
    assert "error_message" in history and history[0] == "id"


def test_fresh_instance_seed(env: Env) -> None:
    clusters = env.rows(
        "SELECT id, name, managed, size, replication_factor FROM mz_clusters ORDER BY id"
    )
    assert clusters == [
        ("s1", "mz_system", True, "25cc", 1),
        ("s2", "mz_catalog_server", True, "25cc", 1),
        ("s3", "mz_probe", True, "25cc", 1),
        ("s4", "mz_support", True, "25cc", 0),
        ("s5", "mz_analytics", True, "25cc", 0),
        ("u1", "quickstart", True, "25cc", 1),
    ]
    replicas = env.rows("SELECT id, name, cluster_id, size FROM mz_cluster_replicas ORDER BY id")
    assert replicas == [
        ("s1", "r1", "s1", "25cc"),
        ("s2", "r1", "s2", "25cc"),
        ("s3", "r1", "s3", "25cc"),
        ("u1", "r1", "u1", "25cc"),
    ]
    statuses = env.rows("SELECT replica_id, status FROM mz_internal.mz_cluster_replica_statuses")
    assert {s for _, s in statuses} == {"online"}
    # Introspection indexes of quickstart: system ids, hydrated once the replica is online.
    idx = env.rows("SELECT id, cluster_id FROM mz_indexes ORDER BY id")
    assert idx and all(i.startswith("si") and c == "u1" for i, c in idx)
    assert env.scalar("SELECT bool_and(hydrated) FROM mz_internal.mz_hydration_statuses")


def test_sizes(env: Env) -> None:
    rows = env.rows("SELECT * FROM mz_cluster_replica_sizes")
    assert len(rows) == 11
    assert rows[0] == ("25cc", 1, 1, 500_000_000, 3881 * 1048576, None, Decimal("0.25"))
    assert rows[-1][0] == "3200cc" and rows[-1][6] == Decimal("32")
    assert [r[0] for r in rows][:3] == ["25cc", "50cc", "100cc"]


def test_materialize_cannot_write_or_peek(env: Env) -> None:
    for stmt in (
        "INSERT INTO mz_catalog.mz_clusters (id) VALUES ('x')",
        "DELETE FROM mz_internal.mz_cluster_replica_status_history",
        "SELECT * FROM mz_emulator.clusters",
        "UPDATE mz_emulator.clock SET \"offset\" = '1 day'",
    ):
        with pytest.raises(
            (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectNotInPrerequisiteState)
        ):
            env.user.execute(stmt)


def test_clock_shadows_and_advance(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int, at timestamptz DEFAULT now())")
    before = env.scalar("SELECT now()")
    new_now = env.scalar("SELECT mz_emulator.advance('2 hours')")
    assert new_now - before >= __import__("datetime").timedelta(hours=2)
    assert env.scalar("SELECT now() - pg_catalog.now()") >= __import__("datetime").timedelta(
        hours=2
    )
    env.user.execute("INSERT INTO t (a) VALUES (1)")
    assert env.scalar("SELECT at - pg_catalog.now() FROM t").total_seconds() >= 7199
    mz_now = env.scalar("SELECT mz_now()")
    assert abs(float(mz_now) / 1000 - new_now.timestamp()) < 5
    assert env.scalar("SELECT mz_now() >= now() - interval '1 minute'") is True
    for fn in ("statement_timestamp()", "transaction_timestamp()", "clock_timestamp()"):
        assert env.scalar(f"SELECT {fn} - pg_catalog.{fn}").total_seconds() > 7190
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="only moves forward"):
        env.user.execute("SELECT mz_emulator.advance('-1 second')")


def _status(env: Env, replica_id: str) -> tuple[str, str | None]:
    rows = env.rows(
        "SELECT status, reason FROM mz_internal.mz_cluster_replica_statuses WHERE replica_id = %s",
        (replica_id,),
    )
    return rows[0]


def _replica_id(env: Env, cluster: str, replica: str) -> str:
    return env.scalar(
        "SELECT r.id FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
        " WHERE c.name = %s AND r.name = %s",
        (cluster, replica),
    )


def _hydrated(env: Env, replica_id: str) -> list[tuple[str, bool]]:
    return env.rows(
        "SELECT object_id, hydrated FROM mz_internal.mz_hydration_statuses"
        " WHERE replica_id = %s AND object_id LIKE 'u%%' ORDER BY object_id",
        (replica_id,),
    )


def test_timeline_initializing_online_hydrated(env: Env) -> None:
    # The instance-wide override (60 s at 25cc) replaces the estimate (1 s for this table).
    env.user.execute("SELECT mz_emulator.set_delays(NULL, '60 seconds')")
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX i IN CLUSTER c ON t (a)")
    rid = _replica_id(env, "c", "r1")
    assert _status(env, rid) == ("offline", "initializing")
    assert _hydrated(env, rid) == [
        (env.scalar("SELECT id FROM mz_indexes WHERE name = 'i'"), False)
    ]
    env.advance("3 seconds")
    assert _status(env, rid) == ("online", None)
    env.advance("59 seconds")
    assert [h for _, h in _hydrated(env, rid)] == [False]
    env.advance("1 second")
    assert [h for _, h in _hydrated(env, rid)] == [True]
    time = env.scalar(
        "SELECT hydration_time FROM mz_internal.mz_compute_hydration_statuses"
        " WHERE replica_id = %s AND object_id LIKE 'u%%'",
        (rid,),
    )
    # Timed on the replica from the dataflow's installation: the start-up is not in it.
    assert time.total_seconds() == 60
    history = env.rows(
        "SELECT status, reason FROM mz_internal.mz_cluster_replica_status_history"
        " WHERE replica_id = %s ORDER BY occurred_at",
        (rid,),
    )
    # "initializing" lives in the current status only; history starts with the orchestrator.
    assert history == [("online", None)]


def test_bigger_replicas_hydrate_faster(env: Env) -> None:
    env.user.execute("SELECT mz_emulator.set_delays(NULL, '60 seconds')")
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '100cc')")
    env.run("CREATE DEFAULT INDEX IN CLUSTER c ON t")
    rid = _replica_id(env, "c", "r1")
    env.advance("3 seconds")
    env.advance("31 seconds")  # 60 s * sqrt(0.25 / 1) = 30 s
    assert [h for _, h in _hydrated(env, rid)] == [True]


def test_oom_restarts_and_rehydrates(env: Env) -> None:
    env.user.execute("SELECT mz_emulator.set_delays(NULL, '60 seconds')")
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX IN CLUSTER c ON t (a)")
    rid = _replica_id(env, "c", "r1")
    env.advance("2 minutes")
    assert [h for _, h in _hydrated(env, rid)] == [True]
    env.user.execute("SELECT mz_emulator.inject_oom('c', 'r1')")
    assert _status(env, rid) == ("offline", "oom-killed")
    assert [h for _, h in _hydrated(env, rid)] == [False]
    env.advance("1 second")
    assert _status(env, rid) == ("offline", "oom-killed")  # restarting: still the last event
    env.advance("3 seconds")
    assert _status(env, rid) == ("online", None)
    assert [h for _, h in _hydrated(env, rid)] == [False]
    env.advance("61 seconds")
    assert [h for _, h in _hydrated(env, rid)] == [True]
    reasons = env.rows(
        "SELECT status, reason FROM mz_internal.mz_cluster_replica_status_history"
        " WHERE replica_id = %s ORDER BY occurred_at",
        (rid,),
    )
    assert reasons == [("online", None), ("offline", "oom-killed"), ("online", None)]
    # Materialize knows no other reason: any other crash reads NULL, as both orchestrators say.
    env.user.execute("SELECT mz_emulator.inject_crash('c', 'r1', 'exited with code 137')")
    assert _status(env, rid) == ("offline", None)
    env.advance("4 seconds")
    env.user.execute("SELECT mz_emulator.inject_crash('c', 'r1', NULL)")
    assert _status(env, rid) == ("offline", None)


def test_crash_during_startup_never_reports_online(env: Env) -> None:
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    rid = _replica_id(env, "c", "r1")
    env.user.execute("SELECT mz_emulator.inject_oom('c', 'r1')")
    env.advance("2 seconds")
    statuses = env.rows(
        "SELECT status, reason FROM mz_internal.mz_cluster_replica_status_history"
        " WHERE replica_id = %s ORDER BY occurred_at",
        (rid,),
    )
    assert statuses == [("offline", "oom-killed")]
    assert _status(env, rid) == ("offline", "oom-killed")
    env.advance("2 seconds")
    assert _status(env, rid) == ("online", None)


def test_dropped_replica_keeps_history(env: Env) -> None:
    env.run("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'))")
    rid = _replica_id(env, "c", "a")
    env.advance("5 seconds")
    env.run("DROP CLUSTER REPLICA c.a")
    assert (
        env.scalar(
            "SELECT count(*) FROM mz_internal.mz_cluster_replica_status_history WHERE replica_id = %s",
            (rid,),
        )
        == 1  # online; a drop adds no row (Materialize ignores events of dropped replicas)
    )
    assert not env.rows(
        "SELECT 1 FROM mz_internal.mz_cluster_replica_statuses WHERE replica_id = %s", (rid,)
    )
    assert not env.rows("SELECT 1 FROM mz_cluster_replicas WHERE id = %s", (rid,))


def test_object_on_cluster_without_replicas(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c REPLICAS ()")
    env.run("CREATE MATERIALIZED VIEW mv IN CLUSTER c AS SELECT a FROM t")
    mv_id = env.scalar("SELECT id FROM mz_materialized_views WHERE name = 'mv'")
    assert env.rows(
        "SELECT replica_id, hydrated FROM mz_internal.mz_hydration_statuses WHERE object_id = %s",
        (mv_id,),
    ) == [(None, False)]


def test_utilization(env: Env) -> None:
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    rid = _replica_id(env, "c", "r1")
    assert env.rows(
        "SELECT cpu_percent FROM mz_internal.mz_cluster_replica_utilization WHERE replica_id = %s",
        (rid,),
    ) == [(None,)]
    env.advance("5 seconds")
    env.user.execute("SELECT mz_emulator.set_utilization('c', 'r1', 42.5, 90)")
    assert env.rows(
        "SELECT cpu_percent, memory_percent FROM mz_internal.mz_cluster_replica_utilization"
        " WHERE replica_id = %s",
        (rid,),
    ) == [(42.5, 90.0)]


def test_delays_and_hydration_override(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.user.execute("SELECT mz_emulator.set_delays('10 seconds', '2 minutes')")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX IN CLUSTER c ON t (a)")
    rid = _replica_id(env, "c", "r1")
    env.advance("9 seconds")
    assert _status(env, rid)[0] == "offline"
    env.advance("1 second")
    assert _status(env, rid)[0] == "online"
    env.user.execute("SELECT mz_emulator.set_hydration_delay('c', '1 second')")
    env.advance("1 second")
    assert [h for _, h in _hydrated(env, rid)] == [True]
    env.user.execute("SELECT mz_emulator.set_hydration_delay('c', NULL)")
    assert [h for _, h in _hydrated(env, rid)] == [False]


def test_record_activity_and_activity_log(env: Env) -> None:
    statement_id = env.scalar("SELECT mz_emulator.record_activity('quickstart')")
    rows = env.rows(
        "SELECT cluster_id, cluster_name, application_name, finished_status"
        " FROM mz_internal.mz_statement_execution_history_redacted WHERE id = %s",
        (statement_id,),
    )
    assert rows == [("u1", "quickstart", "mz_emulator", "success")]
    recent = env.rows(
        "SELECT redacted_sql, statement_type FROM mz_internal.mz_recent_activity_log_redacted"
        " WHERE execution_id = %s",
        (statement_id,),
    )
    assert recent[0][1] == "select"
    env.advance("25 hours")
    assert not env.rows(
        "SELECT 1 FROM mz_internal.mz_recent_activity_log_redacted WHERE execution_id = %s",
        (statement_id,),
    )


def test_redacted_sql(env: Env) -> None:
    env.admin.execute(
        "INSERT INTO mz_emulator.statement_log (id, began_at, sql, application_name)"
        " VALUES (gen_random_uuid(), mz_emulator.now(), %s, 'x')",
        ("SELECT * FROM t WHERE secret = 'hunter''2'",),
    )
    assert (
        env.scalar(
            "SELECT redacted_sql FROM mz_internal.mz_recent_activity_log_redacted"
            " WHERE application_name = 'x'"
        )
        == "SELECT * FROM t WHERE secret = '<REDACTED>'"
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("SELECT mz_emulator.inject_oom('nope', 'r1')", "unknown cluster 'nope'"),
        ("SELECT mz_emulator.inject_oom('quickstart', 'r9')", 'CLUSTER quickstart has no CLUSTER REPLICA named "r9"'),
        ("SELECT mz_emulator.record_activity('nope')", "unknown cluster 'nope'"),
        ("SELECT mz_emulator.set_hydration_delay('nope', '1s')", "unknown cluster 'nope'"),
        ("SELECT mz_emulator.set_utilization('quickstart', 'x', 1, 1)", "has no CLUSTER REPLICA"),
        ("SELECT mz_emulator.inject_crash('quickstart', 'r1', 'initializing')", "a start-up state, not a crash"),
    ],
)  # fmt: skip
def test_control_functions_reject_unknown_names(env: Env, call: str, message: str) -> None:
    with pytest.raises(psycopg.Error, match=message):
        env.user.execute(call)


def test_faults(env: Env) -> None:
    fid = env.scalar("SELECT mz_emulator.inject_fault('^SELECT 42', 'error', 'boom', '57P01')")
    assert isinstance(fid, int)
    row = env.admin.execute(
        "SELECT pattern, action, message, sqlstate, remaining FROM mz_emulator.faults"
    ).fetchall()
    assert row == [("^SELECT 42", "error", "boom", "57P01", 1)]
    env.user.execute("SELECT mz_emulator.inject_fault('x', 'drop_after')")
    with pytest.raises(psycopg.errors.CheckViolation):
        env.user.execute("SELECT mz_emulator.inject_fault('x', 'explode')")
    assert env.scalar("SELECT mz_emulator.clear_faults()") == 2


def test_control_functions_are_documented(env: Env) -> None:
    names = {
        "advance", "inject_oom", "inject_crash", "record_activity", "set_delays",
        "set_hydration_delay", "inject_fault", "clear_faults", "now", "set_utilization", "settle",
        "reset_hydration_delay",
    }  # fmt: skip
    rows = env.rows(
        "SELECT p.proname, obj_description(p.oid, 'pg_proc') IS NOT NULL,"
        " has_function_privilege('materialize', p.oid, 'EXECUTE')"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'mz_emulator' AND p.proname = ANY(%s)",
        (list(names),),
    )
    assert {r[0] for r in rows} == names
    assert all(r[1] and r[2] for r in rows)
