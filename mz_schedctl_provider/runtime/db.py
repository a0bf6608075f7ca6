"""One connection to Materialize, whichever driver made it (psycopg 3 under Airflow 3 and the
CLI, psycopg2 under Airflow 2.11), in autocommit, counting the statements it sends."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import conninfo

APPLICATION_NAME = "mz-schedctl"
# Server side: Materialize's statement_timeout for every controller session, unless the
# connection says otherwise (0 turns it off). The controller's statements take milliseconds.
DEFAULT_STATEMENT_TIMEOUT_S = 120.0
# Client side: no answer within the server's timeout plus this grace means the server (or the
# network between) is not answering at all; the connection is then closed.
CLIENT_TIMEOUT_GRACE_S = 30.0
DEFAULT_CLIENT_TIMEOUT_S = DEFAULT_STATEMENT_TIMEOUT_S + CLIENT_TIMEOUT_GRACE_S


class DatabaseError(Exception):
    """A statement failed; ``sqlstate`` is Materialize's code when it sent one."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


# Materialize's (and PostgreSQL's) "relation does not exist": the controller's tables are not
# there yet (a first run, a dry run before init).
UNDEFINED_TABLE = "42P01"


def is_missing_table(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseError) and exc.sqlstate == UNDEFINED_TABLE


class ConnectionLost(DatabaseError):
    """The connection broke: whether the last statement ran is unknown."""


class NoAnswer(ConnectionLost):
    """A statement got no answer within the client-side bound; the connection was closed."""


