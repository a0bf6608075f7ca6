"""Replica-targeted statements (``SET cluster_replica = r``) and what becomes of them when
their replica goes.

Materialize's compute controller, when a replica is removed, fails the peeks and SUBSCRIBEs
that targeted it with ``target replica failed or was dropped`` (``ERROR_TARGET_REPLICA_FAILED``
in src/compute-client/src/controller/error.rs, raised by ``remove_replica`` in
src/compute-client/src/controller/instance.rs); untargeted ones stay pending for the cluster's
other or next replica. The emulator runs every statement in PostgreSQL, so it keeps which
session has a targeted statement in flight; after DDL that may have dropped replicas it
cancels the PostgreSQL backend of those whose replica is gone, and the session's relay turns
the cancellation into Materialize's error.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import psycopg

from mz_schedctl_provider.emulator import protocol as pw

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.postgres import Backend

log = logging.getLogger(__name__)

TARGET_FAILED = "target replica failed or was dropped"
# SQLSTATE of PostgreSQL's cancellation, the only error a lost target may replace.
_CANCELED = "57014"


class TargetedStatements:
    """Sessions with a replica-targeted statement in flight, by the replica's id."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._running: dict[Any, str] = {}  # session -> target replica id
        self._lost: set[Any] = set()  # sessions whose backend was cancelled for that reason
        # Targeted subscriptions, waiting in the proxy rather than in PostgreSQL:
        # (session, cursor name or "" for a plain SUBSCRIBE) -> target replica id.
        self._watched: dict[tuple[Any, str], str] = {}

    def watch(self, session: Any, key: str, replica_id: str) -> None:
        """A subscription of ``session`` follows ``replica_id`` until ``unwatch``."""
        with self._lock:
            self._watched[(session, key)] = replica_id

    def unwatch(self, session: Any, key: str | None = None) -> None:
        """Stop following one subscription of the session, or all of them (key None)."""
        with self._lock:
            for item in [k for k in self._watched if k[0] is session]:
                if key is None or item[1] == key:
                    del self._watched[item]

    def note(self, session: Any, replica_id: str | None) -> None:
        """The session forwards a statement now: targeted at ``replica_id``, or not (None)."""
        with self._lock:
            if replica_id is None:
                self._running.pop(session, None)
            else:
                self._running[session] = replica_id

    def fail_lost(self) -> int:
        """Cancel targeted statements whose replica was dropped; returns how many. Free when
        none is in flight (the usual case), so it can run after every DDL."""
        with self._lock:
            if not self._running and not self._watched:
                return 0
            running = dict(self._running)
            watched = dict(self._watched)
        try:
            return self._cancel_lost(running, watched)
        except psycopg.Error:  # called after DDL that succeeded: never fail that statement
            log.warning("could not check replica-targeted statements", exc_info=True)
            return 0

    def _cancel_lost(self, running: dict[Any, str], watched: dict[tuple[Any, str], str]) -> int:
        with self._backend.connect_admin() as conn:
            live = {
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM mz_emulator.replicas WHERE id = ANY(%s) AND dropped_at IS NULL",
                    (sorted(set(running.values()) | set(watched.values())),),
                ).fetchall()
            }
            with self._lock:
                for (session, key), replica_id in watched.items():
                    if replica_id in live or self._watched.get((session, key)) != replica_id:
                        continue
                    del self._watched[(session, key)]
                    # The subscription sees it when it next waits or fetches (subscribe.py).
                    session.subscriptions.lost.add(key)
            doomed = []
            with self._lock:
                for session, replica_id in running.items():
                    if replica_id in live or self._running.get(session) != replica_id:
                        continue
                    del self._running[session]
                    self._lost.add(session)
                    doomed.append(session)
            for session in doomed:
                if session.backend_pid:
                    conn.execute("SELECT pg_cancel_backend(%s)", (session.backend_pid,))
        return len(doomed)

    def on_reply(self, session: Any, msg: pw.Message) -> pw.Message:
        """Called by the session's relay for each ErrorResponse and ReadyForQuery from
        PostgreSQL: a cancellation we caused becomes Materialize's error; ReadyForQuery ends the
        statement (its target no longer matters)."""
        if msg.type == b"Z":
            with self._lock:
                self._running.pop(session, None)
                self._lost.discard(session)
            return msg
        with self._lock:
            if session not in self._lost:
                return msg
            self._lost.discard(session)
        if pw.error_fields(msg.payload).get("C") != _CANCELED:
            return msg
        # Materialize reports it as an internal error (its SQLSTATE is unverified: XX000).
        encoded = pw.error_response(TARGET_FAILED, sqlstate="XX000")
        return pw.Message(b"E", encoded[5:])  # past the type byte and length

    def forget(self, session: Any) -> None:
        self.unwatch(session)
        with self._lock:
            self._running.pop(session, None)
            self._lost.discard(session)
