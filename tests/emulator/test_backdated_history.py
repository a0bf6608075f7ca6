"""Back-dated history (mz_emulator.backdate_replica, backdate_refused_query, backdate_statement)
looks exactly as the emulator's own rows: a replica made by DDL, a query the proxy refused and
one it ran, compared column by column through psycopg 3 and psycopg2; contradictions with the
catalog are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import psycopg2
import pytest

from mz_schedctl_provider.emulator.control import Emulator

_HISTORY = (
    "SELECT replica_id, size, cluster_id, cluster_name, replica_name, created_at, dropped_at,"
    " credits_per_hour FROM mz_internal.mz_cluster_replica_history WHERE cluster_name = %s"
    " ORDER BY created_at"
)
# Everything but the ids, the times and the text, which differ by construction.
_LOG = (
    "SELECT sample_rate, cluster_id, cluster_name, database_name, search_path,"
    " transaction_isolation, transaction_id, transient_index_id, mz_version,"
    " finished_status, error_message, result_size, rows_returned, execution_strategy,"
    " finished_at >= began_at FROM mz_internal.mz_statement_execution_history"
    " WHERE cluster_name = %s ORDER BY began_at"
)


@pytest.fixture(params=["psycopg", "psycopg2"])
def conn(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[Any]:
    if request.param == "psycopg":
        c: Any = psycopg.connect(emulator.url, autocommit=True)
    else:
        c = psycopg2.connect(emulator.url)
        c.autocommit = True
    try:
        yield c
    finally:
        c.close()


def _rows(conn: Any, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(query, params)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def test_backdated_replica_reads_as_one_made_by_ddl(
    emulator: Emulator, conn: Any, name: str
) -> None:
    emulator.execute(f"CREATE CLUSTER {name} REPLICAS (made (SIZE = '50cc'))")
    emulator.advance(3600)
    now = emulator.execute("SELECT now()")[0][0]
    rid = emulator.backdate_replica(name, "old", "50cc", now - timedelta(minutes=30))
    made, old = _rows(conn, _HISTORY, (name,))
    assert old[0] == rid and old[5] == now - timedelta(minutes=30) and old[6] is None
    # Same size, cluster, names' shape, credits and types as the replica CREATE CLUSTER made.
    assert (old[1], old[2], old[3], old[7]) == (made[1], made[2], made[3], made[7])
    assert [type(v) for v in old] == [type(v) for v in made]
    # Live: in the catalog, online after its start-up delay, droppable by DDL like any other.
    replicas = _rows(
        conn,
        "SELECT r.name, s.status FROM mz_catalog.mz_cluster_replicas r"
        " JOIN mz_internal.mz_cluster_replica_statuses s ON s.replica_id = r.id"
        " WHERE r.cluster_id = %s ORDER BY r.name",
        (made[2],),
    )
    assert replicas == [("made", "online"), ("old", "online")]
    emulator.execute(f"DROP CLUSTER REPLICA {name}.old")
    assert _rows(conn, _HISTORY, (name,))[1][6] is not None


def test_backdated_refusal_reads_as_one_the_proxy_refused(
    emulator: Emulator, conn: Any, name: str
) -> None:
    emulator.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    emulator.execute(f"CREATE TABLE IF NOT EXISTS t_{name} (a int)")
    with psycopg.connect(emulator.url, autocommit=True) as client:
        client.execute(f"SET cluster = {name}")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="no replicas available"):
            client.execute(f"SELECT * FROM t_{name}")
    emulator.advance(120)
    now = emulator.execute("SELECT now()")[0][0]
    emulator.backdate_refused_query(name, now - timedelta(seconds=30))
    real, backdated = _rows(conn, _LOG, (name,))
    assert real[9] == "error" and "has no replicas available" in real[10]
    assert backdated == real


def test_backdating_refuses_what_contradicts_the_catalog(emulator: Emulator, name: str) -> None:
    emulator.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    emulator.advance(3600)
    now = emulator.execute("SELECT now()")[0][0]
    emulator.backdate_replica(name, "r1", "25cc", now - timedelta(minutes=40), now)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="had a replica"):
        emulator.backdate_refused_query(name, now - timedelta(minutes=20))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="now"):
        emulator.backdate_replica(name, "r2", "25cc", now + timedelta(minutes=5))
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        emulator.backdate_replica(name, "r3", "25cc", now - timedelta(days=2))  # before CREATE
    with pytest.raises(psycopg.errors.InternalError, match="unknown cluster replica size"):
        emulator.backdate_replica(name, "r4", "7cc", now - timedelta(minutes=5))
    emulator.execute(f"CREATE CLUSTER {name}_m (SIZE '25cc', REPLICATION FACTOR 0)")
    with pytest.raises(psycopg.errors.InternalError, match="cannot modify managed cluster"):
        emulator.backdate_replica(f"{name}_m", "r1", "25cc", now)


def test_backdated_statement_reads_as_one_the_proxy_ran(
    emulator: Emulator, conn: Any, name: str
) -> None:
    emulator.execute(f"CREATE CLUSTER {name} REPLICAS (r1 (SIZE = '25cc'))")
    emulator.execute(f"CREATE TABLE IF NOT EXISTS t_{name} (a int)")
    emulator.advance(60)
    with psycopg.connect(emulator.url, autocommit=True) as client:
        client.execute(f"SET cluster = {name}")
        assert client.execute(f"SELECT * FROM t_{name}").fetchall() == []
    emulator.advance(120)
    now = emulator.execute("SELECT now()")[0][0]
    emulator.backdate_statement(name, now - timedelta(seconds=30), now - timedelta(seconds=29))
    real, backdated = _rows(conn, _LOG, (name,))
    assert real[9] == "success"
    assert backdated == real
    emulator.execute(f"DROP CLUSTER REPLICA {name}.r1")
    emulator.advance(60)
    later = emulator.execute("SELECT now()")[0][0]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="had no replica"):
        emulator.backdate_statement(name, later - timedelta(seconds=10), later)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="finished_at <= now"):
        emulator.backdate_statement(name, now, later + timedelta(seconds=10))
