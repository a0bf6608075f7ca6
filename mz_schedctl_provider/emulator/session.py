"""One client connection: relays ordinary SQL to PostgreSQL and answers Materialize-only
statements itself, applying Materialize's transaction rules, statement logging and faults.

Two threads serve a connection. The front thread reads the client and decides, message by
message, whether to forward it or answer it; the relay thread reads PostgreSQL's replies and
passes them on in order, matching each to the request that caused it (the ``_pending`` queue).
Before the front thread answers anything itself it waits until every forwarded request has been
answered, so the client always sees replies in the order it asked.

This module holds the lifecycle, the front thread and the simple query protocol; the other jobs
are units of their own: start-up (``startup``), the extended protocol (``extended``), the relay
thread (``relay``), Materialize's transaction rules (``txnrules``), the fault gate
(``faultgate``) and SUBSCRIBE (``subscribe``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

import psycopg

from mz_schedctl_provider.emulator import faultgate, policy, statements, subscribe, txnrules
from mz_schedctl_provider.emulator import protocol as pw
from mz_schedctl_provider.emulator.activity import LogEntry
from mz_schedctl_provider.emulator.errors import MzError
from mz_schedctl_provider.emulator.extended import ExtendedQuery, Portal, Prepared
from mz_schedctl_provider.emulator.faultgate import Outcome
from mz_schedctl_provider.emulator.relay import Pending, Relay
from mz_schedctl_provider.emulator.startup import Startup
from mz_schedctl_provider.emulator.txnrules import aborted_transaction, mz_class

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.server import EmulatorServer

log = logging.getLogger(__name__)


class ClientSession(Startup, ExtendedQuery, Relay):
    """Serves one client connection until it closes."""

    def __init__(self, server: EmulatorServer, client: socket.socket) -> None:
        self.server = server
        self.client = client
        self.id = uuid.uuid4()
        self.user = "materialize"
        self.application_name = ""
        # statement_timeout from the startup options (seconds), for `delay` faults only.
        self.statement_timeout_s: float | None = None
        self.vars: dict[str, str] = {"cluster": "quickstart"}
        self.pid = secrets.randbelow(2**31 - 1) + 1
        self.key = secrets.randbelow(2**31 - 1)
        self._backend: socket.socket | None = None
        self._backend_conn: Any = None
        self.backend_pid = 0
        self._db: psycopg.Connection[Any] | None = None
        self._wlock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: deque[Pending] = deque()
        self._backend_status = b"I"
        # PostgreSQL answered an extended-protocol message with an error and now discards
        # every message up to the next Sync the proxy forwards: they get no reply at all.
        self._skipping = False
        self._skip_error: str | None = None  # the error, until a discarded statement logs it
        self._backend_failed_last = False  # the last forwarded simple query failed
        self._dropping = False
        self._closed = False
        self._skip_to_sync = False
        self._prepared: dict[str, Prepared] = {}
        self._portals: dict[str, Portal] = {}
        self.txn = txnrules.Transaction()
        self._target_id: str | None = None  # replica the statement being placed targets
        self.subscriptions = subscribe.Subscriptions()

    # Lifecycle -------------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            if self._handshake():
                relay = threading.Thread(target=self._relay, name="mz-emulator-relay", daemon=True)
                relay.start()
                self._front()
        except (pw.ConnectionClosed, OSError):
            pass
        except Exception:  # a bug here must not take the whole emulator down
            log.exception("emulator session failed")
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._cond:
            # Statements still running when the connection goes end as `aborted`.
            running = [e for item in self._pending for e in item.logs if e is not None]
            in_flight = bool(self._pending)
            self._cond.notify_all()
        self._abort(running, in_flight)
        for sock in (self.client, self._backend):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        if self._backend_conn is not None:
            # Best effort: the socket under it is already closed.
            with contextlib.suppress(Exception):
                self._backend_conn.finish()
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
        self.server.forget(self)

    def _abort(self, running: list[LogEntry], in_flight: bool) -> None:
        """End what the connection was running: logged as aborted (before PostgreSQL can report
        the termination as an error), and the backend stopped rather than left to finish."""
        if not in_flight or self._db is None:
            return
        with contextlib.suppress(psycopg.Error):
            for entry in running:
                self._finish(entry, "aborted")
            if self.backend_pid:
                self.db.execute("SELECT pg_terminate_backend(%s)", (self.backend_pid,))

    @property
    def db(self) -> psycopg.Connection[Any]:
        """A superuser connection for catalog work and logging, opened on first use."""
        if self._db is None:
            self._db = self.server.backend.connect_admin()
        return self._db

    # Front thread ----------------------------------------------------------------------------

    def _front(self) -> None:
        while not self._closed:
            msg = pw.read_message(self.client)
            kind = msg.type
            if kind == b"X":
                return
            if self._skip_to_sync and kind != b"S":
                continue
            handler = _FRONT_HANDLERS.get(kind)
            if handler is None:
                self._forward(msg, None)  # CopyData, CopyDone, CopyFail and the like
            else:
                handler(self, msg)

    def _forward(self, msg: pw.Message | bytes, pending: Pending | None) -> None:
        raw = msg if isinstance(msg, bytes) else msg.encode()
        discarded = None
        if pending is not None:
            with self._cond:
                if pending.kind == "sync":
                    # PostgreSQL stops discarding at this Sync: everything after it is answered.
                    self._skipping = False
                    self._pending.append(pending)
                elif self._skipping:
                    # PostgreSQL will discard this message without a reply: waiting for one
                    # would hang the session (the relay already passed the error on).
                    discarded = pending
                else:
                    self._pending.append(pending)
        assert self._backend is not None
        self._backend.sendall(raw)
        if discarded is not None:
            # Only this thread reads _skip_error while PostgreSQL discards: the relay sets it
            # again only after a new error, which needs the Sync forwarded first.
            self._skip_error = self._skipped(discarded, error=self._skip_error)

    def _drain(self) -> None:
        """Wait until PostgreSQL answered everything forwarded so far."""
        self._forward(pw.Message(b"H", b""), None)
        with self._cond:
            while self._pending and not self._closed:
                self._cond.wait(0.5)
        if self._closed:
            raise pw.ConnectionClosed

    def _send(self, data: bytes) -> None:
        with self._wlock:
            self.client.sendall(data)

    def _fatal(self, message: str, sqlstate: str) -> None:
        self._send(pw.error_response(message, sqlstate=sqlstate, severity="FATAL"))

    # Simple query ----------------------------------------------------------------------------

    def _on_query(self, msg: pw.Message) -> None:
        text, _ = pw.cstring(msg.payload)
        parts = policy.split(text)
        if not parts:
            self._forward(msg, Pending("query"))
            return
        prepared = [self._prepare(sql) for sql in parts]
        if len(prepared) == 1:
            self._simple_one(prepared[0])
        else:
            self._simple_many(prepared)

    def _simple_one(self, prep: Prepared) -> None:
        if prep.mz is not None:
            self._drain()
            result = self._run_mz(prep, portal=None)
            if result is not None:
                self._send_result(result, describe=True)
            self._send(pw.ready_for_query(self._status_after()))
            return
        outcome = self._checks(prep)
        if outcome.drop_before:
            self.close()
            return
        if outcome.error is not None:
            self._drain()
            self._refuse(outcome.error, outcome.log)
            self._send(pw.ready_for_query(self._status_after()))
            return
        assert prep.analysis is not None
        pending = Pending(
            "query",
            logs=[outcome.log],
            drop_after=outcome.drop_after,
            marks_control=prep.analysis.calls_emulator,
        )
        self._forward(_query(prep.analysis.sql), pending)
        self._note_txn_words(prep.sql)

    def _simple_many(self, prepared: list[Prepared]) -> None:
        """Several statements in one query string: an implicit transaction, run one by one."""
        self._drain()
        refusal = self._group_refusal(prepared)
        if refusal is not None:
            # An implicit transaction fails as a whole: nothing of it may have run.
            self._refuse(refusal, None)
            self._send(pw.ready_for_query(self._status_after()))
            return
        self.txn.in_group = True
        try:
            for prep in prepared:
                if not self._group_step(prep):
                    break
        finally:
            self.txn.in_group = False
            if self.txn.end_implicit():
                self.subscriptions.clear(self)
        self._send(pw.ready_for_query(self._status_after()))

    def _group_refusal(self, prepared: list[Prepared]) -> MzError | None:
        """Materialize's transaction rules checked over a whole implicit transaction."""
        return self.txn.group_error([self._class_of(prep) for prep in prepared])

    def _class_of(self, prep: Prepared) -> str:
        if prep.mz is not None:
            return mz_class(prep.mz)
        assert prep.analysis is not None
        return prep.analysis.txn_class

    def _group_step(self, prep: Prepared) -> bool:
        if prep.mz is not None:
            result = self._run_mz(prep, portal=None)
            if result is None:
                return False
            self._send_result(result, describe=True)
            return True
        outcome = self._checks(prep)
        if outcome.drop_before:
            self.close()
            raise pw.ConnectionClosed
        if outcome.error is not None:
            self._refuse(outcome.error, outcome.log)
            return False
        assert prep.analysis is not None
        pending = Pending(
            "query",
            logs=[outcome.log],
            hide_ready=True,
            drop_after=outcome.drop_after,
            marks_control=prep.analysis.calls_emulator,
        )
        # Whether *this* statement failed: a failure of an earlier group must not stop this one.
        self._backend_failed_last = False
        self._forward(_query(prep.analysis.sql), pending)
        self._note_txn_words(prep.sql)
        self._drain()
        return not self._backend_failed_last

    # Running statements ----------------------------------------------------------------------

    def _prepare(self, sql: str) -> Prepared:
        try:
            mz = subscribe.parse(sql, self.subscriptions.cursors) or statements.parse(sql)
        except MzError as exc:
            return Prepared(sql, None, _refused(sql, exc))
        if mz is not None:
            return Prepared(sql, mz, None)
        return Prepared(sql, None, policy.analyze(sql))

    def _run_mz(self, prep: Prepared, *, portal: Portal | None) -> statements.Result | None:
        """Run a Materialize-only statement; on failure the error is sent and None returned."""
        cls = mz_class(prep.mz)
        fault = faultgate.take(self.server, prep.sql, self.db, calls_emulator=False)
        if fault is not None and fault.action == "drop_before":
            self.close()
            raise pw.ConnectionClosed
        failed = self.txn.failed(self._backend_status)
        error = aborted_transaction() if failed else self.txn.error(cls)
        error = faultgate.error_after(fault, error, self.statement_timeout_s)
        plain = isinstance(prep.mz, subscribe.Subscribe) and error is None
        # A plain SUBSCRIBE logs itself once placed on its cluster.
        entry = None if plain else self._log_begin(prep.sql, None, None, None)
        if error is not None:
            self._refuse(error, entry)
            return None
        if isinstance(prep.mz, subscribe.STATEMENTS):
            return self._run_subscription(prep.mz, entry, describe=portal is None)
        try:
            with self.server.ddl_lock:
                result = statements.execute(prep.mz, db=self.db, session=self)
        except MzError as exc:
            self._refuse(exc, entry)
            return None
        finally:
            self.server.mark_stale()
        self._finish(entry, "success", rows=len(result.rows))
        if fault is not None and fault.action == "drop_after":
            self.close()
            raise pw.ConnectionClosed
        return result

    def _run_subscription(
        self, stmt: subscribe.Statement, entry: LogEntry | None, *, describe: bool
    ) -> statements.Result | None:
        """SUBSCRIBE, DECLARE/FETCH/CLOSE of its cursors: no DDL lock, it may wait long."""
        try:
            result = subscribe.run(self, stmt, entry, describe=describe)
        except MzError as exc:
            self._refuse(exc, entry)
            return None
        if result is not None:
            self._finish(entry, "success", rows=len(result.rows))
        return result

    def _checks(self, prep: Prepared) -> Outcome:
        """The proxy's checks before forwarding an ordinary statement, and its log entry."""
        analysis = prep.analysis
        assert analysis is not None
        if analysis.error is not None:
            return Outcome(error=analysis.error, log=self._log_begin(prep.sql, None, None, None))
        fault = faultgate.take(
            self.server, prep.sql, self.db, calls_emulator=analysis.calls_emulator
        )
        if fault is not None and fault.action == "drop_before":
            return Outcome(drop_before=True)
        if analysis.txn_class == "read":
            self.server.settle(self.db)
        cluster_id, cluster_name, strategy, cluster_error = self._placement(analysis)
        entry = self._log_begin(prep.sql, cluster_id, cluster_name, strategy)
        error = self.txn.error(analysis.txn_class) or cluster_error
        error = faultgate.error_after(fault, error, self.statement_timeout_s)
        self.server.targets.note(self, self._target_id if error is None else None)
        return Outcome(
            error=error,
            log=entry,
            drop_after=fault is not None and fault.action == "drop_after",
        )

    def _placement(
        self, analysis: policy.Analysis
    ) -> tuple[str | None, str | None, str | None, MzError | None]:
        """Which cluster a statement runs on, as statement logging records it."""
        self._target_id = None
        if analysis.catalog_only:
            return "s2", "mz_catalog_server", "fast-path", None
        if analysis.txn_class != "read" and not analysis.needs_cluster:
            return None, None, None, None
        name = self.vars.get("cluster", "quickstart")
        row = self.db.execute(
            "SELECT c.id, (SELECT count(*) FROM mz_catalog.mz_cluster_replicas r"
            " WHERE r.cluster_id = c.id) FROM mz_catalog.mz_clusters c WHERE c.name = %s",
            (name,),
        ).fetchone()
        if not analysis.needs_cluster:
            return (row[0] if row else None), (name if row else None), "constant", None
        if row is None:
            return None, name, "standard", MzError(f"unknown cluster '{name}'", sqlstate="XX000")
        target = self.vars.get("cluster_replica")
        if target:
            # SET cluster_replica: the statement runs on that replica only (see targets.py).
            found = self.db.execute(
                "SELECT id FROM mz_catalog.mz_cluster_replicas WHERE cluster_id = %s AND name = %s",
                (row[0], target),
            ).fetchone()
            if found is None:
                error = MzError(f"unknown cluster replica '{target}'", sqlstate="XX000")
                return row[0], name, "standard", error
            self._target_id = str(found[0])
        if row[1] == 0:
            error = MzError(
                f'CLUSTER "{name}" has no replicas available to service request',
                sqlstate="0A000",
            )
            return row[0], name, "standard", error
        return row[0], name, "standard", None

    def _note_txn_words(self, sql: str) -> None:
        if self.txn.note_words(sql):
            self.subscriptions.clear(self)

    def _in_failed_block(self) -> bool:
        return self.txn.failed(self._backend_status)

    def _refuse(self, error: MzError, entry: LogEntry | None) -> None:
        """Send an error the proxy raised itself, keeping the transaction state honest.
        Callers have drained, so the backend's transaction status is current."""
        failed_block = self._in_failed_block()
        if failed_block:
            # Materialize checks for a failed transaction before anything else, as PostgreSQL.
            error = aborted_transaction()
        self._finish(entry, "error", error=str(error.message))
        self._send(
            pw.error_response(
                error.message, sqlstate=error.sqlstate, detail=error.detail, hint=error.hint
            )
        )
        if self.txn.in_block and not failed_block:
            self._forward(_query(txnrules.POISON.decode()), Pending("poison", swallow=True))
            self._drain()
        self._skip_to_sync = True

    def _status_after(self) -> bytes:
        self._skip_to_sync = False
        return self._backend_status

    def _send_result(self, result: statements.Result, *, describe: bool) -> None:
        out = b"".join(pw.notice_response(n) for n in result.notices)
        if result.columns and describe and result.types is not None:
            out += pw.row_description_typed(list(zip(result.columns, result.types, strict=True)))
        elif result.columns and describe:
            out += pw.row_description(result.columns)
        out += b"".join(pw.data_row(row) for row in result.rows)
        out += pw.command_complete(result.tag)
        self._send(out)

    def _log_begin(
        self, sql: str, cluster_id: str | None, cluster_name: str | None, strategy: str | None
    ) -> LogEntry | None:
        return self.server.log.begin(
            self.db,
            session_id=self.id,
            user=self.user,
            session_rate=self.vars.get("statement_logging_sample_rate", "0"),
            application_name=self.application_name,
            sql=sql,
            cluster_id=cluster_id,
            cluster_name=cluster_name,
            strategy=strategy,
        )

    def _finish(
        self,
        entry: LogEntry | None,
        status: str,
        *,
        error: str | None = None,
        rows: int | None = None,
    ) -> None:
        if entry is not None:
            self.server.log.finish(self.db, entry, status=status, error=error, rows=rows)


_FRONT_HANDLERS = {
    b"Q": ClientSession._on_query,
    b"P": ClientSession._on_parse,
    b"B": ClientSession._on_bind,
    b"D": ClientSession._on_describe,
    b"E": ClientSession._on_execute,
    b"C": ClientSession._on_close,
    b"S": ClientSession._on_sync,
    b"H": ClientSession._on_flush,
}


def _query(sql: str) -> bytes:
    return pw.Message(b"Q", sql.encode() + b"\0").encode()


def _refused(sql: str, error: MzError) -> policy.Analysis:
    return policy.Analysis(
        sql=sql,
        txn_class="single",
        needs_cluster=False,
        catalog_only=False,
        calls_emulator=False,
        error=error,
    )
