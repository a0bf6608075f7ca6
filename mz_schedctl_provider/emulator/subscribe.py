"""SUBSCRIBE, as Materialize delivers it over pgwire, for the session (``session.py``).

Followed: src/pgwire/src/protocol.rs of MaterializeInc/materialize (``send_execute_response``,
``send_rows``) and the docs pages sql/subscribe, sql/declare and sql/fetch.

- ``SUBSCRIBE [TO] <object | (query)> [WITH (SNAPSHOT [=] bool)]``: columns ``mz_timestamp``
  (numeric, milliseconds), ``mz_diff`` (int8), then the object's. The snapshot is the object's
  rows when it starts, consolidated (identical rows are one row whose mz_diff is their count).
  Later changes are **not** emulated: after the snapshot a subscription stays idle.
- Plain ``SUBSCRIBE``: a NOTICE that streaming needs a non-buffering client, the rows, and no
  CommandComplete: it runs until cancelled (57014, logged ``canceled``), until its targeted
  replica goes (XX000 ``target replica failed or was dropped``, logged ``error``) or until the
  client drops the connection, which Materialize logs as ``canceled`` too ("an error
  communicating with the connection ... we consider that to be a cancelation").
- ``COPY (SUBSCRIBE ...) TO STDOUT`` (``copy_rows``): CopyOutResponse, a CopyData per row in
  text format, and the same ends as the plain form (no NOTICE).
- ``DECLARE c CURSOR FOR SUBSCRIBE ...`` then ``FETCH [n | ALL] c [WITH (timeout = ...)]``:
  the SUBSCRIBE starts at the first FETCH (the cursor's portal executes then), is logged from
  there and retired when that first FETCH returns, as ``send_execute_response`` does. A FETCH
  without a timeout waits until at least one row is available (``ExecuteTimeout::WaitOnce``);
  with one it gathers rows until it has ``n`` or the timeout passed (``Seconds``).

The session's cluster must have a replica (0A000 otherwise, at once); with ``SET
cluster_replica`` the subscription follows its replica (``targets.py``).
"""

from __future__ import annotations

import re
import select
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psycopg

from mz_schedctl_provider.emulator import policy
from mz_schedctl_provider.emulator import protocol as pw
from mz_schedctl_provider.emulator.activity import LogEntry
from mz_schedctl_provider.emulator.ddl.common import Result
from mz_schedctl_provider.emulator.errors import MzError
from mz_schedctl_provider.emulator.targets import TARGET_FAILED

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.session import ClientSession

NUMERIC_OID = 1700
INT8_OID = 20
STREAMING_NOTICE = "streaming SUBSCRIBE rows directly requires a client that does not buffer output"
CANCELED = "canceling statement due to user request"
# How often a waiting subscription looks at its client socket and its wake-up reasons.
_POLL_S = 0.05
_RDHUP = getattr(select, "POLLRDHUP", 0x2000)  # Linux

_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_NAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}}"
_HEAD = re.compile(r"\s*SUBSCRIBE\s+(?:TO\s+)?", re.I)
_DECLARE = re.compile(rf"\s*DECLARE\s+({_IDENT})\s+CURSOR\s+(?:WITHOUT\s+HOLD\s+)?FOR\s+", re.I)
_FETCH = re.compile(
    rf"\s*FETCH\s+(?:FORWARD\s+)?(?:(ALL|\d+)\s+)?(?:(?:FROM|IN)\s+)?({_IDENT})"
    r"\s*(?:WITH\s*\(\s*TIMEOUT\s*=?\s*'([^']*)'\s*\))?\s*;?\s*",
    re.I,
)
_COPY = re.compile(r"\s*COPY\s*(?=\(\s*SUBSCRIBE\b)", re.I)
_COPY_TAIL = re.compile(
    r"\s*TO\s+STDOUT\s*(?:(?:WITH\s*)?\(\s*FORMAT\s*=?\s*TEXT\s*\))?\s*;?\s*", re.I
)
_CLOSE = re.compile(rf"\s*CLOSE\s+({_IDENT})\s*;?\s*", re.I)
_OPTION = re.compile(r"\s*(\w+)\s*(?:=\s*)?(\w+)?\s*", re.I)


@dataclass(frozen=True)
class Subscribe:
    relation: str  # the SELECT the snapshot reads
    snapshot: bool
    sql: str
    copy: bool = False  # COPY (SUBSCRIBE ...) TO STDOUT: rows as CopyData


@dataclass(frozen=True)
class Declare:
    cursor: str
    subscribe: Subscribe


@dataclass(frozen=True)
class Fetch:
    cursor: str
    count: int | None  # None: ALL
    timeout_s: float | None  # None: wait for at least one row


@dataclass(frozen=True)
class Close:
    cursor: str


