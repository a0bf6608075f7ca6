"""SUBSCRIBE over a real socket with psycopg 3 and psycopg2: DECLARE/FETCH and the plain form,
its statement-log rows, cancel, a dropped connection, 0 replicas and a lost target replica.

A subscription emits its snapshot and then nothing (later changes are not emulated), so a
FETCH without a timeout on ``SNAPSHOT = false`` or a plain SUBSCRIBE stays running for as long
as a test wants. Waiting for it polls a bounded number of times; nothing asserts on time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import psycopg2
import pytest

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.emulator.subscribe import STREAMING_NOTICE
from mz_schedctl_provider.emulator.targets import TARGET_FAILED

DRIVERS = ("psycopg", "psycopg2")


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with run_emulator(port=0, sample_rate=1.0, log_flush_s=0) as emulator:
        emulator.execute("CREATE TABLE items (a int, b text)")
        emulator.execute("INSERT INTO items VALUES (1, 'x'), (1, 'x'), (2, 'y')")
        yield emulator


def connect(emu: Emulator, driver: str, app: str, *, autocommit: bool = False) -> Any:
    if driver == "psycopg":
        return psycopg.connect(emu.url, autocommit=autocommit, application_name=app)
    conn = psycopg2.connect(emu.url, application_name=app)
    conn.autocommit = autocommit
    return conn


def run(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return list(cur.fetchall()) if cur.description else []


def cut(conn: Any) -> None:
    """Drop the TCP connection from the client's side, as a crashed client would."""
    fd = conn.pgconn.socket if isinstance(conn, psycopg.Connection) else conn.fileno()
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def backend_pid(conn: Any) -> int:
    return int(
        conn.info.backend_pid if isinstance(conn, psycopg.Connection) else conn.get_backend_pid()
    )


def sqlstate(exc: BaseException | None) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def send_cancel(emu: Emulator, pid: int) -> None:
    """A CancelRequest over its own socket, as libpq sends it (see test_running.py)."""
    key = next(s.key for s in list(emu.server._sessions) if s.pid == pid)
    with socket.create_connection(("127.0.0.1", emu.port)) as sock:
        sock.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
        sock.recv(1)


class Background:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except Exception as exc:  # the test inspects it
            self.error = exc

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "statement did not end"

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def wait_for(check: Callable[[], bool], what: str, tries: int = 1000) -> None:
    for _ in range(tries):
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def app_name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def log(emu: Emulator, app: str) -> list[tuple[Any, ...]]:
    """(statement type, finished?, status, cluster, rows) per logged statement, in order."""
    return emu.execute(
        "SELECT statement_type, finished_at IS NOT NULL, finished_status, cluster_name,"
        " rows_returned FROM mz_internal.mz_recent_activity_log_redacted"
        " WHERE application_name = %s ORDER BY began_at",
        (app,),
    )


def subscribe_log(emu: Emulator, app: str) -> list[tuple[Any, ...]]:
    """The SUBSCRIBE's own log rows (plain, COPY, or run by a cursor's first FETCH)."""
    return [row for row in log(emu, app) if row[0] in ("subscribe", "copy")]


def running_subscribe(emu: Emulator, app: str) -> bool:
    return [r[1:3] for r in subscribe_log(emu, app)] == [(False, None)]


def error_messages(emu: Emulator, app: str) -> list[str | None]:
    rows = emu.execute(
        "SELECT error_message FROM mz_internal.mz_statement_execution_history"
        " WHERE application_name = %s AND cluster_name IS NOT NULL ORDER BY began_at",
        (app,),
    )
    return [r[0] for r in rows]