class Database:
    """A DB-API connection used the way Materialize wants it: one statement per transaction.

    :param conn: an open psycopg 3 or psycopg2 connection; it is switched to autocommit.
    """

    def __init__(self, conn: Any, *, client_timeout_s: float | None = None) -> None:
        conn.autocommit = True
        self.conn = conn
        self.statements = 0
        # Waits for the server: one per statement, one per pipeline of several.
        self.round_trips = 0
        self._pipeline: Any = None
        # Every statement's answer is awaited at most this long (None or 0: forever).
        self.client_timeout_s = (
            DEFAULT_CLIENT_TIMEOUT_S if client_timeout_s is None else client_timeout_s
        )

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        cluster: str | None = None,
        application_name: str = APPLICATION_NAME,
        statement_timeout_s: float | None = DEFAULT_STATEMENT_TIMEOUT_S,
        client_timeout_s: float | None = None,
        connect_timeout_s: int = 10,
    ) -> Database:
        """Open a psycopg 3 connection tagged with our application name (so our own statements
        are not mistaken for user activity), with both bounds on every statement."""
        options = []
        if cluster:
            options.append(f"-c cluster={escape_option(cluster)}")
        if statement_timeout_s:
            options.append(f"-c statement_timeout={int(statement_timeout_s * 1000)}")
        kwargs: dict[str, Any] = {"application_name": application_name}
        if options:
            kwargs["options"] = " ".join(options)
        try:
            conn = psycopg.connect(url, connect_timeout=connect_timeout_s, **kwargs)
        except psycopg.Error as exc:
            # libpq quotes the piece of the URL it could not parse, which may be the password
            # (a bad percent-escape, a space): never let it into an exception text or a log.
            message = _redact(_clean(exc), url)
            raise ConnectionLost(message, sqlstate=getattr(exc, "sqlstate", None)) from None
        if client_timeout_s is None:
            client_timeout_s = client_timeout_for(statement_timeout_s)
        return cls(conn, client_timeout_s=client_timeout_s)

    def query(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        *,
        purpose: str | None = None,
        timeout_s: float | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (none for statements without a result).

        :param purpose: what the statement is for, named in the error if it gets no answer.
        :param timeout_s: this statement's client-side bound instead of the connection's.
        """
        cur = self._run(sql, params, purpose=purpose, timeout_s=timeout_s)
        try:
            return [tuple(row) for row in cur.fetchall()] if cur.description else []
        finally:
            cur.close()

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        *,
        purpose: str | None = None,
        timeout_s: float | None = None,
    ) -> int:
        """Run one statement; returns its row count (``purpose``, ``timeout_s``: as query)."""
        cur = self._run(sql, params, purpose=purpose, timeout_s=timeout_s)
        try:
            return int(cur.rowcount)
        finally:
            cur.close()

    def _run(
        self,
        sql: str,
        params: Sequence[Any] | None,
        *,
        purpose: str | None,
        timeout_s: float | None,
    ) -> Any:
        self.statements += 1
        if self._pipeline is None:
            self.round_trips += 1
        try:
            # Inside the try: on a connection already known to be broken, cursor() itself
            # raises the driver's error, which must become ConnectionLost like any other.
            cur = self.conn.cursor()
        except Exception as exc:
            raise _translate(exc) from None
        if self._pipeline is not None:
            # Queued and sent without waiting: the pipeline's sync waits, under the watchdog.
            try:
                cur.execute(sql, params)
            except Exception as exc:
                raise _translate(exc) from None
            return cur
        bound = self._bound(timeout_s)
        watchdog = _Watchdog(self.conn, bound) if bound and bound > 0 else None
        try:
            cur.execute(sql, params)
        except Exception as exc:
            cur.close()
            if watchdog is not None and watchdog.fired:
                raise NoAnswer(
                    f"no answer from Materialize within {bound:g} s to "
                    f"{purpose or _gist(sql)}; the connection was closed (the connection "
                    "extra client_timeout sets this bound, statement_timeout the server's)"
                ) from None
            raise _translate(exc) from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
        return cur

    def _bound(self, timeout_s: float | None) -> float | None:
        return self.client_timeout_s if timeout_s is None else timeout_s

    @property
    def pipelines(self) -> bool:
        """Whether statements can share a round trip: psycopg 3's pipeline mode (psycopg2 has
        none). The Sync between statements is psycopg's own, not public API: without it, no
        pipeline (every statement waits for its answer)."""
        pipeline = getattr(psycopg, "Pipeline", None)
        return (
            isinstance(self.conn, psycopg.Connection)
            and pipeline is not None
            and pipeline.is_supported()
            and hasattr(pipeline, "_enqueue_sync")
        )

    def execute_then_query(
        self,
        sql: str,
        params: Sequence[Any] | None,
        then: str,
        then_params: Sequence[Any] | None,
        *,
        purpose: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[int, list[tuple[Any, ...]] | None]:
        """Run a statement, then a read, in one round trip where the driver allows it. Each is
        its own transaction (a Sync after each), as if sent alone: a DDL never shares one.

        :returns: the statement's row count and the read's rows, None when the read failed
            (the caller reads again if it needs them).
        :raises DatabaseError: the statement failed (ConnectionLost: it may have run), as
            :meth:`execute` raises.
        """
        if not self.pipelines:
            count = self.execute(sql, params, purpose=purpose, timeout_s=timeout_s)
            try:
                return count, self.query(then, then_params, purpose=purpose)
            except DatabaseError:
                return count, None  # a broken connection shows at the next statement
        return self._pipelined(sql, params, then, then_params, purpose, timeout_s)

    def _pipelined(
        self,
        sql: str,
        params: Sequence[Any] | None,
        then: str,
        then_params: Sequence[Any] | None,
        purpose: str | None,
        timeout_s: float | None,
    ) -> tuple[int, list[tuple[Any, ...]] | None]:
        first: Any = None
        second: Any = None
        failure: Exception | None = None
        bound = self._bound(timeout_s)
        watchdog: _Watchdog | None = None
        self.round_trips += 1
        try:
            # Leaving the block sends the last Sync and waits for every answer: one round trip
            # (an explicit sync() first would wait once more for the empty exit).
            with self.conn.pipeline() as pipeline:
                self._pipeline = pipeline
                try:
                    first = self._run(sql, params, purpose=purpose, timeout_s=timeout_s)
                    pipeline._enqueue_sync()
                    second = self._run(then, then_params, purpose=purpose, timeout_s=None)
                    watchdog = _Watchdog(self.conn, bound) if bound and bound > 0 else None
                except Exception as exc:  # an earlier answer's error, seen while sending
                    failure = exc
                finally:
                    self._pipeline = None
        except Exception as exc:  # the statement's or the read's error, from the last Sync
            failure = failure or exc
        finally:
            if watchdog is not None:
                watchdog.cancel()
        ran = first is not None and first.pgresult is not None
        if not ran:
            for cur in (first, second):
                if cur is not None:
                    cur.close()
            if watchdog is not None and watchdog.fired:
                raise NoAnswer(
                    f"no answer from Materialize within {bound:g} s to "
                    f"{purpose or _gist(sql)}; the connection was closed"
                )
            if isinstance(failure, DatabaseError):
                raise failure
            raise (
                _translate(failure)
                if failure is not None
                else ConnectionLost(f"no answer to {purpose or _gist(sql)}")
            )
        count = int(first.rowcount)
        first.close()
        rows: list[tuple[Any, ...]] | None = None
        try:
            if second is not None and second.pgresult is not None:
                rows = [tuple(r) for r in second.fetchall()] if second.description else []
        except Exception:
            rows = None
        finally:
            if second is not None:
                second.close()
        return count, rows

    def close(self) -> None:
        # Closing a broken connection may fail; there is nothing left to do then.
        with contextlib.suppress(Exception):
            self.conn.close()


def client_timeout_for(statement_timeout_s: float | None) -> float:
    """The client-side bound that lets the server's own timeout answer first."""
    if not statement_timeout_s:
        return DEFAULT_CLIENT_TIMEOUT_S
    return statement_timeout_s + CLIENT_TIMEOUT_GRACE_S


