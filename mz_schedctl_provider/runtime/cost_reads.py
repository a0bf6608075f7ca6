"""The cost report's reads: a fixed number of statements whatever the fleet size, then the
engine's arithmetic (engine/cost.py).

Each statement runs alone in autocommit (catalog relations and user tables live in different
time domains in Materialize, as for the signals stage):

1. the window's end on the server's clock (unless given);
2. every user replica's lifetime: ``mz_internal.mz_cluster_replica_history`` (Materialize's
   view over its audit log: replicas made by people, by Materialize and by the controller);
3. the size catalog's credits_per_hour (for a history row whose size it no longer joins);
4. the clusters in the catalog now (current names; gone clusters keep their history names);
5. the controller's audit rows of replica actions (attribution and the baseline's date only);
6. the statements that ended in error on a cluster in the window (the redacted statement
   history the signals stage reads for activity; the engine keeps those that ran while the
   cluster had no replica: refused queries).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mz_schedctl_provider.engine.cost import (
    REPLICA_KINDS,
    AuditRow,
    ClusterCost,
    CostRules,
    ReplicaSpan,
    Window,
    cluster_cost,
    report_json,
)
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime.catalog_reads import cluster_names
from mz_schedctl_provider.runtime.db import (
    APPLICATION_NAME,
    Database,
    DatabaseError,
    is_missing_table,
)
from mz_schedctl_provider.runtime.signals import ACTIVITY_RELATION
from mz_schedctl_provider.runtime.store import ACTIONS, Store

REPLICA_HISTORY = (
    "SELECT replica_id, cluster_id, cluster_name, replica_name, size, created_at, dropped_at,"
    " credits_per_hour FROM mz_internal.mz_cluster_replica_history"
)
SIZE_CREDITS = "SELECT size, credits_per_hour FROM mz_catalog.mz_cluster_replica_sizes"
_KINDS = ", ".join(f"'{k}'" for k in REPLICA_KINDS)
# The controller's own statements never count (they run on its own cluster anyway).
ERRORS = (
    "SELECT cluster_id, began_at"
    f" FROM {ACTIVITY_RELATION}"
    " WHERE cluster_id IS NOT NULL AND finished_status = 'error'"
    " AND coalesce(application_name, '') <> %s"
    " AND began_at >= %s AND began_at < %s"
)


@dataclass(frozen=True)
class CostReport:
    window: Window
    rules: CostRules
    clusters: tuple[ClusterCost, ...]

    def json(self) -> JsonObject:
        return report_json(self.clusters, self.window, self.rules)


def audit_sql(store: Store) -> str:
    return (
        "SELECT action_id, cluster_id, created_at, decision_ctx ->> 'phase', executed,"
        " decision_ctx ->> 'strategy', decision_ctx ->> 'kind', decision_ctx ->> 'replica'"
        f" FROM {store.table(ACTIONS)} WHERE decision_ctx ->> 'kind' IN ({_KINDS})"
    )


def read_cost_report(
    db: Database,
    store: Store,
    *,
    hours: float = 24.0,
    until: datetime | None = None,
    filter_clusters: str | None = None,
    rules: CostRules | None = None,
) -> CostReport:
    """The report over ``hours`` ending at ``until`` (default: the server's now())."""
    rules = rules or CostRules()
    end = until if until is not None else db.query("SELECT now()")[0][0]
    window = Window(start=end - timedelta(hours=hours), end=end)
    spans = [replica_span(r) for r in db.query(REPLICA_HISTORY, purpose="reading replica history")]
    sizes = {str(s): float(c) for s, c in db.query(SIZE_CREDITS) if c is not None}
    current = dict(cluster_names(db))
    audit = [_audit(r) for r in _optional(store, audit_sql(store))]
    errors: dict[str, list[datetime]] = defaultdict(list)
    for cid, began in db.query(ERRORS, (APPLICATION_NAME, window.start, window.end)):
        errors[str(cid)].append(began)

    by_cluster: dict[str, list[ReplicaSpan]] = defaultdict(list)
    for span in spans:
        by_cluster[span.cluster_id].append(span)
    audit_by: dict[str, list[AuditRow]] = defaultdict(list)
    for row in audit:
        audit_by[row.cluster_id].append(row)
    pattern = re.compile(filter_clusters) if filter_clusters else None
    out: list[ClusterCost] = []
    for cid in sorted(set(by_cluster) | {c for c in current if c.startswith("u")}):
        cluster_spans = by_cluster.get(cid, [])
        if not _in_window(cluster_spans, window, cid in current):
            continue
        name = current.get(cid) or (cluster_spans[-1].cluster_name if cluster_spans else cid)
        if pattern is not None and not pattern.fullmatch(name):
            continue
        out.append(
            cluster_cost(
                cluster_id=cid,
                name=name,
                spans=cluster_spans,
                audit=audit_by.get(cid, []),
                errors=errors.get(cid, []),
                sizes=sizes,
                window=window,
                exists=cid in current,
                rules=rules,
            )
        )
    return CostReport(window=window, rules=rules, clusters=tuple(out))


def _in_window(spans: list[ReplicaSpan], window: Window, exists: bool) -> bool:
    """A cluster that had a replica during the window, or exists and had one before it."""
    if any(
        s.created_at < window.end and (s.dropped_at is None or s.dropped_at > window.start)
        for s in spans
    ):
        return True
    return exists and any(s.created_at < window.end for s in spans)  # fmt: skip


def replica_span(r: tuple[Any, ...]) -> ReplicaSpan:
    return ReplicaSpan(
        replica_id=str(r[0]),
        cluster_id=str(r[1]),
        cluster_name=str(r[2]),
        replica_name=str(r[3]),
        size=str(r[4]),
        created_at=r[5],
        dropped_at=r[6],
        credits_per_hour=None if r[7] is None else float(r[7]),
    )


def _audit(r: tuple[Any, ...]) -> AuditRow:
    return AuditRow(
        action_id=str(r[0]),
        cluster_id=str(r[1]),
        at=r[2],
        phase=str(r[3]),
        executed=r[4],
        strategy=None if r[5] is None else str(r[5]),
        kind=str(r[6]),
        replica_name=None if r[7] is None else str(r[7]),
    )


def _optional(store: Store, sql: str) -> list[tuple[Any, ...]]:
    # No audit table yet (never initialised): nothing is attributed to the controller.
    try:
        return store.db.query(sql, purpose="reading the audit trail")
    except DatabaseError as exc:
        if is_missing_table(exc):
            return []
        raise