Statement = Subscribe | Declare | Fetch | Close
STATEMENTS = (Subscribe, Declare, Fetch, Close)


@dataclass
class Cursor:
    """A declared subscription: started by its first FETCH, rows not yet fetched."""

    subscribe: Subscribe
    columns: list[tuple[str, int]]
    started: bool = False
    rows: deque[tuple[str | None, ...]] = field(default_factory=deque)


class Subscriptions:
    """A session's subscription state: its cursors and why a waiting one must stop."""

    def __init__(self) -> None:
        self.cursors: dict[str, Cursor] = {}
        self._lock = threading.Lock()
        self._waiting = False
        self._canceled = False
        self.lost: set[str] = set()  # cursors ("" for a plain SUBSCRIBE) whose replica went

    def cancel(self) -> bool:
        """A CancelRequest: stops a waiting subscription; False when none waits."""
        with self._lock:
            if not self._waiting:
                return False
            self._canceled = True
            return True

    def clear(self, session: ClientSession) -> None:
        """The transaction ended: Materialize drops its cursors with it."""
        if self.cursors:
            self.cursors.clear()
            self.lost.clear()
            session.server.targets.unwatch(session)


def _unquote(name: str) -> str:
    name = name.strip()
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name.lower()


def _matching_paren(text: str, start: int) -> int:
    """Index of the parenthesis closing the one at ``start`` (string literals skipped)."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                break
            i = end
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise MzError("unterminated parenthesis in SUBSCRIBE", sqlstate="42601")


def _parse_subscribe(sql: str, start: int) -> Subscribe:
    text = sql.rstrip().rstrip(";")
    rest = text[start:].lstrip()
    if rest.startswith("("):
        end = _matching_paren(rest, 0)
        relation = rest[1:end].strip()
        tail = rest[end + 1 :]
    else:
        m = re.match(_NAME, rest)
        if m is None:
            raise MzError("Expected a relation or a query after SUBSCRIBE", sqlstate="42601")
        relation = f"SELECT * FROM {m[0]}"
        tail = rest[m.end() :]
    snapshot = True
    tail = tail.strip()
    if tail[:4].upper() == "WITH":
        body = tail[4:].strip()
        if not body.startswith("("):
            raise MzError("Expected ( after WITH in SUBSCRIBE", sqlstate="42601")
        end = _matching_paren(body, 0)
        for item in body[1:end].split(","):
            opt = _OPTION.fullmatch(item)
            name = opt[1].upper() if opt else item.strip()
            if opt is None or name != "SNAPSHOT":
                raise MzError(
                    f"emulator: SUBSCRIBE option {name} is not emulated", sqlstate="0A000"
                )
            snapshot = (opt[2] or "true").lower() not in ("false", "off", "0")
        tail = body[end + 1 :].strip()
    if tail:
        # AS OF, UP TO, ENVELOPE ...: real Materialize syntax the emulator does not model.
        raise MzError(
            f"emulator: SUBSCRIBE ... {tail.split()[0]} is not emulated", sqlstate="0A000"
        )
    return Subscribe(relation=relation, snapshot=snapshot, sql=sql)


def _parse_copy(sql: str, start: int) -> Subscribe:
    end = _matching_paren(sql, start)
    inner = sql[start + 1 : end]
    head = _HEAD.match(inner)
    assert head is not None  # the lookahead of _COPY saw SUBSCRIBE
    sub = _parse_subscribe(inner, head.end())
    if _COPY_TAIL.fullmatch(sql[end + 1 :]) is None:
        raise MzError(
            "emulator: COPY (SUBSCRIBE ...) is emulated TO STDOUT in text format only",
            sqlstate="0A000",
        )
    return Subscribe(sub.relation, sub.snapshot, sql, copy=True)


def parse(sql: str, cursors: dict[str, Cursor]) -> Statement | None:
    """The subscription statement ``sql`` is, or None. FETCH and CLOSE are ours only for the
    session's subscription cursors; others go to PostgreSQL."""
    head = _HEAD.match(sql)
    if head is not None:
        return _parse_subscribe(sql, head.end())
    copy = _COPY.match(sql)
    if copy is not None:
        return _parse_copy(sql, copy.end())
    declare = _DECLARE.match(sql)
    if declare is not None:
        inner = _HEAD.match(sql, declare.end())
        if inner is None:
            return None
        sub = _parse_subscribe(sql, inner.end())
        text = sql[declare.end() :].strip().rstrip(";")
        return Declare(_unquote(declare[1]), Subscribe(sub.relation, sub.snapshot, text))
    fetch = _FETCH.fullmatch(sql)
    if fetch is not None and fetch[3] is not None and _unquote(fetch[2]) not in cursors:
        # WITH (timeout) is Materialize syntax: PostgreSQL would call it a syntax error.
        raise MzError(f'cursor "{_unquote(fetch[2])}" does not exist', sqlstate="34000")
    if fetch is not None and _unquote(fetch[2]) in cursors:
        count = None if (fetch[1] or "1").upper() == "ALL" else int(fetch[1] or "1")
        timeout = _seconds(fetch[3]) if fetch[3] is not None else None
        return Fetch(_unquote(fetch[2]), count, timeout)
    close = _CLOSE.fullmatch(sql)
    if close is not None and _unquote(close[1]) in cursors:
        return Close(_unquote(close[1]))
    return None