# DECLARE / FETCH -----------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_fetch_returns_the_consolidated_snapshot(emu: Emulator, driver: str) -> None:
    app = app_name()
    conn = connect(emu, driver, app)
    try:
        cur = conn.cursor()
        cur.execute("DECLARE c CURSOR FOR SUBSCRIBE items")
        cur.execute("FETCH ALL c WITH (timeout = '0s')")
        assert [d[0] for d in cur.description] == ["mz_timestamp", "mz_diff", "a", "b"]
        rows = sorted(cur.fetchall(), key=lambda r: r[2])
        # Typed as Materialize's: mz_timestamp numeric, mz_diff int8; identical rows as one.
        assert [r[1:] for r in rows] == [(2, 1, "x"), (1, 2, "y")]
        assert all(isinstance(r[0], Decimal) and r[0] == rows[0][0] for r in rows)
        # Nothing changed since: a FETCH with a timeout returns no rows.
        assert run(conn, "FETCH ALL c WITH (timeout = '0s')") == []
        conn.commit()
    finally:
        conn.close()
    # The SUBSCRIBE ran on the session's cluster from the first FETCH and was retired when
    # that FETCH returned, with its rows (Materialize's send_execute_response).
    assert log(emu, app) == [
        ("begin", True, "success", None, None),
        ("declare", True, "success", None, 0),
        ("fetch", True, "success", None, 2),
        ("subscribe", True, "success", "quickstart", 2),
        ("fetch", True, "success", None, 0),
        ("commit", True, "success", None, None),
    ]


@pytest.mark.parametrize("driver", DRIVERS)
def test_fetch_counts_and_queries(emu: Emulator, driver: str) -> None:
    conn = connect(emu, driver, app_name())
    try:
        run(conn, "DECLARE c CURSOR FOR SUBSCRIBE TO (SELECT a FROM items WHERE a > 1)")
        assert [r[1:] for r in run(conn, "FETCH 5 c WITH (timeout = '0s')")] == [(1, 2)]
        conn.rollback()
        run(conn, "DECLARE c CURSOR FOR SUBSCRIBE items")
        assert len(run(conn, "FETCH c")) == 1  # one row by default, available at once
        assert len(run(conn, "FETCH 1 FROM c")) == 1
        assert run(conn, "FETCH ALL c WITH (timeout = '0s')") == []
        run(conn, "CLOSE c")
        with pytest.raises(Exception, match='cursor "c" does not exist'):
            run(conn, "FETCH ALL c")
        conn.rollback()
        run(conn, "DECLARE c CURSOR FOR SUBSCRIBE items WITH (SNAPSHOT = false)")
        assert run(conn, "FETCH ALL c WITH (timeout = '0s')") == []
    finally:
        conn.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_cursor_ends_with_its_transaction(emu: Emulator, driver: str) -> None:
    conn = connect(emu, driver, app_name(), autocommit=True)
    try:
        run(conn, "DECLARE c CURSOR FOR SUBSCRIBE items")  # its own implicit transaction
        with pytest.raises(Exception, match='cursor "c" does not exist'):
            run(conn, "FETCH ALL c WITH (timeout = '0s')")
    finally:
        conn.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_subscribe_errors(emu: Emulator, driver: str) -> None:
    conn = connect(emu, driver, app_name(), autocommit=True)
    try:
        with pytest.raises(Exception, match="SUBSCRIBE option PROGRESS is not emulated"):
            run(conn, "SUBSCRIBE items WITH (PROGRESS)")
        with pytest.raises(Exception, match=r"SUBSCRIBE \.\.\. AS is not emulated"):
            run(conn, "SUBSCRIBE items AS OF 1")
        with pytest.raises(Exception, match="does not exist"):
            run(conn, "SUBSCRIBE no_such_table")
        assert run(conn, "SELECT 1") == [(1,)]
    finally:
        conn.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_blocked_fetch_runs_until_canceled(emu: Emulator, driver: str) -> None:
    app = app_name()
    conn = connect(emu, driver, app)
    try:
        run(conn, "DECLARE c CURSOR FOR SUBSCRIBE items WITH (SNAPSHOT = false)")
        # No timeout: FETCH waits for a row, and none comes.
        fetch = Background(lambda: run(conn, "FETCH ALL c"))
        wait_for(lambda: running_subscribe(emu, app), "the SUBSCRIBE is logged running")
        assert fetch.running
        send_cancel(emu, backend_pid(conn))
        fetch.join()
        assert "canceling statement due to user request" in str(fetch.error)
        assert sqlstate(fetch.error) == "57014"
        assert subscribe_log(emu, app) == [("subscribe", True, "canceled", "quickstart", None)]
        conn.rollback()
        assert run(conn, "SELECT 1") == [(1,)]
    finally:
        conn.close()


