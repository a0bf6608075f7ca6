"""The evidence reads of the signals stage (engine/evidence.py uses them), folded into statements
it sends anyway, so their count stays the same whatever the number of clusters:

* the audit trail's replica creates and drops ride on the rate limit's read of the same table;
* Materialize's dropped replicas (mz_internal.mz_cluster_replica_history, dropped_at set) ride
  on the per-replica history read, as extra rows tagged ``dropped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mz_schedctl_provider.engine.models import RecentAction, ReplicaEvent
from mz_schedctl_provider.runtime.db import DatabaseError, is_missing_table
from mz_schedctl_provider.runtime.store import ACTIONS, Store

_REPLICA_KINDS = "('create_replica', 'drop_replica')"


def audit_sql(store: Store, window_s: int) -> str:
    """Rate-limit rows (DDL sent in the window, succeeded or failed) and evidence rows (every
    executed replica create or drop, and every intent, whatever its age) in one statement;
    ``recent`` tells the first kind apart, computed on the server's clock."""
    return (
        "SELECT action_id, cluster_id, created_at, decision_ctx ->> 'strategy',"
        " decision_ctx ->> 'phase', executed, decision_ctx ->> 'kind',"
        " decision_ctx ->> 'replica', decision_ctx ->> 'size',"
        f" (created_at > now() - make_interval(secs => {int(window_s)})"
        "  AND decision_ctx ->> 'phase' = 'outcome' AND (executed OR error_message IS NOT NULL))"
        f" FROM {store.table(ACTIONS)}"
        " WHERE (decision_ctx ->> 'phase' = 'outcome' AND (executed OR error_message IS NOT NULL)"
        f"  AND created_at > now() - make_interval(secs => {int(window_s)}))"
        f" OR (decision_ctx ->> 'kind' IN {_REPLICA_KINDS}"
        "  AND (executed OR decision_ctx ->> 'phase' = 'intent' OR error_message IS NOT NULL))"
    )


def read_audit(
    store: Store, *, window_s: int = 3600
) -> tuple[list[RecentAction], list[ReplicaEvent]]:
    """(the rate limit's recent actions, the audit's replica events); both empty before init."""
    try:
        rows = store.db.query(audit_sql(store, window_s))
    except DatabaseError as exc:
        if is_missing_table(exc):
            return [], []
        raise
    recent = [RecentAction(str(r[1]), r[2], r[3]) for r in rows if r[9]]
    return recent, audit_events(rows)


def audit_events(rows: Sequence[tuple[Any, ...]]) -> list[ReplicaEvent]:
    """One event per executed outcome; an intent with no outcome row at all (the process died
    between the DDL and its outcome) gives an unconfirmed one; a failed outcome gives none."""
    outcomes: dict[str, tuple[Any, ...]] = {}
    intents: dict[str, tuple[Any, ...]] = {}
    failed: set[str] = set()
    for row in rows:
        aid, phase, executed, kind = str(row[0]), row[4], row[5], row[6]
        if kind not in ("create_replica", "drop_replica") or not row[7]:
            continue
        if phase == "intent":
            intents[aid] = row
        elif executed:
            outcomes[aid] = row
        else:
            failed.add(aid)
    events = [_event(row, confirmed=True) for row in outcomes.values()]
    events += [
        _event(row, confirmed=False)
        for aid, row in intents.items()
        if aid not in outcomes and aid not in failed
    ]
    return events


def _event(row: tuple[Any, ...], *, confirmed: bool) -> ReplicaEvent:
    return ReplicaEvent(
        cluster_id=str(row[1]),
        source="audit",
        event="created" if row[6] == "create_replica" else "dropped",
        replica_name=str(row[7]),
        size=None if row[8] is None else str(row[8]),
        at=row[2],
        strategy=None if row[3] is None else str(row[3]),
        confirmed=confirmed,
    )


def with_dropped(history_sql: str) -> str:
    """The per-replica history read (id, created, ooms, crashes) plus Materialize's dropped
    replicas as extra rows: (id, dropped_at, NULL, NULL, 'dropped', cluster_id, name, size)."""
    return (
        "SELECT *, NULL::text, NULL::text, NULL::text, NULL::text"
        f" FROM ({history_sql}) AS live"
        " UNION ALL SELECT replica_id, dropped_at, NULL, NULL, 'dropped', cluster_id,"
        " replica_name, size FROM mz_internal.mz_cluster_replica_history"
        " WHERE dropped_at IS NOT NULL"
    )


def split_history(
    rows: Sequence[tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], list[ReplicaEvent]]:
    """(the live replicas' history rows as before, the dropped replicas as events)."""
    live = [tuple(r[:4]) for r in rows if r[4] != "dropped"]
    dropped = [
        ReplicaEvent(
            cluster_id=str(r[5]),
            source="replica_history",
            event="dropped",
            replica_name=str(r[6]),
            size=None if r[7] is None else str(r[7]),
            at=r[1],
        )
        for r in rows
        if r[4] == "dropped" and r[5] is not None and r[6] is not None
    ]
    return live, dropped