def _seconds(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|seconds?|min|minutes?)?\s*", text, re.I)
    if m is None:
        raise MzError(f'invalid input syntax for type interval: "{text}"', sqlstate="22007")
    unit = (m[2] or "s").lower()
    scale = 0.001 if unit == "ms" else 60.0 if unit.startswith("min") else 1.0
    return float(m[1]) * scale


# Running ---------------------------------------------------------------------------------------


def _db_error(exc: psycopg.Error) -> MzError:
    return MzError(str(exc).strip().splitlines()[0], sqlstate=exc.sqlstate or "XX000")


def _columns(session: ClientSession, sub: Subscribe) -> list[tuple[str, int]]:
    """The subscription's columns, from planning its query without running it."""
    analysis = policy.analyze(sub.relation)
    if analysis.error is not None:
        raise analysis.error
    try:
        cur = session.db.execute(f"SELECT * FROM ({analysis.sql}) AS s LIMIT 0")
    except psycopg.Error as exc:
        raise _db_error(exc) from None
    own = [(str(d.name), int(d.type_code)) for d in cur.description or []]
    return [("mz_timestamp", NUMERIC_OID), ("mz_diff", INT8_OID), *own]


def columns_of(session: ClientSession, stmt: Statement) -> list[tuple[str, int]] | None:
    """For Describe: the columns a statement returns, None if it returns none."""
    if isinstance(stmt, Subscribe):
        # A COPY describes as NoData (describe_rows in src/pgwire/src/protocol.rs).
        return None if stmt.copy else _columns(session, stmt)
    if isinstance(stmt, Fetch):
        return session.subscriptions.cursors[stmt.cursor].columns
    return None


def _snapshot(session: ClientSession, sub: Subscribe, width: int) -> list[tuple[str | None, ...]]:
    analysis = policy.analyze(sub.relation)
    assert analysis.error is None  # _columns refused it already
    group = ", ".join(str(i) for i in range(3, width + 1))
    sql = (
        "SELECT floor(extract(epoch FROM mz_emulator.now()) * 1000)::numeric,"
        f" count(*)::int8, s.* FROM ({analysis.sql}) AS s"
        + (f" GROUP BY {group}" if group else "")
        + ("" if sub.snapshot else " LIMIT 0")
    )
    try:
        cur = session.db.execute(sql, binary=False)
    except psycopg.Error as exc:
        raise _db_error(exc) from None
    result = cur.pgresult
    assert result is not None
    return [
        tuple(
            None if (v := result.get_value(r, c)) is None else bytes(v).decode()
            for c in range(result.nfields)
        )
        for r in range(result.ntuples)
    ]


def _start(session: ClientSession, sub: Subscribe, key: str) -> tuple[LogEntry | None, str | None]:
    """Place a starting subscription like a query; log it. Returns its entry and target."""
    session.server.settle(session.db)
    analysis = policy.analyze(sub.relation)
    placed = policy.Analysis(sub.sql, "read", True, False, False, None)
    if not analysis.needs_cluster and analysis.catalog_only:
        placed = analysis
    cluster_id, cluster_name, _, error = session._placement(placed)
    target = session._target_id
    entry = session._log_begin(sub.sql, cluster_id, cluster_name, None)
    if error is not None:
        session._finish(entry, "error", error=error.message)
        raise error
    if target is not None:
        session.server.targets.watch(session, key, target)
    return entry, target


def _wait(session: ClientSession, key: str, deadline: float | None) -> str | None:
    """Wait until the deadline (None: forever). Returns why it stopped early: ``canceled``,
    ``lost`` (the targeted replica went), ``closed`` (the client went); None at the deadline."""
    subs = session.subscriptions
    with subs._lock:
        subs._waiting = True
        subs._canceled = False
    # The peer's FIN, not its pending bytes: an extended-protocol client has already sent its
    # Sync, which the front thread reads once the subscription ended.
    poller = select.poll()
    poller.register(session.client.fileno(), _RDHUP | select.POLLHUP | select.POLLERR)
    try:
        while True:
            with subs._lock:
                if subs._canceled:
                    return "canceled"
            if key in subs.lost:
                return "lost"
            if session._closed:
                return "closed"
            left = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if left <= 0:
                return None
            if poller.poll(left * 1000):
                return "closed"
    finally:
        with subs._lock:
            subs._waiting = False
            subs._canceled = False


