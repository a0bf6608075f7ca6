# ruff: noqa: F811  (fixtures imported from emucatalog_fixtures)
"""Hydration time estimated from the data an object reads (emulator.hydration).

The over-the-socket tests drive a real emulator through psycopg 3 and psycopg2; the others
read the stored estimates from the catalog directly (emucatalog_fixtures), which is the only
place they are visible."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from emucatalog_fixtures import Env, env, pg_uri  # noqa: F401

from mz_schedctl_provider.emulator import hydration
from mz_schedctl_provider.emulator.control import Emulator


def _ids(env: Env, cluster: str, replica: str) -> str:
    return str(
        env.scalar(
            "SELECT r.id FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
            " WHERE c.name = %s AND r.name = %s",
            (cluster, replica),
        )
    )


def _estimate(env: Env, object_name: str, replica_id: str) -> tuple[float, timedelta]:
    row = env.admin.execute(
        "SELECT x.rows_read, x.delay FROM mz_emulator.hydration_estimates x"
        " JOIN mz_emulator.items i ON i.id = x.object_id"
        " WHERE i.name = %s AND x.replica_id = %s",
        (object_name, replica_id),
    ).fetchone()
    assert row is not None, f"no estimate for {object_name} on {replica_id}"
    return float(row[0]), row[1]


def _hydrated(env: Env, object_name: str, replica_id: str) -> bool:
    return bool(
        env.scalar(
            "SELECT h.hydrated FROM mz_internal.mz_hydration_statuses h"
            " JOIN mz_catalog.mz_indexes i ON i.id = h.object_id"
            " WHERE i.name = %s AND h.replica_id = %s",
            (object_name, replica_id),
        )
    )


def _fill(env: Env, table: str, rows: int) -> None:
    """A table of `rows` rows whose reltuples PostgreSQL knows exactly (analysed, no
    autovacuum racing the test)."""
    env.user.execute(f"CREATE TABLE {table} (a int) WITH (autovacuum_enabled = false)")
    env.user.execute(f"INSERT INTO {table} SELECT g FROM generate_series(1, {rows}) g")
    env.user.execute(f"ANALYZE {table}")


# Over the socket, with the real drivers ---------------------------------------------------


def _hydration_time(conn: Any, index: str) -> Any:
    cur = conn.cursor()
    cur.execute(
        "SELECT h.hydrated, h.hydration_time FROM mz_internal.mz_compute_hydration_statuses h"
        " JOIN mz_catalog.mz_indexes i ON i.id = h.object_id WHERE i.name = %s",
        (index,),
    )
    return cur.fetchall()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_index_on_three_rows_hydrates_within_seconds_on_25cc(
    emulator: Emulator, driver: str, name: str, mz: psycopg.Connection[Any], mz2: Any
) -> None:
    conn = mz if driver == "psycopg" else mz2
    cur = conn.cursor()
    cur.execute(f"CREATE TABLE t_{name} (a int)")
    cur.execute(f"INSERT INTO t_{name} VALUES (1), (2), (3)")
    cur.execute(f"CREATE CLUSTER {name} (SIZE = '25cc')")
    cur.execute(f"CREATE INDEX i_{name} IN CLUSTER {name} ON t_{name} (a)")
    cur.execute("SELECT mz_emulator.advance('3 seconds')")  # start-up: online now
    assert [h for h, _ in _hydration_time(conn, f"i_{name}")] == [False]
    cur.execute("SELECT mz_emulator.advance('1 second')")
    ((hydrated, took),) = _hydration_time(conn, f"i_{name}")
    assert hydrated
    # hydration_time is counted from when the dataflow was installed, i.e. the replica came
    # online (not from the index's creation): the 1 s floor, no start-up.
    assert timedelta(0) < took <= timedelta(seconds=1)


# The estimate -----------------------------------------------------------------------------


def test_estimate_follows_rows_and_replica_size(env: Env) -> None:
    _fill(env, "big", 500_000)
    env.run("CREATE CLUSTER c REPLICAS (small (SIZE = '25cc'), large (SIZE = '100cc'))")
    env.run("CREATE INDEX big_idx IN CLUSTER c ON big (a)")
    small, large = _ids(env, "c", "small"), _ids(env, "c", "large")
    rows, delay_small = _estimate(env, "big_idx", small)
    assert rows == 500_000
    assert delay_small == timedelta(seconds=500_000 / hydration.ROWS_PER_SECOND_25CC)
    _, delay_large = _estimate(env, "big_idx", large)
    assert delay_large == delay_small / 2  # sqrt(0.25 / 1 credit)
    env.advance("3 seconds")
    env.advance("4 seconds")
    assert not _hydrated(env, "big_idx", small) and _hydrated(env, "big_idx", large)
    env.advance("1 second")
    assert _hydrated(env, "big_idx", small)


def test_never_analysed_table_counts_its_pages(env: Env) -> None:
    env.user.execute("CREATE TABLE fresh (a int) WITH (autovacuum_enabled = false)")
    env.user.execute("INSERT INTO fresh SELECT g FROM generate_series(1, 50000) g")
    assert env.user.execute(
        "SELECT reltuples FROM pg_class WHERE relname = 'fresh'"
    ).fetchone() == (-1,)
    pages = env.user.execute("SELECT pg_relation_size('fresh') / 8192").fetchone()[0]
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE INDEX fresh_idx IN CLUSTER c ON fresh (a)")
    rows, _ = _estimate(env, "fresh_idx", _ids(env, "c", "r1"))
    assert pages > 0 and rows == pages * hydration.ROWS_PER_PAGE


def test_rows_are_summed_through_views_and_materialized_views(env: Env) -> None:
    _fill(env, "t1", 1000)
    _fill(env, "t2", 2000)
    _fill(env, "unrelated", 4000)
    env.user.execute("CREATE VIEW v AS SELECT t1.a FROM t1 JOIN t2 ON t1.a = t2.a")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    # t1 is read twice (directly and through v): counted once.
    env.run("CREATE MATERIALIZED VIEW mv IN CLUSTER c AS SELECT v.a FROM v JOIN t1 USING (a)")
    env.run("CREATE INDEX mv_idx IN CLUSTER c ON mv (a)")
    env.run("CREATE MATERIALIZED VIEW const IN CLUSTER c AS SELECT 1 AS one")
    env.run("CREATE SOURCE counter IN CLUSTER c FROM LOAD GENERATOR COUNTER")
    env.run("CREATE MATERIALIZED VIEW from_source IN CLUSTER c AS SELECT * FROM counter")
    rid = _ids(env, "c", "r1")
    assert _estimate(env, "mv", rid)[0] == 3000
    assert _estimate(env, "mv_idx", rid)[0] == 3000
    assert _estimate(env, "const", rid) == (0, timedelta(seconds=1))  # the floor
    assert _estimate(env, "counter", rid)[0] == hydration.LOAD_GENERATOR_ROWS
    assert _estimate(env, "from_source", rid)[0] == hydration.LOAD_GENERATOR_ROWS


def test_estimate_is_stored_when_the_replica_is_created(env: Env) -> None:
    """A replica created after the data grew hydrates slower; the first one keeps its
    estimate (reading the catalog computes nothing)."""
    env.user.execute("CREATE TABLE t (a int) WITH (autovacuum_enabled = false)")
    env.run("CREATE CLUSTER c REPLICAS (r1 (SIZE = '25cc'))")
    env.run("CREATE INDEX t_idx IN CLUSTER c ON t (a)")
    env.user.execute("INSERT INTO t SELECT g FROM generate_series(1, 300000) g")
    env.user.execute("ANALYZE t")
    env.run("CREATE CLUSTER REPLICA c.r2 (SIZE = '25cc')")
    r1, r2 = _ids(env, "c", "r1"), _ids(env, "c", "r2")
    assert _estimate(env, "t_idx", r1) == (0, timedelta(seconds=1))
    assert _estimate(env, "t_idx", r2) == (300_000, timedelta(seconds=3))
    env.advance("5 seconds")
    assert _hydrated(env, "t_idx", r1) and not _hydrated(env, "t_idx", r2)
    env.advance("1 second")
    assert _hydrated(env, "t_idx", r2)


def test_overrides_win_and_reset_restores_the_estimate(env: Env) -> None:
    env.user.execute("CREATE TABLE t (a int)")
    env.run("CREATE CLUSTER c (SIZE = '25cc')")
    env.run("CREATE CLUSTER d (SIZE = '25cc')")
    env.run("CREATE INDEX c_idx IN CLUSTER c ON t (a)")
    env.run("CREATE INDEX d_idx IN CLUSTER d ON t (a)")
    rc, rd = _ids(env, "c", "r1"), _ids(env, "d", "r1")
    env.advance("4 seconds")  # online at 3 s, estimate 1 s
    assert _hydrated(env, "c_idx", rc) and _hydrated(env, "d_idx", rd)
    env.user.execute("SELECT mz_emulator.set_delays(NULL, '1 minute')")
    env.user.execute("SELECT mz_emulator.set_hydration_delay('d', '10 seconds')")
    assert not _hydrated(env, "c_idx", rc) and not _hydrated(env, "d_idx", rd)
    env.advance("10 seconds")  # 14 s: d's own delay (13 s) beats the instance's
    assert not _hydrated(env, "c_idx", rc) and _hydrated(env, "d_idx", rd)
    # NULL leaves the hydration override unchanged.
    env.user.execute("SELECT mz_emulator.set_delays('3 seconds', NULL)")
    assert not _hydrated(env, "c_idx", rc)
    env.user.execute("SELECT mz_emulator.reset_hydration_delay()")
    assert _hydrated(env, "c_idx", rc)
    env.user.execute("SELECT mz_emulator.set_hydration_delay('d', '1 hour')")
    assert not _hydrated(env, "d_idx", rd)  # a cluster's own delay survives the reset
    env.user.execute("SELECT mz_emulator.set_hydration_delay('d', NULL)")
    assert _hydrated(env, "d_idx", rd)