# Plain SUBSCRIBE ------------------------------------------------------------------------------


def test_plain_subscribe_streams_rows_until_canceled(emu: Emulator) -> None:
    app = app_name()
    notices: list[str] = []
    with psycopg.connect(emu.url, autocommit=True, application_name=app) as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        rows: list[tuple[Any, ...]] = []
        with pytest.raises(psycopg.errors.QueryCanceled), conn.cursor() as cur:
            for row in cur.stream("SUBSCRIBE items"):
                rows.append(row)
                if len(rows) == 2:
                    # The snapshot arrived while the SUBSCRIBE still runs.
                    wait_for(lambda: running_subscribe(emu, app), "logged running")
                    threading.Thread(target=send_cancel, args=(emu, conn.info.backend_pid)).start()
        assert sorted(r[1:] for r in rows) == [(1, 2, "y"), (2, 1, "x")]
        assert notices == [STREAMING_NOTICE]
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert subscribe_log(emu, app) == [("subscribe", True, "canceled", "quickstart", None)]


@pytest.mark.parametrize("driver", DRIVERS)
def test_plain_subscribe_on_a_dropped_connection_ends_canceled(emu: Emulator, driver: str) -> None:
    app = app_name()
    conn = connect(emu, driver, app, autocommit=True)
    try:
        stmt = Background(lambda: run(conn, "SUBSCRIBE items"))
        wait_for(lambda: running_subscribe(emu, app), "the SUBSCRIBE is logged running")
        cut(conn)
        stmt.join()
        assert stmt.error is not None
        wait_for(lambda: not running_subscribe(emu, app), "its end is logged")
        # Materialize counts a connection error while it streams as a cancelation.
        assert subscribe_log(emu, app) == [("subscribe", True, "canceled", "quickstart", None)]
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def test_copy_subscribe_streams_copy_data_until_canceled_psycopg(emu: Emulator) -> None:
    app = app_name()
    with psycopg.connect(emu.url, autocommit=True, application_name=app) as conn:
        chunks: list[bytes] = []
        cur = conn.cursor()
        with pytest.raises(psycopg.errors.QueryCanceled):  # noqa: SIM117 - the copy must raise
            with cur.copy("COPY (SUBSCRIBE items) TO STDOUT") as copy:
                for data in copy:
                    chunks.append(bytes(data))
                    if len(chunks) == 2:
                        wait_for(lambda: running_subscribe(emu, app), "logged running")
                        threading.Thread(target=send_cancel, args=(emu, backend_pid(conn))).start()
        rows = sorted(chunk.decode().rstrip("\n").split("\t")[1:] for chunk in chunks)
        assert rows == [["1", "2", "y"], ["2", "1", "x"]]
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert subscribe_log(emu, app) == [("copy", True, "canceled", "quickstart", None)]


def test_copy_subscribe_streams_copy_data_until_canceled_psycopg2(emu: Emulator) -> None:
    app = app_name()
    conn = connect(emu, "psycopg2", app, autocommit=True)

    class Sink:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def write(self, data: bytes) -> None:
            self.lines.append(data.decode())
            if len(self.lines) == 2:
                threading.Thread(target=send_cancel, args=(emu, backend_pid(conn))).start()

    sink = Sink()
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled):
            conn.cursor().copy_expert("COPY (SUBSCRIBE (SELECT b FROM items)) TO STDOUT", sink)
        assert sorted(line.rstrip("\n").split("\t")[1:] for line in sink.lines) == [
            ["1", "y"],
            ["2", "x"],
        ]
        assert run(conn, "SELECT 1") == [(1,)]
    finally:
        conn.close()
    assert subscribe_log(emu, app) == [("copy", True, "canceled", "quickstart", None)]


