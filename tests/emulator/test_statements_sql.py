# ruff: noqa: F811, E501  (fixtures imported from emucatalog_fixtures; one-line error tables)
"""Materialize-only statements executed against the simulated catalog (no proxy)."""

from __future__ import annotations

import psycopg
import pytest
from emucatalog_fixtures import Env, env, pg_uri  # noqa: F401

from mz_schedctl_provider.emulator import statements
from mz_schedctl_provider.emulator.mzsql import quote_ident

HOSTILE = 'we"ird; name ü -- ☃'
ALL_SIZES = "25cc, 50cc, 100cc, 200cc, 300cc, 400cc, 600cc, 800cc, 1200cc, 1600cc, 3200cc"


def _replicas(env: Env, cluster: str) -> list[tuple[str, str]]:
    return env.rows(
        "SELECT r.name, r.size FROM mz_cluster_replicas r JOIN mz_clusters c"
        " ON c.id = r.cluster_id WHERE c.name = %s ORDER BY r.name",
        (cluster,),
    )


def _cluster(env: Env, name: str) -> tuple[object, ...] | None:
    rows = env.rows(
        "SELECT id, managed, size, replication_factor FROM mz_clusters WHERE name = %s", (name,)
    )
    return rows[0] if rows else None


def test_create_managed_cluster_and_ids(env: Env) -> None:
    assert (
        env.run("CREATE CLUSTER c (SIZE = '50cc', REPLICATION FACTOR = 2)").tag == "CREATE CLUSTER"
    )
    assert _cluster(env, "c") == ("u2", True, "50cc", 2)
    assert _replicas(env, "c") == [("r1", "50cc"), ("r2", "50cc")]
    ids = env.rows("SELECT id FROM mz_cluster_replicas WHERE cluster_id = 'u2' ORDER BY id")
    assert ids == [("u2",), ("u3",)]  # replica ids: own counter, u1 is quickstart's replica
    env.run("DROP CLUSTER c")
    env.run("CREATE CLUSTER c (SIZE '25cc')")
    assert _cluster(env, "c") == ("u3", True, "25cc", 1)  # ids are never reused
    assert env.scalar("SELECT id FROM mz_cluster_replicas WHERE cluster_id = 'u3'") == "u4"


def test_create_unmanaged_cluster(env: Env) -> None:
    env.run("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'), b (SIZE '100cc'))")
    assert _cluster(env, "c") == ("u2", False, None, None)
    assert _replicas(env, "c") == [("a", "25cc"), ("b", "100cc")]
    env.run("CREATE CLUSTER empty REPLICAS ()")
    assert _replicas(env, "empty") == []


def test_replica_ddl_on_unmanaged(env: Env) -> None:
    env.run("CREATE CLUSTER c REPLICAS ()")
    assert env.run("CREATE CLUSTER REPLICA c.r1 (SIZE = '25cc')").tag == "CREATE CLUSTER REPLICA"
    env.run("CREATE CLUSTER REPLICA c.r2 SIZE '50cc'")
    assert _replicas(env, "c") == [("r1", "25cc"), ("r2", "50cc")]
    assert env.run("DROP CLUSTER REPLICA c.r1").tag == "DROP CLUSTER REPLICA"
    assert _replicas(env, "c") == [("r2", "50cc")]
    result = env.run("DROP CLUSTER REPLICA IF EXISTS c.r1")
    assert result.notices == ['cluster replica "c.r1" does not exist, skipping']


def test_hostile_names_round_trip(env: Env) -> None:
    q = quote_ident(HOSTILE)
    env.run(f"CREATE CLUSTER {q} REPLICAS ({q} (SIZE = '25cc'))")
    assert _replicas(env, HOSTILE) == [(HOSTILE, "25cc")]
    env.run(f"CREATE CLUSTER REPLICA {q}.\"r 2\" (SIZE = '25cc')")
    shown = env.run("SHOW CLUSTER REPLICAS")
    assert (HOSTILE, HOSTILE, "25cc") in [r[:3] for r in shown.rows]
    env.run(f"DROP CLUSTER REPLICA {q}.{q}")
    env.run(f"DROP CLUSTER {q}")
    assert _cluster(env, HOSTILE) is None
    unicode_escape = 'U&"\\2603"'
    env.run(f"CREATE CLUSTER {unicode_escape} (SIZE = '25cc')")
    assert _cluster(env, "☃") is not None