def _stop(session: ClientSession, why: str, entries: list[LogEntry | None]) -> None:
    """End a subscription that was waiting: log it (and the FETCH that waited), tell the
    client, keep the session's transaction state honest."""
    if why == "closed":
        # Materialize: "an error communicating with the connection ... a cancelation".
        for entry in entries:
            session._finish(entry, "canceled")
        session.close()
        raise pw.ConnectionClosed
    if why == "canceled":
        for entry in entries:
            session._finish(entry, "canceled")
        session._refuse(MzError(CANCELED, sqlstate="57014"), None)
    else:
        for entry in entries:
            session._finish(entry, "error", error=TARGET_FAILED)
        session._refuse(MzError(TARGET_FAILED, sqlstate="XX000"), None)


def run_plain(session: ClientSession, sub: Subscribe, *, describe: bool) -> None:
    """A plain SUBSCRIBE: everything is sent from here; it never completes."""
    cols = _columns(session, sub)
    entry, _ = _start(session, sub, "")
    if sub.copy:
        # copy_rows: CopyOutResponse, one CopyData per row, CopyDone only if it ended.
        out = pw.copy_out_response(len(cols))
    else:
        out = pw.notice_response(STREAMING_NOTICE, sqlstate="01000")
    if describe and not sub.copy:
        out += pw.row_description_typed(cols)
    try:
        rows = _snapshot(session, sub, len(cols))
    except MzError as exc:
        session._finish(entry, "error", error=exc.message)
        raise
    if sub.copy:
        out += b"".join(pw.copy_data(copy_text(r)) for r in rows)
    else:
        out += b"".join(pw.data_row(r) for r in rows)
    session._send(out)
    try:
        why = _wait(session, "", None)
        assert why is not None
        _stop(session, why, [entry])
    finally:
        session.server.targets.unwatch(session, "")
        session.subscriptions.lost.discard("")


_COPY_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)


def copy_text(row: tuple[str | None, ...]) -> bytes:
    """One row in COPY's text format: tab-separated, NULL as \\N, special bytes escaped."""
    fields = ("\\N" if v is None else v.translate(_COPY_ESCAPES) for v in row)
    return ("\t".join(fields) + "\n").encode()


def run(
    session: ClientSession, stmt: Statement, outer: LogEntry | None, *, describe: bool
) -> Result | None:
    """Run a subscription statement; None when it answered the client itself (an error)."""
    subs = session.subscriptions
    if isinstance(stmt, Subscribe):
        run_plain(session, stmt, describe=describe)
        return None
    if isinstance(stmt, Declare):
        cols = _columns(session, stmt.subscribe)
        if session.txn.in_block or session.txn.in_group:
            # Outside a transaction the cursor would end with the statement's own one.
            subs.cursors[stmt.cursor] = Cursor(stmt.subscribe, cols)
        return Result(tag="DECLARE CURSOR")
    if isinstance(stmt, Close):
        subs.cursors.pop(stmt.cursor, None)
        session.server.targets.unwatch(session, stmt.cursor)
        subs.lost.discard(stmt.cursor)
        return Result(tag="CLOSE CURSOR")
    return _fetch(session, stmt, outer)


def _fetch(session: ClientSession, stmt: Fetch, outer: LogEntry | None) -> Result | None:
    cursor = session.subscriptions.cursors[stmt.cursor]
    entry = None
    if not cursor.started:
        entry, _ = _start(session, cursor.subscribe, stmt.cursor)
        cursor.started = True
        try:
            cursor.rows.extend(_snapshot(session, cursor.subscribe, len(cursor.columns)))
        except MzError as exc:
            session._finish(entry, "error", error=exc.message)
            raise
    want = stmt.count
    deadline = None if stmt.timeout_s is None else time.monotonic() + stmt.timeout_s
    why: str | None = None
    if stmt.cursor in session.subscriptions.lost:
        why = "lost"
    elif cursor.rows and (want is None or len(cursor.rows) < want) and deadline is not None:
        why = _wait(session, stmt.cursor, deadline)  # no new rows come: wait out the timeout
    elif not cursor.rows and want != 0:
        why = _wait(session, stmt.cursor, deadline)
    if why is not None:
        _stop(session, why, [entry, outer])
        return None
    n = len(cursor.rows) if want is None else min(want, len(cursor.rows))
    rows = [cursor.rows.popleft() for _ in range(n)]
    session._finish(entry, "success", rows=n)
    return Result(
        tag=f"FETCH {n}",
        columns=[c for c, _ in cursor.columns],
        rows=rows,
        types=[t for _, t in cursor.columns],
    )
