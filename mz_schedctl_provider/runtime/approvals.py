"""The approval gate's table, ``mz_cluster_strategy_approvals``: requests written by persist,
answers written by the approval DAG, read back by the signals stage.

Append-only like the state table (Materialize has no UPDATE worth using and no upserts): every
change of a request is a new row carrying all its columns; the newest row per request id wins
(ties: the later status). Each write is one INSERT (one statement per transaction), with
``now()`` only in VALUES (never ``mz_now()`` in a write).

Lifecycle of a request: ``pending`` (asked; expires_at = requested_at + the rule's timeout) ->
``approved`` (authorizes the action until that same expires_at) -> ``used`` (a cycle ran it:
it never authorizes twice); or -> ``rejected`` (an answer without it, or no answer at the HITL
timeout: the fingerprint is not asked again until decided_at + the same timeout); or ->
``expired`` (answered, or still pending/approved, at or after expires_at on the server clock).
Rejected and expired requests get an audit row (executed = false) through store.audit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from mz_schedctl_provider.engine.approval import fingerprint, live
from mz_schedctl_provider.engine.contract import CODEC, plan_from_json
from mz_schedctl_provider.engine.models import (
    Action,
    ApplyResult,
    Approval,
    ApprovalStatus,
    JsonObject,
    JsonValue,
    Plan,
)
from mz_schedctl_provider.runtime.audit_records import record
from mz_schedctl_provider.runtime.db import DatabaseError, is_missing_table
from mz_schedctl_provider.runtime.plan_text import plan_lines
from mz_schedctl_provider.runtime.store import APPROVALS, Store

_FIELDS = (
    "request_id, cycle_id, cluster_id, cluster_name, fingerprint, action_text, action_sql,"
    " action, plan_text, requested_at, expires_at, status, decided_by, decided_at"
)
# The later status wins a tie of updated_at (rows of one INSERT share now()).
_RANK: dict[str, int] = {"pending": 0, "approved": 1, "rejected": 1, "expired": 2, "used": 2}
_NAMESPACE = uuid.UUID("0b9e7c4e-3f1a-4d2b-8c6e-7a5d1f2e9b30")


@dataclass(frozen=True)
class ApprovalRow:
    """One request as its newest row says."""

    request_id: str
    cycle_id: str
    cluster_id: str
    cluster_name: str
    fingerprint: str
    action_text: str
    action_sql: str | None
    action: JsonObject
    plan_text: str
    requested_at: datetime
    expires_at: datetime
    status: ApprovalStatus
    decided_by: str | None = None
    decided_at: datetime | None = None
    updated_at: datetime | None = None

    def to_approval(self) -> Approval:
        return Approval(
            request_id=self.request_id,
            cluster_id=self.cluster_id,
            fingerprint=self.fingerprint,
            status=self.status,
            expires_at=self.expires_at,
            requested_at=self.requested_at,
            decided_by=self.decided_by,
            decided_at=self.decided_at,
        )

    def to_json(self) -> JsonObject:
        """For XCom (the approval DAG's tasks): timestamps as ISO text."""
        return {
            "request_id": self.request_id,
            "cluster_name": self.cluster_name,
            "action_text": self.action_text,
            "action_sql": self.action_sql,
            "plan_text": self.plan_text,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "status": self.status,
            "reasons": [str(r) for r in _list(self.action.get("reasons"))],
        }


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def table(store: Store) -> str:
    return store.table(APPROVALS)


def read_rows(store: Store, request_ids: Sequence[str] | None = None) -> list[ApprovalRow]:
    """The newest row of each request (of these ids only, if given); empty before init."""
    sql = f"SELECT {_FIELDS}, updated_at FROM {table(store)}"
    params: list[Any] = []
    if request_ids is not None:
        if not request_ids:
            return []
        sql += f" WHERE request_id IN ({', '.join(['%s'] * len(request_ids))})"
        params = list(request_ids)
    try:
        rows = store.db.query(sql, params or None)
    except DatabaseError as exc:
        if is_missing_table(exc):
            return []
        raise
    newest: dict[str, ApprovalRow] = {}
    for r in rows:
        row = ApprovalRow(
            request_id=str(r[0]),
            cycle_id=str(r[1] or ""),
            cluster_id=str(r[2]),
            cluster_name=str(r[3] or ""),
            fingerprint=str(r[4]),
            action_text=str(r[5] or ""),
            action_sql=None if r[6] is None else str(r[6]),
            action=r[7] if isinstance(r[7], dict) else json.loads(r[7] or "{}"),
            plan_text=str(r[8] or ""),
            requested_at=r[9],
            expires_at=r[10],
            status=r[11],
            decided_by=None if r[12] is None else str(r[12]),
            decided_at=r[13],
            updated_at=r[14],
        )
        old = newest.get(row.request_id)
        if old is None or _key(row) > _key(old):
            newest[row.request_id] = row
    return sorted(newest.values(), key=lambda r: (r.requested_at, r.request_id))


def _key(row: ApprovalRow) -> tuple[datetime | None, int]:
    return row.updated_at, _RANK.get(row.status, 0)


def live_approvals(rows: Iterable[ApprovalRow], cluster_ids: set[str]) -> tuple[Approval, ...]:
    """What the signals document carries: pending, approved and rejected requests of clusters
    in scope (decide checks their expiry against its own ``now``)."""
    return tuple(
        r.to_approval()
        for r in rows
        if r.cluster_id in cluster_ids and r.status in ("pending", "approved", "rejected")
    )


def _insert(store: Store, rows: Sequence[tuple[Any, ...]]) -> None:
    """All rows in one INSERT. A row's requested_at / expires_at may be SQL (``now()`` +
    interval, a new request) or a value (a copy)."""
    if not rows:
        return
    values: list[str] = []
    params: list[Any] = []
    for row in rows:
        marks = []
        for value in row:
            if isinstance(value, _Sql):
                marks.append(value.sql)
                params.extend(value.params)
            else:
                marks.append("%s")
                params.append(value)
        values.append(f"({', '.join(marks)})")
    store.db.execute(
        f"INSERT INTO {table(store)} ({_FIELDS}) VALUES {', '.join(values)}",
        params,
        purpose="writing approval requests",
    )


@dataclass(frozen=True)
class _Sql:
    sql: str
    params: tuple[Any, ...] = ()


def _copy(row: ApprovalRow, status: ApprovalStatus, **changes: Any) -> tuple[Any, ...]:
    new = replace(row, status=status, **changes)
    return (
        new.request_id,
        new.cycle_id,
        new.cluster_id,
        new.cluster_name,
        new.fingerprint,
        new.action_text,
        new.action_sql,
        json.dumps(new.action, sort_keys=True),
        new.plan_text,
        new.requested_at,
        new.expires_at,
        new.status,
        new.decided_by,
        new.decided_at,
    )


def _audit_not_executed(store: Store, rows: Sequence[tuple[ApprovalRow, str]]) -> None:
    """Rejected and expired: an outcome row, executed = false, the why in its note. No error
    message: it is no failed DDL (the rate limit and the evidence reads count those)."""
    records = []
    for row, note in rows:
        action = CODEC.decode(Action, row.action, "action")
        plan = Plan(cycle_id=row.cycle_id, now=row.requested_at, dry_run=False)
        rec = record(plan, action, phase="outcome", executed=False, note=note)
        rec.context["approval_request"] = row.request_id
        records.append(rec)
    store.audit(records)


# ---- persist: new requests, used approvals, expiry -------------------------------------------


@dataclass(frozen=True)
class Settled:
    """What persist wrote to the approvals table."""

    requested: list[str]
    used: list[str]
    expired: list[str]


def settle(store: Store, plan_doc: JsonObject, result: ApplyResult, *, timeout_s: float) -> Settled:
    """After apply, with the lease held: expire what is past expires_at at the plan's ``now``,
    mark the approvals this cycle used, and ask for every waiting action that has no live
    request (one INSERT for all, one audit INSERT for the expired)."""
    plan = plan_from_json(plan_doc)
    rows = read_rows(store)
    outcomes = {r.action_id: r.outcome for r in result.results}
    changes: list[tuple[Any, ...]] = []
    expired: list[tuple[ApprovalRow, str]] = []
    used: list[str] = []
    ran = {
        a.approval_id
        for a in plan.actions()
        if "approved" in a.codes
        and a.approval_id is not None
        and outcomes.get(a.id) in ("succeeded", "already_true", "failed")
    }
    for row in rows:
        if row.request_id in ran and row.status == "approved":
            changes.append(_copy(row, "used"))
            used.append(row.request_id)
        elif row.status in ("pending", "approved") and not live(row.to_approval(), plan.now):
            changes.append(_copy(row, "expired"))
            expired.append((row, "approval expired"))
    taken = {
        r.fingerprint for r in rows if live(r.to_approval(), plan.now) and r.request_id not in ran
    }
    requested: list[str] = []
    for cp in plan.clusters:
        for a in cp.actions:
            key = fingerprint(a)
            if "awaiting_approval" not in a.codes or a.approval_id is not None or key in taken:
                continue
            taken.add(key)
            request_id = str(uuid.uuid5(_NAMESPACE, f"{plan.cycle_id}/{key}"))
            requested.append(request_id)
            changes.append(
                (
                    request_id,
                    plan.cycle_id,
                    a.cluster_id,
                    a.cluster_name,
                    key,
                    a.describe(),
                    a.sql,
                    json.dumps(CODEC.encode(a), sort_keys=True),
                    cluster_text(plan_doc, a.cluster_id),
                    _Sql("now()"),
                    _Sql("now() + make_interval(secs => %s)", (float(timeout_s),)),
                    "pending",
                    None,
                    None,
                )
            )
    try:
        _insert(store, changes)
    except DatabaseError as exc:
        # A table set created before the gate existed: the failed INSERT wrote nothing.
        if not is_missing_table(exc):
            raise
        store.bootstrap()
        _insert(store, changes)
    _audit_not_executed(store, expired)
    return Settled(requested, used, [r.request_id for r, _ in expired])


def cluster_text(plan_doc: JsonObject, cluster_id: str) -> str:
    """The rendered plan (plan_text's lines) of one cluster: what the person approving sees."""
    clusters = plan_doc.get("clusters")
    mine: list[JsonValue] = [
        c
        for c in (clusters if isinstance(clusters, list) else [])
        if isinstance(c, dict) and c.get("cluster_id") == cluster_id
    ]
    doc: JsonObject = {**plan_doc, "clusters": mine}
    return "\n".join(line for _level, line in plan_lines(doc))


def prune(store: Store, *, days: int) -> int:
    """Retention with the audit: every row of a request whose newest row is older than
    ``days`` (a decided or expired request is history by then)."""
    t = table(store)
    try:
        return store.db.execute(
            f"DELETE FROM {t} AS a WHERE (SELECT max(n.updated_at) FROM {t} AS n"
            f" WHERE n.request_id = a.request_id) < now() - make_interval(days => {int(days)})"
        )
    except DatabaseError as exc:
        if is_missing_table(exc):
            return 0
        raise


# ---- the approval DAG: read the requests, record the answer ---------------------------------


def pending(store: Store, request_ids: Sequence[str]) -> list[ApprovalRow]:
    """The requests of these ids still waiting for an answer."""
    return [r for r in read_rows(store, request_ids) if r.status == "pending"]


@dataclass(frozen=True)
class Recorded:
    """What the answer did to each request."""

    approved: list[str]
    rejected: list[str]
    expired: list[str]

    def to_json(self) -> JsonObject:
        return {
            "approved": list(self.approved),
            "rejected": list(self.rejected),
            "expired": list(self.expired),
        }


def record_answer(
    store: Store,
    request_ids: Sequence[str],
    *,
    approved: Iterable[str],
    by: str,
    answered: bool = True,
) -> Recorded:
    """The person's answer (``approved``: the request ids chosen; every other is rejected by
    ``by``), judged on the server's clock: a request answered at or after its expires_at is
    expired, whatever the answer. No answer at all (``answered`` false: the HITL timeout) means
    rejected. Already decided requests are left as they are."""
    chosen = set(approved)
    now: datetime = store.db.query("SELECT now()")[0][0]
    changes: list[tuple[Any, ...]] = []
    audits: list[tuple[ApprovalRow, str]] = []
    out = Recorded([], [], [])
    for row in pending(store, request_ids):
        if answered and now >= row.expires_at:
            changes.append(_copy(row, "expired", decided_by=by, decided_at=now))
            audits.append((row, "approval expired"))
            out.expired.append(row.request_id)
        elif answered and row.request_id in chosen:
            changes.append(_copy(row, "approved", decided_by=by, decided_at=now))
            out.approved.append(row.request_id)
        else:
            # Not asked again for as long as a request waits: the rejection's own expiry.
            hold = row.expires_at - row.requested_at
            changes.append(
                _copy(
                    row,
                    "rejected",
                    decided_by=by,
                    decided_at=now,
                    expires_at=now + max(hold, timedelta(0)),
                )
            )
            audits.append((row, f"rejected by {by}"))
            out.rejected.append(row.request_id)
    _insert(store, changes)
    _audit_not_executed(store, audits)
    return out


def markdown(rows: Sequence[ApprovalRow]) -> str:
    """The HITL page's body: one table row per action waiting (its reasons say its cost once
    approved), then each cluster's rendered plan, a list item per line (the page's Markdown
    joins the lines of a code block)."""
    lines = [
        "| option | cluster | action | SQL | why | expires (server) |",
        "|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        why = "; ".join(str(x) for x in _list(r.action.get("reasons")))
        cells = [
            option_label(i, r),
            r.cluster_name,
            r.action_text,
            f"`{r.action_sql}`" if r.action_sql else "",
            why,
            r.expires_at.isoformat(),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    for name, text in dict.fromkeys((r.cluster_name, r.plan_text) for r in rows):
        lines += ["", f"**Plan of {name}**", ""]
        lines += [f"- `{line.strip().replace('`', chr(39))}`" for line in text.splitlines()]
    lines += ["", "No answer by the expiry means rejected. Unselected actions are rejected."]
    return "\n".join(lines)


def option_label(index: int, row: ApprovalRow) -> str:
    """The HITL option of one request: unique (numbered), readable."""
    return f"{index}. {row.cluster_name}: {row.action_text}"
