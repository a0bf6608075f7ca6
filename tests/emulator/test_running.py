"""Running statements as Materialize logs and ends them, and the statement-log flush lag, over a
real socket with psycopg 3 and psycopg2.

A statement is kept running by a *gate*: it calls a function that reads a table the test holds
an exclusive lock on (taken straight in the emulator's PostgreSQL), so it runs exactly as long
as the test wants and no test depends on how fast the machine is. Waiting for a concurrent
statement to reach a state polls a bounded number of times; nothing is asserted about time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg2
import pytest

from mz_schedctl_provider.emulator import logflush
from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.emulator.targets import TARGET_FAILED

DRIVERS = ("psycopg", "psycopg2")
GATED = "SELECT a, public.gate() FROM gated"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    # Every statement logged, and visible at once unless a test sets a flush interval.
    with run_emulator(port=0, sample_rate=1.0, log_flush_s=0) as emulator:
        emulator.execute("CREATE TABLE gated (a int)")
        emulator.execute("INSERT INTO gated VALUES (1)")
        emulator.execute("CREATE TABLE gate_t (a int)")
        with emulator.backend.connect_admin() as admin:
            # plpgsql, so the lock is taken when the statement executes, not when it is parsed.
            admin.execute(
                "CREATE FUNCTION public.gate() RETURNS bigint LANGUAGE plpgsql AS"
                " $$ BEGIN RETURN (SELECT count(*) FROM public.gate_t); END $$"
            )
        yield emulator


class Client:
    """One client connection through either driver, in autocommit mode."""

    def __init__(self, emu: Emulator, driver: str, app: str) -> None:
        self.driver = driver
        if driver == "psycopg":
            self.conn: Any = psycopg.connect(emu.url, autocommit=True, application_name=app)
        else:
            self.conn = psycopg2.connect(emu.url, application_name=app)
            self.conn.autocommit = True

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []

    def cut(self) -> None:
        """Drop the TCP connection from the client's side, as a crashed client would."""
        fd = self.conn.pgconn.socket if self.driver == "psycopg" else self.conn.fileno()
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class Background:
    """A statement run on its own thread; its rows or its error once it ends."""

    def __init__(self, client: Client, sql: str) -> None:
        self.rows: list[tuple[Any, ...]] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(client, sql), daemon=True)
        self._thread.start()

    def _run(self, client: Client, sql: str) -> None:
        try:
            self.rows = client.run(sql)
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


@contextlib.contextmanager
def gate_closed(emu: Emulator) -> Iterator[psycopg.Connection[Any]]:
    """Hold the gate: gated statements block until the block ends."""
    with emu.backend.connect_admin() as admin:
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE public.gate_t IN ACCESS EXCLUSIVE MODE")
        try:
            yield admin
        finally:
            admin.execute("ROLLBACK")


def waiting_at_gate(emu: Emulator) -> int:
    with emu.backend.connect_admin() as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'gate_t' AND NOT l.granted"
        ).fetchone()
    return int(row[0]) if row else 0


def log_rows(emu: Emulator, app: str) -> list[tuple[Any, ...]]:
    """What a reader of mz_statement_execution_history sees for one application."""
    return emu.execute(
        "SELECT finished_at IS NOT NULL, finished_status, error_message, execution_strategy,"
        " cluster_name FROM mz_internal.mz_statement_execution_history"
        " WHERE application_name = %s ORDER BY began_at",
        (app,),
    )


def app_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def align_to_flush(emu: Emulator, every: float) -> None:
    """Move the clock just past a flush tick, so the next one is a whole interval away."""
    (epoch,) = emu.execute("SELECT extract(epoch FROM mz_emulator.now())::float8")[0]
    emu.advance(every - (epoch % every) + 0.01)


@pytest.fixture
def flush_every(emu: Emulator) -> Iterator[Callable[[float], None]]:
    def set_to(seconds: float) -> None:
        emu.set_log_flush(seconds)

    try:
        yield set_to
    finally:
        emu.set_log_flush(0)


# Flush lag -----------------------------------------------------------------------------------


def test_default_flush_interval_is_materializes() -> None:
    with run_emulator(port=0) as emulator, emulator.backend.connect_admin() as admin:
        row = admin.execute(
            "SELECT value::interval FROM mz_emulator.settings WHERE name = %s",
            (logflush.SETTING,),
        ).fetchone()
    assert row is not None and row[0].total_seconds() == 5.0


