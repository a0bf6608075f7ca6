"""The relay thread of a session: reads PostgreSQL's replies and passes them on in order,
matching each to the forwarded request that caused it (``Pending``), ending their statement-log
entries and following PostgreSQL's skip-to-Sync after an error. Mixed into
``session.ClientSession``."""

from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mz_schedctl_provider.emulator import protocol as pw
from mz_schedctl_provider.emulator import txnrules
from mz_schedctl_provider.emulator.activity import LogEntry

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.server import EmulatorServer

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A forwarded request whose reply the relay thread still has to pass on."""

    kind: str  # parse bind describe execute close sync query poison
    logs: list[LogEntry | None] = field(default_factory=list)
    swallow: bool = False  # internal request: the client must not see its replies
    hide_ready: bool = False  # one statement of a split simple query: its Z is not the last
    drop_after: bool = False
    marks_control: bool = False  # calls mz_emulator.*: caches go stale once it ran


_TERMINAL: dict[str, tuple[bytes, ...]] = {
    "parse": (b"1",),
    "bind": (b"2",),
    "describe": (b"T", b"n"),
    "execute": (b"C", b"I", b"s"),
    "close": (b"3",),
}


def _rows_of(msg: pw.Message) -> int | None:
    if msg.type != b"C":
        return None
    tag, _ = pw.cstring(msg.payload)
    last = tag.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else None


class Relay:
    """The backend-to-client half of a client session."""

    if TYPE_CHECKING:  # provided by ClientSession
        server: EmulatorServer
        application_name: str
        txn: txnrules.Transaction
        _backend: socket.socket | None
        _cond: threading.Condition
        _pending: deque[Pending]
        _backend_status: bytes
        _skipping: bool
        _skip_error: str | None
        _backend_failed_last: bool
        _dropping: bool
        _closed: bool

        def close(self) -> None: ...
        def _send(self, data: bytes) -> None: ...
        def _finish(
            self,
            entry: LogEntry | None,
            status: str,
            *,
            error: str | None = None,
            rows: int | None = None,
        ) -> None: ...

    def _relay(self) -> None:
        try:
            assert self._backend is not None
            while not self._closed:
                self._relay_one(pw.read_message(self._backend))
        except (pw.ConnectionClosed, OSError):
            pass
        except Exception:
            log.exception("emulator relay failed")
        finally:
            self.close()

    def _relay_one(self, msg: pw.Message) -> None:
        if msg.type in (b"E", b"Z"):
            msg = self.server.targets.on_reply(self, msg)  # a dropped target replica's error
        kind = msg.type
        with self._cond:
            head = self._pending[0] if self._pending else None
        if kind == b"S":
            name, offset = pw.cstring(msg.payload)
            if name == "application_name":
                self.application_name, _ = pw.cstring(msg.payload, offset)
        if head is None or kind in (b"S", b"N", b"A"):
            if head is None or not head.swallow:
                self._pass_on(msg)
            return
        if kind == b"E":
            self._on_backend_error(head, msg)
            return
        done = _TERMINAL.get(head.kind, ())
        if kind in (b"C", b"I") and head.kind in ("query", "poison", "execute"):
            self._finish_next_log(head, "success", rows=_rows_of(msg))
        if kind == b"Z":
            self._on_ready(head, msg)
            return
        self._pass_on(msg, head)
        if kind in done:
            self._pop(head)

    def _on_backend_error(self, head: Pending, msg: pw.Message) -> None:
        fields = pw.error_fields(msg.payload)
        self._backend_failed_last = True
        if head.kind in ("query", "poison"):
            self._finish_next_log(head, "error", error=fields.get("M"))
            for _ in list(head.logs):
                self._finish_next_log(head, "aborted")
            self._pass_on(msg, head)
            return
        self._pass_on(msg, head)
        # PostgreSQL now discards every message up to the next Sync, so the requests queued
        # before it get no reply. Those the front thread forwards later, until it forwards a
        # Sync, are discarded there (`_forward`): the two are decided under the same lock.
        with self._cond:
            skipped = []
            while self._pending and self._pending[0].kind != "sync":
                skipped.append(self._pending.popleft())
            if not self._pending:
                self._skipping = True
                # No statement of the batch so far has a log entry to carry the error: the
                # first one the front thread discards will.
                logged = any(item.logs for item in skipped)
                self._skip_error = None if logged else fields.get("M")
            self._cond.notify_all()
        error = fields.get("M")
        for item in skipped:
            error = self._skipped(item, error=error)

    def _on_ready(self, head: Pending, msg: pw.Message) -> None:
        status = msg.payload[:1]
        self._backend_status = status
        if head.marks_control:
            # Before the client hears Ready: its next statement must see what the call armed.
            self.server.mark_stale()
        if not (head.swallow or head.hide_ready):
            self._pass_on(msg, head)
        with self._cond:
            if self._pending and self._pending[0] is head:
                self._pending.popleft()
            if not self._pending and status == b"I":
                self.txn.in_block = False
            if head.kind != "poison":
                self._backend_failed_last = self._backend_failed_last and head.hide_ready
            self._cond.notify_all()
        self._after_done(head)
        if self._dropping:
            self.close()

    def _pop(self, head: Pending) -> None:
        with self._cond:
            if self._pending and self._pending[0] is head:
                self._pending.popleft()
            self._cond.notify_all()
        self._after_done(head)

    def _skipped(self, item: Pending, *, error: str | None) -> str | None:
        """A request PostgreSQL discarded after an error. The first statement of the batch
        with a log entry is the one that failed and logs the error; the rest end as aborted.
        Returns the error if this request did not log it."""
        for _ in list(item.logs):
            self._finish_next_log(item, "aborted" if error is None else "error", error=error)
            error = None
        self._after_done(item)
        return error

    def _after_done(self, item: Pending) -> None:
        if item.marks_control:
            self.server.mark_stale()
        if item.drop_after:
            self._dropping = True

    def _pass_on(self, msg: pw.Message, head: Pending | None = None) -> None:
        if self._dropping or (head is not None and head.swallow):
            return
        if head is not None and head.drop_after and msg.type in (b"C", b"I", b"E", b"s"):
            # The statement ran; the client must never hear so.
            self._dropping = True
            return
        self._send(msg.encode())

    def _finish_next_log(
        self, item: Pending, status: str, *, error: str | None = None, rows: int | None = None
    ) -> None:
        if item.logs:
            self._finish(item.logs.pop(0), status, error=error, rows=rows)
