"""One connection to Materialize, whichever driver made it (psycopg 3 under Airflow 3 and the
CLI, psycopg2 under Airflow 2.11), in autocommit, counting the statements it sends."""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import conninfo

APPLICATION_NAME = "mz-schedctl"


class DatabaseError(Exception):
    """A statement failed; ``sqlstate`` is Materialize's code when it sent one."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class ConnectionLost(DatabaseError):
    """The connection broke: whether the last statement ran is unknown."""


class Database:
    """A DB-API connection used the way Materialize wants it: one statement per transaction.

    :param conn: an open psycopg 3 or psycopg2 connection; it is switched to autocommit.
    """

    def __init__(self, conn: Any) -> None:
        conn.autocommit = True
        self.conn = conn
        self.statements = 0

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        cluster: str | None = None,
        application_name: str = APPLICATION_NAME,
        statement_timeout_s: float | None = None,
        connect_timeout_s: int = 10,
    ) -> Database:
        """Open a psycopg 3 connection tagged with our application name (so our own statements
        are not mistaken for user activity)."""
        options = []
        if cluster:
            options.append(f"-c cluster={_escape_option(cluster)}")
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
        return cls(conn)

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (none for statements without a result)."""
        cur = self._run(sql, params)
        try:
            return [tuple(row) for row in cur.fetchall()] if cur.description else []
        finally:
            cur.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; returns its row count."""
        cur = self._run(sql, params)
        try:
            return int(cur.rowcount)
        finally:
            cur.close()

    def _run(self, sql: str, params: Sequence[Any] | None) -> Any:
        self.statements += 1
        try:
            # Inside the try: on a connection already known to be broken, cursor() itself
            # raises the driver's error, which must become ConnectionLost like any other.
            cur = self.conn.cursor()
        except Exception as exc:
            raise _translate(exc) from None
        try:
            cur.execute(sql, params)
        except Exception as exc:
            cur.close()
            raise _translate(exc) from None
        return cur

    def close(self) -> None:
        # Closing a broken connection may fail; there is nothing left to do then.
        with contextlib.suppress(Exception):
            self.conn.close()


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


def _escape_option(value: str) -> str:
    # libpq's options parameter splits on spaces; backslash keeps a space inside a value.
    return value.replace("\\", "\\\\").replace(" ", "\\ ")