@pytest.mark.parametrize(
    ("setup", "statement", "message"),
    [
        ("", "CREATE CLUSTER c (SIZE = 'huge')", "unknown cluster replica size huge"),
        ("", "CREATE CLUSTER quickstart (SIZE = '25cc')", "cluster 'quickstart' already exists"),
        ("", "CREATE CLUSTER REPLICA nope.r (SIZE = '25cc')", "unknown cluster 'nope'"),
        ("", "DROP CLUSTER nope", "unknown cluster 'nope'"),
        ("", "CREATE CLUSTER REPLICA quickstart.r9 (SIZE = '25cc')", "cannot modify managed cluster quickstart"),
        ("", "DROP CLUSTER REPLICA quickstart.r1", "cannot drop replica of managed cluster"),
        ("", "CREATE CLUSTER REPLICA mz_system.r2 (SIZE = '25cc')", "system cluster 'mz_system' cannot be modified"),
        ("", "DROP CLUSTER mz_catalog_server", "system cluster 'mz_catalog_server' cannot be modified"),
        ("", "ALTER CLUSTER mz_system SET (REPLICATION FACTOR 2)", "system cluster 'mz_system' cannot be modified"),
        ("", "CREATE CLUSTER mz_x (SIZE = '25cc')", 'cluster name "mz_x" is reserved'),
        ("", "CREATE CLUSTER pg_x REPLICAS ()", 'cluster name "pg_x" is reserved'),
        ("", "CREATE CLUSTER c REPLICAS (mz_r (SIZE = '25cc'))", 'replica name "mz_r" is reserved'),
        ("CREATE CLUSTER c REPLICAS ()", "CREATE CLUSTER REPLICA c.pg_r (SIZE = '25cc')", 'replica name "pg_r" is reserved'),
        ("", "CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'), a (SIZE = '25cc'))", "cannot create multiple replicas named 'a' on cluster 'c'"),
        ("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'))", "CREATE CLUSTER REPLICA c.a (SIZE = '25cc')", "cannot create multiple replicas named 'a' on cluster 'c'"),
        ("CREATE CLUSTER c REPLICAS ()", "DROP CLUSTER REPLICA c.zz", 'CLUSTER c has no CLUSTER REPLICA named "zz"'),
        ("", "DROP CLUSTER REPLICA nope.r", "unknown cluster 'nope'"),
    ],
)  # fmt: skip
def test_error_texts(env: Env, setup: str, statement: str, message: str) -> None:
    if setup:
        env.run(setup)
    err = env.fails(statement)
    assert err.message == message


def test_unknown_size_hint(env: Env) -> None:
    err = env.fails("CREATE CLUSTER c (SIZE = 'huge')")
    assert err.sqlstate == "XX000"
    assert err.hint == f"Valid cluster replica sizes are: {ALL_SIZES}"


def test_allowed_sizes(env: Env) -> None:
    env.run("ALTER SYSTEM SET allowed_cluster_replica_sizes = '25cc', '50cc'")
    assert env.run("SHOW allowed_cluster_replica_sizes").rows == [('"25cc", "50cc"',)]
    err = env.fails("CREATE CLUSTER c (SIZE = '100cc')")
    assert err.message == "unknown cluster replica size 100cc"
    assert err.hint == "Valid cluster replica sizes are: 25cc, 50cc"
    env.session.user = "mz_system"  # mz_system may use every size
    env.run("CREATE CLUSTER c (SIZE = '100cc')")
    env.run("ALTER SYSTEM RESET allowed_cluster_replica_sizes")
    assert "3200cc" in env.run("SHOW allowed_cluster_replica_sizes").rows[0][0]


def test_max_replicas_per_cluster(env: Env) -> None:
    env.run("ALTER SYSTEM SET max_replicas_per_cluster = 2")
    env.run("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'), b (SIZE = '25cc'))")
    err = env.fails("CREATE CLUSTER REPLICA c.d (SIZE = '25cc')")
    assert err.message == (
        "creating cluster replica would violate max_replicas_per_cluster limit"
        " (desired: 3, limit: 2, current: 2)"
    )
    err = env.fails("CREATE CLUSTER m (SIZE = '25cc', REPLICATION FACTOR 3)")
    assert "(desired: 3, limit: 2, current: 0)" in err.message