def test_copy_subscribe_formats(emu: Emulator) -> None:
    with psycopg.connect(emu.url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="TO STDOUT in text format"):
            conn.execute("COPY (SUBSCRIBE items) TO STDOUT WITH (FORMAT CSV)")
        assert conn.execute("SELECT 1").fetchone() == (1,)


# Cluster replicas -----------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_subscribe_on_a_cluster_without_replicas_fails_at_once(emu: Emulator, driver: str) -> None:
    cluster = f"c_{uuid.uuid4().hex[:8]}"
    emu.execute(f"CREATE CLUSTER {cluster} (SIZE '25cc', REPLICATION FACTOR 0)")
    app = app_name()
    conn = connect(emu, driver, app, autocommit=True)
    try:
        run(conn, f"SET cluster = {cluster}")
        with pytest.raises(Exception, match="has no replicas available to service request"):
            run(conn, "SUBSCRIBE items")
        conn.autocommit = False
        run(conn, "DECLARE c CURSOR FOR SUBSCRIBE items")
        with pytest.raises(Exception, match="has no replicas available to service request"):
            run(conn, "FETCH ALL c")
        conn.rollback()
        assert [r[2] for r in subscribe_log(emu, app)] == ["error", "error"]
    finally:
        conn.close()
        emu.execute(f"DROP CLUSTER {cluster} CASCADE")


@pytest.mark.parametrize("driver", DRIVERS)
def test_targeted_subscribe_fails_when_its_replica_goes_untargeted_stays(
    emu: Emulator, driver: str
) -> None:
    cluster = f"c_{uuid.uuid4().hex[:8]}"
    emu.execute(f"CREATE CLUSTER {cluster} REPLICAS (r1 (SIZE '25cc'))")
    app_t, app_u, app_f = app_name(), app_name(), app_name()
    targeted = connect(emu, driver, app_t, autocommit=True)
    untargeted = connect(emu, driver, app_u, autocommit=True)
    fetcher = connect(emu, driver, app_f)
    try:
        for conn in (targeted, untargeted, fetcher):
            run(conn, f"SET cluster = {cluster}")
        run(targeted, "SET cluster_replica = r1")
        run(fetcher, "SET cluster_replica = r1")
        # A targeted cursor whose first FETCH already returned.
        run(fetcher, "DECLARE c CURSOR FOR SUBSCRIBE items")
        assert len(run(fetcher, "FETCH ALL c WITH (timeout = '0s')")) == 2
        t_sub = Background(lambda: run(targeted, "SUBSCRIBE items"))
        u_sub = Background(lambda: run(untargeted, "SUBSCRIBE items"))
        wait_for(lambda: running_subscribe(emu, app_t) and running_subscribe(emu, app_u),
                 "both SUBSCRIBEs run")  # fmt: skip
        emu.execute(f"DROP CLUSTER REPLICA {cluster}.r1")  # its last replica
        t_sub.join()
        assert TARGET_FAILED in str(t_sub.error) and sqlstate(t_sub.error) == "XX000"
        assert error_messages(emu, app_t) == [TARGET_FAILED]
        with pytest.raises(Exception, match=TARGET_FAILED):
            run(fetcher, "FETCH ALL c WITH (timeout = '0s')")
        fetcher.rollback()
        # The untargeted one stays running, waiting for a replica.
        assert u_sub.running and running_subscribe(emu, app_u)
        send_cancel(emu, backend_pid(untargeted))
        u_sub.join()
        assert "canceling statement" in str(u_sub.error)
        assert run(targeted, "SELECT 1") == [(1,)]
    finally:
        for conn in (targeted, untargeted, fetcher):
            conn.close()
        emu.execute(f"DROP CLUSTER IF EXISTS {cluster} CASCADE")