@pytest.mark.parametrize("driver", DRIVERS)
def test_log_rows_appear_at_the_next_flush(
    emu: Emulator, driver: str, flush_every: Callable[[float], None]
) -> None:
    # A long interval, so no real-time flush tick can fall inside the test.
    flush_every(600)
    align_to_flush(emu, 600)
    app = app_name()
    client = Client(emu, driver, app)
    try:
        assert client.run("SELECT count(*) FROM gated") == [(1,)]
    finally:
        client.close()
    assert log_rows(emu, app) == [], "logged before the flush"
    emu.advance(300)
    assert log_rows(emu, app) == [], "a flush is a whole interval away"
    emu.advance(300)
    assert log_rows(emu, app) == [(True, "success", None, "standard", "quickstart")]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_running_statement_and_its_end_show_at_flushes(
    emu: Emulator, driver: str, flush_every: Callable[[float], None]
) -> None:
    flush_every(600)
    align_to_flush(emu, 600)
    app = app_name()
    client = Client(emu, driver, app)
    try:
        with gate_closed(emu):
            stmt = Background(client, GATED)
            wait_for(lambda: waiting_at_gate(emu) == 1, "the statement waits at the gate")
            assert log_rows(emu, app) == []
            emu.advance(600)
            # Flushed while running: the begin row, every end column NULL.
            assert log_rows(emu, app) == [(False, None, None, None, "quickstart")]
        stmt.join()
        assert stmt.error is None and stmt.rows == [(1, 0)]
        # It ended after that flush: still shown running until the next one.
        assert log_rows(emu, app) == [(False, None, None, None, "quickstart")]
        emu.advance(600)
        assert log_rows(emu, app) == [(True, "success", None, "standard", "quickstart")]
    finally:
        client.close()


