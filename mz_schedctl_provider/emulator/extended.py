"""The extended query protocol of a session (Parse, Bind, Describe, Execute, Close, Sync,
Flush): ordinary statements are forwarded, Materialize-only ones answered in order once the
backend caught up. Mixed into ``session.ClientSession``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mz_schedctl_provider.emulator import policy, statements, subscribe, txnrules
from mz_schedctl_provider.emulator import protocol as pw
from mz_schedctl_provider.emulator.errors import MzError
from mz_schedctl_provider.emulator.faultgate import Outcome
from mz_schedctl_provider.emulator.relay import Pending

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.session import ClientSession


@dataclass
class Prepared:
    """A statement as the client named it: Materialize-only (``mz``) or passed through."""

    sql: str
    mz: object | None
    analysis: policy.Analysis | None


@dataclass
class Portal:
    prepared: Prepared
    result: statements.Result | None = None


class ExtendedQuery:
    """The extended-protocol handlers of a client session."""

    if TYPE_CHECKING:  # provided by ClientSession
        txn: txnrules.Transaction
        subscriptions: subscribe.Subscriptions
        _prepared: dict[str, Prepared]
        _portals: dict[str, Portal]
        _skipping: bool
        _skip_to_sync: bool

        def close(self) -> None: ...
        def _send(self, data: bytes) -> None: ...
        def _forward(self, msg: pw.Message | bytes, pending: Pending | None) -> None: ...
        def _drain(self) -> None: ...
        def _prepare(self, sql: str) -> Prepared: ...
        def _run_mz(self, prep: Prepared, *, portal: Portal | None) -> statements.Result | None: ...
        def _checks(self, prep: Prepared) -> Outcome: ...
        def _refuse(self, error: MzError, entry: Any) -> None: ...
        def _note_txn_words(self, sql: str) -> None: ...
        def _send_result(self, result: statements.Result, *, describe: bool) -> None: ...

    @property
    def _session(self) -> ClientSession:
        """This object as the session it is mixed into (subscribe.py takes the session)."""
        return cast("ClientSession", self)

    def _on_parse(self, msg: pw.Message) -> None:
        name, offset = pw.cstring(msg.payload)
        text, offset = pw.cstring(msg.payload, offset)
        prep = self._prepare(text)
        self._prepared[name] = prep
        if prep.mz is None and prep.analysis is not None and prep.analysis.error is None:
            rewritten = prep.analysis.sql
            payload = name.encode() + b"\0" + rewritten.encode() + b"\0" + msg.payload[offset:]
            self._forward(pw.Message(b"P", payload), Pending("parse"))
            return
        self._drain()
        if self._skipping:
            self._skip_to_sync = True
            return
        if prep.analysis is not None and prep.analysis.error is not None:
            self._refuse(prep.analysis.error, None)
            return
        self._send(pw.parse_complete())

    def _on_bind(self, msg: pw.Message) -> None:
        portal, offset = pw.cstring(msg.payload)
        stmt, _ = pw.cstring(msg.payload, offset)
        prep = self._prepared.get(stmt)
        if prep is None or prep.mz is None:
            if prep is not None:
                self._portals[portal] = Portal(prep)
            self._forward(msg, Pending("bind"))
            return
        self._portals[portal] = Portal(prep)
        self._answer_locally(pw.bind_complete())

    def _on_describe(self, msg: pw.Message) -> None:
        target = msg.payload[:1]
        name, _ = pw.cstring(msg.payload, 1)
        prep: Prepared | None
        portal = None
        if target == b"P":
            portal = self._portals.get(name)
            prep = portal.prepared if portal else None
        else:
            prep = self._prepared.get(name)
        if prep is None or prep.mz is None:
            self._forward(msg, Pending("describe"))
            return
        self._drain()
        if self._skipping:
            self._skip_to_sync = True
            return
        head = b"" if target == b"P" else pw.parameter_description(0)
        if isinstance(prep.mz, subscribe.STATEMENTS):
            # Its columns from planning it: running a SUBSCRIBE early would stream its rows.
            try:
                cols = subscribe.columns_of(self._session, prep.mz)
            except MzError as exc:
                self._refuse(exc, None)
                return
            self._send(head + (pw.no_data() if cols is None else pw.row_description_typed(cols)))
            return
        if not statements.returns_rows(prep.mz):
            self._send(head + pw.no_data())
            return
        # Row-returning Materialize statements (SHOW ...) are read-only: running them early is
        # the only way to know their columns.
        result = self._run_mz(prep, portal=portal)
        if result is None:
            return
        if portal is not None:
            portal.result = result
        self._send(head + pw.row_description(result.columns))

    def _on_execute(self, msg: pw.Message) -> None:
        name, _ = pw.cstring(msg.payload)
        portal = self._portals.get(name)
        if portal is None or portal.prepared.mz is None:
            prep = portal.prepared if portal else None
            self._execute_passthrough(msg, prep)
            return
        self._drain()
        if self._skipping:
            self._skip_to_sync = True
            return
        result = portal.result
        portal.result = None
        if result is None:
            result = self._run_mz(portal.prepared, portal=portal)
        if result is not None:
            self._send_result(result, describe=False)

    def _execute_passthrough(self, msg: pw.Message, prep: Prepared | None) -> None:
        if prep is None or prep.analysis is None:
            self._forward(msg, Pending("execute", logs=[None]))
            return
        outcome = self._checks(prep)
        if outcome.drop_before:
            self.close()
            raise pw.ConnectionClosed
        if outcome.error is not None:
            self._drain()
            if not self._skipping:
                self._refuse(outcome.error, outcome.log)
            self._skip_to_sync = True
            return
        pending = Pending(
            "execute",
            logs=[outcome.log],
            drop_after=outcome.drop_after,
            marks_control=prep.analysis.calls_emulator,
        )
        self._forward(msg, pending)
        self._note_txn_words(prep.sql)

    def _on_close(self, msg: pw.Message) -> None:
        target = msg.payload[:1]
        name, _ = pw.cstring(msg.payload, 1)
        registry: dict[str, Any] = self._portals if target == b"P" else self._prepared
        item = registry.pop(name, None)
        prep = item.prepared if isinstance(item, Portal) else item
        if prep is None or prep.mz is None:
            self._forward(msg, Pending("close"))
            return
        self._answer_locally(pw.close_complete())

    def _on_sync(self, msg: pw.Message) -> None:
        self._skip_to_sync = False
        self._forward(msg, Pending("sync"))
        if self.txn.end_implicit():
            self.subscriptions.clear(self._session)

    def _on_flush(self, msg: pw.Message) -> None:
        self._forward(msg, None)

    def _answer_locally(self, data: bytes) -> None:
        self._drain()
        if self._skipping:
            self._skip_to_sync = True
            return
        self._send(data)
