"""Replica status history, replica lifetimes and hydration times as Materialize writes them,
read over TCP with psycopg 3 and psycopg2.

Materialize keeps a new replica's offline/initializing status in memory only and appends a
history row per orchestrator event (src/adapter/src/coord.rs, coord/message_handler.rs,
src/orchestrator-process/src/lib.rs); mz_cluster_replica_history comes from the audit log
(src/catalog/src/builtin.rs)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import psycopg2
import pytest

from mz_schedctl_provider.emulator.control import Emulator

DRIVERS = ("psycopg", "psycopg2")


class Client:
    """One autocommit connection through either real driver."""

    def __init__(self, emulator: Emulator, driver: str) -> None:
        self.driver = driver
        if driver == "psycopg":
            self.conn: Any = psycopg.connect(emulator.url, autocommit=True)
        else:
            self.conn = psycopg2.connect(emulator.url)
            self.conn.autocommit = True

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(query, params)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        return self.rows(query, params)[0][0]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture(params=DRIVERS)
def client(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[Client]:
    c = Client(emulator, request.param)
    try:
        yield c
    finally:
        c.close()


def replica_id(c: Client, cluster: str, replica: str) -> str:
    return str(
        c.scalar(
            "SELECT r.id FROM mz_catalog.mz_cluster_replicas r"
            " JOIN mz_catalog.mz_clusters c ON c.id = r.cluster_id"
            " WHERE c.name = %s AND r.name = %s",
            (cluster, replica),
        )
    )


def history(c: Client, rid: str) -> list[tuple[str, str | None]]:
    return [
        (str(s), r)
        for s, r in c.rows(
            "SELECT status, reason FROM mz_internal.mz_cluster_replica_status_history"
            " WHERE replica_id = %s ORDER BY occurred_at",
            (rid,),
        )
    ]


def status(c: Client, rid: str) -> tuple[str, str | None]:
    rows = c.rows(
        "SELECT status, reason FROM mz_internal.mz_cluster_replica_statuses WHERE replica_id = %s",
        (rid,),
    )
    assert len(rows) == 1, rows
    return str(rows[0][0]), rows[0][1]


def hydration(c: Client, rid: str, index: str) -> tuple[bool, timedelta | None]:
    hydrated, time = c.rows(
        "SELECT h.hydrated, h.hydration_time FROM mz_internal.mz_compute_hydration_statuses h"
        " JOIN mz_catalog.mz_indexes i ON i.id = h.object_id"
        " WHERE h.replica_id = %s AND i.name = %s",
        (rid, index),
    )[0]
    return bool(hydrated), time


def test_new_replica_no_crash_row_then_crash_restart_rehydration(
    emulator: Emulator, client: Client, name: str
) -> None:
    c = client
    c.rows("SELECT mz_emulator.set_delays('3 seconds', '60 seconds')")
    c.rows(f"CREATE TABLE t_{name} (a int)")
    c.rows(f"CREATE CLUSTER {name} (SIZE = '25cc')")
    c.rows(f"CREATE INDEX i_{name} IN CLUSTER {name} ON t_{name} (a)")
    rid = replica_id(c, name, "r1")

    # Starting: the current status says so, the history says nothing (no crash-looking row).
    assert status(c, rid) == ("offline", "initializing")
    assert history(c, rid) == []
    assert hydration(c, rid, f"i_{name}") == (False, None)
    emulator.advance(3)
    assert status(c, rid) == ("online", None)
    assert history(c, rid) == [("online", None)]
    emulator.advance(59)
    assert hydration(c, rid, f"i_{name}") == (False, None)  # NULL until hydrated
    emulator.advance(1)
    assert hydration(c, rid, f"i_{name}") == (True, timedelta(seconds=60))
    emulator.advance(3600)  # the replica's creation is now out of any crash window

    # A real crash: the process exits (the docker image reports reason NULL), restarts one
    # second later, comes up after the start-up delay and hydrates again from scratch.
    c.rows("SELECT mz_emulator.inject_crash(%s, 'r1', 'segfault')", (name,))
    assert status(c, rid) == ("offline", None)
    assert hydration(c, rid, f"i_{name}") == (False, None)
    emulator.advance(1)
    assert status(c, rid) == ("offline", None)  # restarting: no new event yet
    emulator.advance(3)
    assert status(c, rid) == ("online", None)
    assert hydration(c, rid, f"i_{name}") == (False, None)
    emulator.advance(60)
    assert hydration(c, rid, f"i_{name}") == (True, timedelta(seconds=60))
    assert history(c, rid) == [("online", None), ("offline", None), ("online", None)]

    # An OOM kill reads oom-killed (as Kubernetes/Cloud reports it).
    emulator.inject_oom(name, "r1")
    assert history(c, rid)[-1] == ("offline", "oom-killed")
    assert status(c, rid) == ("offline", "oom-killed")


def test_crash_before_first_online_has_no_online_row(client: Client, name: str) -> None:
    c = client
    c.rows("SELECT mz_emulator.set_delays('3 seconds', NULL)")
    c.rows(f"CREATE CLUSTER {name} (SIZE = '25cc')")
    rid = replica_id(c, name, "r1")
    c.rows("SELECT mz_emulator.inject_crash(%s, 'r1', NULL)", (name,))
    assert history(c, rid) == [("offline", None)]
    with pytest.raises(Exception, match="start-up state, not a crash"):
        c.rows("SELECT mz_emulator.inject_crash(%s, 'r1', 'initializing')", (name,))


def lifetimes(c: Client, cluster_id: str) -> list[tuple[Any, ...]]:
    return c.rows(
        "SELECT replica_id, size, cluster_name, replica_name, created_at, dropped_at,"
        " credits_per_hour FROM mz_internal.mz_cluster_replica_history"
        " WHERE cluster_id = %s ORDER BY created_at, replica_id",
        (cluster_id,),
    )


def test_replica_history_keeps_every_replica_on_the_emulated_clock(
    emulator: Emulator, client: Client, name: str
) -> None:
    c = client
    emulator.advance(7200)  # the emulated clock runs two hours ahead of the wall clock
    before = c.scalar("SELECT now()")
    c.rows(f"CREATE CLUSTER {name} (SIZE = '25cc')")
    after = c.scalar("SELECT now()")
    cid = str(c.scalar("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (name,)))
    first = replica_id(c, name, "r1")
    [row] = lifetimes(c, cid)
    assert row[:4] == (first, "25cc", name, "r1")
    assert before <= row[4] <= after
    assert row[5] is None and row[6] == Decimal("0.25")

    # ALTER CLUSTER replaces the managed replica: the old one is kept, dropped, with its size.
    emulator.advance(60)
    c.rows(f"ALTER CLUSTER {name} SET (SIZE = '50cc')")
    second = replica_id(c, name, "r1")
    # A graceful resize creates r1-pending; the history keeps the name of its create event.
    emulator.advance(60)
    c.rows(
        f"ALTER CLUSTER {name} SET (SIZE = '100cc')"
        " WITH (WAIT UNTIL READY (TIMEOUT = '10m', ON TIMEOUT = 'ROLLBACK'))"
    )
    pending = replica_id(c, name, "r1-pending")
    emulator.advance(60)
    assert replica_id(c, name, "r1") == pending  # finalized, renamed r1
    c.rows(f"ALTER CLUSTER {name} RENAME TO {name}_renamed")
    emulator.advance(60)
    drop_before = c.scalar("SELECT now()")
    c.rows(f"DROP CLUSTER {name}_renamed CASCADE")
    drop_after = c.scalar("SELECT now()")

    rows = lifetimes(c, cid)
    assert [r[:4] for r in rows] == [
        (first, "25cc", name, "r1"),
        (second, "50cc", name, "r1"),
        (pending, "100cc", name, "r1-pending"),
    ]
    assert [r[6] for r in rows] == [Decimal("0.25"), Decimal("0.5"), Decimal("1")]
    # Every replica has its drop time, the last one with its cluster's drop.
    assert rows[0][5] == rows[1][4]  # replaced at once by the non-graceful ALTER
    assert rows[1][4] < rows[1][5] <= rows[2][4] + timedelta(minutes=1)
    assert drop_before <= rows[2][5] <= drop_after
    assert not c.rows("SELECT 1 FROM mz_catalog.mz_cluster_replicas WHERE cluster_id = %s", (cid,))


def test_replica_history_has_no_system_replicas_and_is_a_catalog_read(
    client: Client, name: str
) -> None:
    c = client
    ids = {
        str(r[0]) for r in c.rows("SELECT replica_id FROM mz_internal.mz_cluster_replica_history")
    }
    assert replica_id(c, "quickstart", "r1") in ids
    assert not any(i.startswith("s") for i in ids)
    # A catalog read runs on a cluster without replicas, where a user read cannot.
    c.rows(f"CREATE CLUSTER {name} REPLICAS ()")
    c.rows(f"CREATE TABLE t_{name} (a int)")
    c.rows(f"SET cluster = {name}")
    assert c.scalar("SELECT count(*) FROM mz_internal.mz_cluster_replica_history") >= 1
    with pytest.raises(Exception, match="has no replicas"):
        c.rows(f"SELECT * FROM t_{name}")