def test_cli_log_flush_option(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", "0", "--sample-rate",
         "1", "--log-flush-s", "600", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url, proc.communicate(timeout=60)[1]
        with psycopg.connect(url, autocommit=True) as conn:  # just past a flush tick
            (epoch,) = conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()  # type: ignore[misc]
            conn.execute("SELECT mz_emulator.advance(make_interval(secs => %s))",
                         (600 - epoch % 600 + 0.01,))  # fmt: skip
        with psycopg.connect(url, autocommit=True, application_name="cli-lag") as conn:
            conn.execute("SELECT 1")
            seen = "SELECT count(*) FROM mz_internal.mz_statement_execution_history"
            seen += " WHERE application_name = 'cli-lag'"
            assert conn.execute(seen).fetchone() == (0,)
            conn.execute("SELECT mz_emulator.advance('10 minutes')")
            # SELECT 1, the first count and the advance began before the tick; this count after.
            assert conn.execute(seen).fetchone() == (3,)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    bad = subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--log-flush-s", "-1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--log-flush-s cannot be negative" in bad.stderr


def test_set_log_flush_refuses_negative(emu: Emulator) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        emu.execute("SELECT mz_emulator.set_log_flush('-1 second')")
    with pytest.raises(ValueError):
        emu.set_log_flush(-1)


# Running statements --------------------------------------------------------------------------


@pytest.mark.parametrize("driver", DRIVERS)
def test_running_statement_is_logged_unfinished_then_finished(emu: Emulator, driver: str) -> None:
    app = app_name()
    client = Client(emu, driver, app)
    try:
        with gate_closed(emu):
            stmt = Background(client, GATED)
            wait_for(lambda: waiting_at_gate(emu) == 1, "the statement waits at the gate")
            assert log_rows(emu, app) == [(False, None, None, None, "quickstart")]
            assert stmt.running
        stmt.join()
        assert stmt.error is None and stmt.rows == [(1, 0)]
        assert log_rows(emu, app) == [(True, "success", None, "standard", "quickstart")]
    finally:
        client.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_dropped_connection_ends_its_statement_as_aborted(emu: Emulator, driver: str) -> None:
    app = app_name()
    client = Client(emu, driver, app)
    try:
        with gate_closed(emu):
            stmt = Background(client, GATED)
            wait_for(lambda: waiting_at_gate(emu) == 1, "the statement waits at the gate")
            client.cut()
            stmt.join()
            assert stmt.error is not None
            wait_for(lambda: log_rows(emu, app) != [(False, None, None, None, "quickstart")],
                     "the statement's end is logged")  # fmt: skip
            assert log_rows(emu, app) == [(True, "aborted", None, None, "quickstart")]
            # Its PostgreSQL backend was stopped, not left waiting to finish.
            wait_for(lambda: waiting_at_gate(emu) == 0, "the backend stops waiting")
    finally:
        client.close()


def send_cancel_request(emu: Emulator, pid: int) -> None:
    """A CancelRequest over its own socket, as libpq sends it. (libpq's own cancel holds the GIL
    while it waits, which would stall the in-process emulator; the key is read from it.)"""
    key = next(s.key for s in list(emu.server._sessions) if s.pid == pid)
    with socket.create_connection(("127.0.0.1", emu.port)) as sock:
        sock.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
        sock.recv(1)  # the server closes it once the cancel was passed on


# Replica-targeted statements when the replica goes -------------------------------------------


def _cluster_with_one_replica(emu: Emulator, name: str) -> None:
    emu.execute(f"CREATE CLUSTER {name} REPLICAS (r1 (SIZE '25cc'))")


@pytest.mark.parametrize("driver", DRIVERS)
def test_targeted_peek_fails_when_its_replica_is_dropped_untargeted_survives(
    emu: Emulator, driver: str
) -> None:
    cluster = f"c_{uuid.uuid4().hex[:8]}"
    _cluster_with_one_replica(emu, cluster)
    app_t, app_u = app_name(), app_name()
    targeted, untargeted = Client(emu, driver, app_t), Client(emu, driver, app_u)
    try:
        targeted.run(f"SET cluster = {cluster}")
        targeted.run("SET cluster_replica = r1")
        untargeted.run(f"SET cluster = {cluster}")
        with gate_closed(emu):
            t_stmt = Background(targeted, GATED)
            u_stmt = Background(untargeted, GATED)
            wait_for(lambda: waiting_at_gate(emu) == 2, "both statements wait at the gate")
            emu.execute(f"DROP CLUSTER REPLICA {cluster}.r1")  # its last replica
            t_stmt.join()
            assert TARGET_FAILED in str(t_stmt.error)
            # The untargeted one is still running, only the targeted one was stopped.
            assert u_stmt.running and waiting_at_gate(emu) == 1
            # A new query on the cluster, now without replicas, fails at once.
            fresh = Client(emu, driver, app_name())
            try:
                fresh.run(f"SET cluster = {cluster}")
                with pytest.raises(Exception, match="has no replicas available"):
                    fresh.run("SELECT count(*) FROM gated")
            finally:
                fresh.close()
        u_stmt.join()
        assert u_stmt.error is None and u_stmt.rows == [(1, 0)]
        assert log_rows(emu, app_t)[-1] == (True, "error", TARGET_FAILED, None, cluster)
        assert log_rows(emu, app_u)[-1] == (True, "success", None, "standard", cluster)
        # The session is usable afterwards.
        assert targeted.run("SELECT 1") == [(1,)]
    finally:
        targeted.close()
        untargeted.close()
        emu.execute(f"DROP CLUSTER IF EXISTS {cluster} CASCADE")


@pytest.mark.parametrize(
    "drop",
    [
        "ALTER CLUSTER {c} SET (REPLICATION FACTOR 0)",
        "DROP CLUSTER {c} CASCADE",
        "ALTER CLUSTER {c} SET (SIZE '50cc')",  # r1 is replaced by a new replica
    ],
)
def test_targeted_peek_fails_on_every_way_its_replica_goes(emu: Emulator, drop: str) -> None:
    cluster = f"c_{uuid.uuid4().hex[:8]}"
    emu.execute(f"CREATE CLUSTER {cluster} (SIZE '25cc', REPLICATION FACTOR 1)")
    app = app_name()
    client = Client(emu, "psycopg", app)
    try:
        client.run(f"SET cluster = {cluster}")
        client.run("SET cluster_replica = r1")
        with gate_closed(emu):
            stmt = Background(client, GATED)
            wait_for(lambda: waiting_at_gate(emu) == 1, "the statement waits at the gate")
            emu.execute(drop.format(c=cluster))
            stmt.join()
        assert TARGET_FAILED in str(stmt.error)
        assert log_rows(emu, app)[-1][:3] == (True, "error", TARGET_FAILED)
    finally:
        client.close()
        emu.execute(f"DROP CLUSTER IF EXISTS {cluster} CASCADE")


@pytest.mark.parametrize("driver", DRIVERS)
def test_target_replica_must_exist(emu: Emulator, driver: str) -> None:
    client = Client(emu, driver, app_name())
    try:
        client.run("SET cluster_replica = r9")
        assert client.run("SHOW cluster_replica") == [("r9",)]
        with pytest.raises(Exception, match="unknown cluster replica 'r9'"):
            client.run("SELECT count(*) FROM gated")
        client.run("RESET cluster_replica")
        assert client.run("SHOW cluster_replica") == [("",)]
        assert client.run("SELECT count(*) FROM gated") == [(1,)]
    finally:
        client.close()


def test_a_user_cancel_is_not_reported_as_a_lost_replica(emu: Emulator) -> None:
    """Only cancellations the emulator caused become Materialize's error."""
    client = Client(emu, "psycopg", app_name())
    try:
        client.run("SET cluster_replica = r1")
        with gate_closed(emu):
            stmt = Background(client, GATED)
            wait_for(lambda: waiting_at_gate(emu) == 1, "the statement waits at the gate")
            send_cancel_request(emu, client.conn.info.backend_pid)
            stmt.join()
        assert isinstance(stmt.error, psycopg.errors.QueryCanceled)
        assert TARGET_FAILED not in str(stmt.error)
    finally:
        client.close()