def test_sources_forbid_second_replica(env: Env) -> None:
    env.run("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'))")
    env.run("CREATE SOURCE counter IN CLUSTER c FROM LOAD GENERATOR COUNTER")
    err = env.fails("CREATE CLUSTER REPLICA c.b (SIZE = '25cc')")
    assert (
        err.message
        == "cannot create more than one replica of a cluster containing sources or sinks"
    )
    assert err.detail == "Currently have 1 replica; command would result in 2"
    env.run("CREATE CLUSTER m (SIZE = '25cc')")
    env.run("CREATE SINK k IN CLUSTER m FROM counter INTO KAFKA CONNECTION kc (TOPIC 't')")
    err = env.fails("ALTER CLUSTER m SET (REPLICATION FACTOR 2)")
    assert err.detail == "Currently have 1 replica; command would result in 2"
    assert env.rows("SELECT type, cluster_id FROM mz_sources WHERE name = 'counter'") == [
        ("load-generator", "u2")
    ]
    assert env.rows("SELECT count(*) FROM counter") == [(0,)]  # queryable stand-in table
    assert env.rows("SELECT type FROM mz_sinks WHERE name = 'k'") == [("kafka",)]


def test_drop_cluster_with_objects(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX IN CLUSTER c ON t (a)")
    err = env.fails("DROP CLUSTER c")
    assert err.message == 'cannot drop cluster "c" because other objects depend on it'
    assert err.sqlstate == "2BP01"
    env.run("DROP CLUSTER c CASCADE")
    assert _cluster(env, "c") is None
    assert env.rows("SELECT count(*) FROM mz_indexes WHERE id LIKE 'u%%'") == [(0,)]
    result = env.run("DROP CLUSTER IF EXISTS c")
    assert result.notices == ['cluster "c" does not exist, skipping']


def test_alter_size_without_wait_replaces_replicas(env: Env) -> None:
    env.run("CREATE CLUSTER c (SIZE = '25cc', REPLICATION FACTOR 2)")
    before = {r[0] for r in env.rows("SELECT id FROM mz_cluster_replicas WHERE cluster_id = 'u2'")}
    env.run("ALTER CLUSTER c SET (SIZE = '100cc')")
    assert _cluster(env, "c") == ("u2", True, "100cc", 2)
    assert _replicas(env, "c") == [("r1", "100cc"), ("r2", "100cc")]
    after = {r[0] for r in env.rows("SELECT id FROM mz_cluster_replicas WHERE cluster_id = 'u2'")}
    assert not before & after


def test_replication_factor_zero_and_back(env: Env) -> None:
    env.run("CREATE CLUSTER c (SIZE = '25cc', REPLICATION FACTOR 2)")
    env.run("ALTER CLUSTER c SET (REPLICATION FACTOR = 0)")
    assert _cluster(env, "c") == ("u2", True, "25cc", 0)
    assert _replicas(env, "c") == []
    env.run("ALTER CLUSTER c SET (REPLICATION FACTOR 1)")
    assert _replicas(env, "c") == [("r1", "25cc")]
    env.run("ALTER CLUSTER c RESET (REPLICATION FACTOR)")
    assert _cluster(env, "c") == ("u2", True, "25cc", 1)


def test_managed_false_hands_over_replicas(env: Env) -> None:
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    rid = env.scalar("SELECT id FROM mz_cluster_replicas WHERE cluster_id = 'u2'")
    env.run("ALTER CLUSTER c SET (MANAGED = false)")
    assert _cluster(env, "c") == ("u2", False, None, None)
    assert env.scalar("SELECT id FROM mz_cluster_replicas WHERE cluster_id = 'u2'") == rid
    env.run("CREATE CLUSTER REPLICA c.burst (SIZE = '100cc')")
    env.run("DROP CLUSTER REPLICA c.r1")
    assert _replicas(env, "c") == [("burst", "100cc")]


def test_graceful_resize_finalizes_after_hydration(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX IN CLUSTER c ON t (a)")
    # Data as big as 60 s at 25cc, so that the resize is seen in progress.
    env.user.execute("SELECT mz_emulator.set_hydration_delay('c', '60 seconds')")
    env.advance("2 minutes")
    env.run(
        "ALTER CLUSTER c SET (SIZE = '100cc')"
        " WITH (WAIT UNTIL READY (TIMEOUT = '10m', ON TIMEOUT = 'ROLLBACK'))"
    )
    assert _cluster(env, "c") == ("u2", True, "25cc", 1)  # unchanged until finalized
    assert _replicas(env, "c") == [("r1", "25cc"), ("r1-pending", "100cc")]
    assert env.rows(
        "SELECT status, on_timeout, target->>'size' FROM mz_internal.mz_cluster_reconfigurations"
    ) == [("in-progress", "ROLLBACK", "100cc")]
    env.advance("20 seconds")
    assert env.scalar("SELECT status FROM mz_internal.mz_cluster_reconfigurations") == "in-progress"
    env.advance("20 seconds")  # 3 s start-up + 30 s hydration at 100cc
    assert env.scalar("SELECT status FROM mz_internal.mz_cluster_reconfigurations") == "finalized"
    assert _cluster(env, "c") == ("u2", True, "100cc", 1)
    assert _replicas(env, "c") == [("r1", "100cc")]


def test_graceful_resize_times_out_and_rolls_back(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX IN CLUSTER c ON t (a)")
    env.user.execute("SELECT mz_emulator.set_hydration_delay('c', '1 day')")
    env.run(
        "ALTER CLUSTER c SET (SIZE = '50cc')"
        " WITH (WAIT UNTIL READY (TIMEOUT = '10m', ON TIMEOUT = 'ROLLBACK'))"
    )
    env.advance("11 minutes")
    assert env.scalar("SELECT status FROM mz_internal.mz_cluster_reconfigurations") == "timed-out"
    assert _replicas(env, "c") == [("r1", "25cc")]
    assert _cluster(env, "c") == ("u2", True, "25cc", 1)


def test_schedule_and_auto_scaling(env: Env) -> None:
    env.run(
        "CREATE CLUSTER c (SIZE = '25cc', SCHEDULE = ON REFRESH (HYDRATION TIME ESTIMATE = '1 hour'))"
    )
    assert env.rows(
        "SELECT type, refresh_hydration_time_estimate::text FROM mz_internal.mz_cluster_schedules"
        " WHERE cluster_id = 'u2'"
    ) == [("on-refresh", "01:00:00")]
    assert (
        env.scalar("SELECT type FROM mz_internal.mz_cluster_schedules WHERE cluster_id = 'u1'")
        == "manual"
    )
    env.run(
        "ALTER CLUSTER quickstart SET (AUTO SCALING STRATEGY = (ON HYDRATION"
        " (HYDRATION SIZE = '200cc', LINGER DURATION = '10m')))"
    )
    assert (
        env.scalar(
            "SELECT strategy->'on_hydration'->>'hydration_size'"
            " FROM mz_internal.mz_cluster_auto_scaling_strategies WHERE cluster_id = 'u1'"
        )
        == "200cc"
    )


def test_session_variables(env: Env) -> None:
    assert env.run("SHOW cluster").rows == [("quickstart",)]
    assert env.run("SET cluster = nope").tag == "SET"
    assert env.run("SHOW cluster").rows == [("nope",)]
    env.run('SET cluster TO "Mixed Case"')
    assert env.session.vars["cluster"] == "Mixed Case"
    assert env.run("RESET cluster").tag == "RESET"
    assert env.run("SHOW cluster").rows == [("quickstart",)]
    assert env.run("SHOW statement_logging_sample_rate").rows == [("0.99",)]
    env.run("SET statement_logging_sample_rate = 0.5")
    assert env.run("SHOW statement_logging_sample_rate").rows == [("0.5",)]
    assert statements.parse("SET application_name = 'x'") is None
    assert statements.parse("SELECT 1") is None


def test_alter_system(env: Env) -> None:
    assert env.run("SHOW statement_logging_max_sample_rate").rows == [("0.99",)]
    assert env.run("ALTER SYSTEM SET statement_logging_max_sample_rate = 0").tag == "ALTER SYSTEM"
    assert env.run("SHOW statement_logging_max_sample_rate").rows == [("0",)]
    env.run("ALTER SYSTEM SET statement_logging_default_sample_rate TO 1")
    assert env.run("SHOW statement_logging_default_sample_rate").rows == [("1",)]
    env.run("ALTER SYSTEM RESET statement_logging_max_sample_rate")
    assert env.run("SHOW statement_logging_max_sample_rate").rows == [("0.99",)]
    assert env.run("SHOW max_replicas_per_cluster").rows == [("5",)]
    err = env.fails("ALTER SYSTEM SET statement_logging_max_sample_rate = 2")
    assert err.sqlstate == "22023"
    assert (
        env.fails("ALTER SYSTEM SET nope = 1").message
        == 'unrecognized configuration parameter "nope"'
    )


def test_show_clusters(env: Env) -> None:
    env.run("CREATE CLUSTER c REPLICAS (b (SIZE = '50cc'), a (SIZE = '25cc'))")
    shown = env.run("SHOW CLUSTERS")
    assert shown.columns == ["name", "replicas", "comment"]
    assert ("c", "a (25cc), b (50cc)", "") in shown.rows
    replicas = env.run("SHOW CLUSTER REPLICAS")
    assert replicas.columns == ["cluster", "replica", "size", "ready", "comment"]
    assert ("quickstart", "r1", "25cc", "t", "") in replicas.rows


def test_objects_default_to_session_cluster(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.user.execute("INSERT INTO t VALUES (1), (2)")
    env.run("CREATE MATERIALIZED VIEW mv AS SELECT a * 10 AS b FROM t")
    assert env.rows("SELECT cluster_id, definition FROM mz_materialized_views") == [
        ("u1", "SELECT a * 10 AS b FROM t")
    ]
    assert env.rows("SELECT b FROM mv ORDER BY b") == [(10,), (20,)]
    assert env.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 't'") == "materialize"
    env.run("CREATE DEFAULT INDEX ON mv")
    assert env.rows("SELECT name, cluster_id FROM mz_indexes WHERE id LIKE 'u%%'") == [
        ("mv_primary_idx", "u1")
    ]
    env.session.vars["cluster"] = "nope"
    assert env.fails("CREATE INDEX ON t (a)").message == "unknown cluster 'nope'"
    err = env.fails("DROP MATERIALIZED VIEW mv")
    assert (
        err.message
        == 'cannot drop materialized view "mv": still depended upon by index "mv_primary_idx"'
    )
    assert env.run("DROP MATERIALIZED VIEW mv CASCADE").tag == "DROP MATERIALIZED VIEW"
    with pytest.raises(psycopg.errors.UndefinedTable):
        env.user.execute("SELECT * FROM mv")
    assert env.rows("SELECT count(*) FROM mz_indexes WHERE id LIKE 'u%%'") == [(0,)]
    assert env.run("DROP INDEX IF EXISTS nope").notices == ['index "nope" does not exist, skipping']


def test_redacted_create_sql(env: Env) -> None:
    env.run(
        "CREATE SOURCE s IN CLUSTER quickstart FROM LOAD GENERATOR AUCTION (TICK INTERVAL '1s')"
    )
    assert env.scalar("SELECT redacted_create_sql FROM mz_sources WHERE name = 's'").endswith(
        "(TICK INTERVAL '<REDACTED>')"
    )
    env.run("DROP SOURCE s")
    assert env.rows("SELECT count(*) FROM mz_sources") == [(0,)]


def test_mutation_is_atomic(env: Env) -> None:
    env.run("ALTER SYSTEM SET max_replicas_per_cluster = 1")
    env.fails("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'), b (SIZE = '25cc'))")
    assert _cluster(env, "c") is None
    env.fails("CREATE CLUSTER c REPLICAS (a (SIZE = '25cc'), b (SIZE = 'nope'))")
    assert _cluster(env, "c") is None


def test_parse_errors(env: Env) -> None:
    with pytest.raises(statements.MzError) as info:
        statements.parse("CREATE CLUSTER REPLICA c (SIZE = '25cc')")
    assert info.value.sqlstate == "42601"