class _Watchdog:
    """Closes the connection's socket if a statement's answer takes longer than the bound, so
    the driver's blocking read ends (a hung server or network otherwise waits forever: libpq
    has no read timeout, and keepalives only notice a peer that is gone)."""

    def __init__(self, conn: Any, seconds: float) -> None:
        self.fired = False
        self._conn = conn
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        fd = _socket_fd(self._conn)
        if fd is None or fd < 0:
            return
        self.fired = True
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=os.dup(fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()


def _socket_fd(conn: Any) -> int | None:
    """The connection's socket, psycopg 3 or psycopg2."""
    with contextlib.suppress(Exception):
        pgconn = getattr(conn, "pgconn", None)
        if pgconn is not None:
            return int(pgconn.socket)
        return int(conn.fileno())
    return None


def _gist(sql: str) -> str:
    text = " ".join(sql.split())
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _translate(exc: Exception) -> Exception:
    """Both drivers' errors as ours, keeping Materialize's message and SQLSTATE."""
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    module = type(exc).__module__
    if not (module.startswith("psycopg") or module.startswith("psycopg2")):
        return exc
    if type(exc).__name__ in ("OperationalError", "InterfaceError") and not sqlstate:
        return ConnectionLost(_clean(exc))
    return DatabaseError(_clean(exc), sqlstate=sqlstate)


def _clean(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.removeprefix("ERROR:").strip()


def _secrets_of(url: str) -> set[str]:
    """The password of a connection string, however malformed, raw and percent-decoded."""
    found: set[str] = set()
    with contextlib.suppress(Exception):
        password = conninfo.conninfo_to_dict(url).get("password")
        if password:
            found.add(str(password))
    # A URL's userinfo (user:password@), and key=value strings' password=..., by hand:
    # exactly the strings libpq fails to parse are the ones that leak.
    for pattern in (r"://[^/@]*?:(.*)@", r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)"):
        for match in re.finditer(pattern, url):
            raw = match.group(1).strip("'")
            if raw:
                found.update({raw, urllib.parse.unquote(raw)})
    return found


def _redact(message: str, url: str) -> str:
    for secret in sorted(_secrets_of(url), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def escape_option(value: str) -> str:
    """A value for libpq's ``options`` setting (``-c name=value``)."""
    # libpq's options parameter splits on spaces; backslash keeps a space inside a value.
    return value.replace("\\", "\\\\").replace(" ", "\\ ")
