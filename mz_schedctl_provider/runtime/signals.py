"""Read everything decide needs in a fixed number of statements, however many clusters exist.

Each statement runs alone in autocommit: Materialize keeps catalog relations and user tables
in different time domains, so they cannot share a read transaction."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mz_schedctl_provider.engine.lookback import activity_lookback_s, activity_window_s
from mz_schedctl_provider.engine.models import (
    Cluster,
    Reconfiguration,
    Replica,
    ReplicaEvent,
    Signals,
    Size,
    StrategyRow,
)
from mz_schedctl_provider.engine.unknown_rows import stray_rows
from mz_schedctl_provider.runtime.approvals import live_approvals, read_rows
from mz_schedctl_provider.runtime.catalog_reads import HYDRATED_OBJECTS, USER_OBJECTS
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, Database, DatabaseError
from mz_schedctl_provider.runtime.evidence_reads import read_audit, split_history, with_dropped
from mz_schedctl_provider.runtime.store import Store

# Crash and OOM counts look this far back.
CRASH_WINDOW_S = 3600
# Materialize writes its statement log on a timer (STATEMENT_LOGGING_WRITE_INTERVAL, 5 s, in
# src/adapter/src/coord/statement_logging.rs): a statement is visible up to this much later.
LOG_FLUSH_LAG_S = 5.0

_SIZES = "SELECT size, credits_per_hour, memory_bytes FROM mz_catalog.mz_cluster_replica_sizes"
CLUSTERS_READ = (
    "SELECT c.id, c.name, c.managed, c.size, c.replication_factor, s.type"
    " FROM mz_catalog.mz_clusters c"
    " LEFT JOIN mz_internal.mz_cluster_schedules s ON s.cluster_id = c.id"
)
# Materialize's own scheduling (coexistence) and graceful resizes, in one statement: clusters
# with a built-in AUTO SCALING STRATEGY, and every reconfiguration (v26.35+). Either relation
# may be missing on older releases: then each is read alone, a missing one counting as empty.
_AUTO_SCALING = (
    "SELECT cluster_id, 'auto_scaling', NULL::text, NULL::timestamptz, NULL::text,"
    " NULL::text, NULL::text FROM mz_internal.mz_cluster_auto_scaling_strategies"
)
_RECONFIGURATIONS = (
    "SELECT cluster_id, 'reconfiguration', status, deadline, on_timeout,"
    " target ->> 'size', target ->> 'replication_factor'"
    " FROM mz_internal.mz_cluster_reconfigurations"
)
_MZ_SCHEDULING = f"{_AUTO_SCALING} UNION ALL {_RECONFIGURATIONS}"
_REPLICAS = (
    "SELECT r.id, r.name, r.cluster_id, r.size, st.status, st.reason"
    " FROM mz_catalog.mz_cluster_replicas r"
    " LEFT JOIN mz_internal.mz_cluster_replica_statuses st ON st.replica_id = r.id"
)
# Per live replica: its creation (mz_cluster_replica_history, from the audit log; else its
# first status event) and its OOM kills and crashes in a window. An offline row is a crash only
# once the replica has been online: before its first online row it is start-up (Kubernetes
# reports a starting pod offline with reason NULL; Materialize's own "initializing" never is a
# crash). An OOM kill counts whenever it happens.
_RECENT = f"h.occurred_at > now() - INTERVAL '{CRASH_WINDOW_S} seconds'"
_HISTORY = (
    "SELECT r.id, coalesce(min(rh.created_at), min(h.occurred_at)),"
    f" sum(CASE WHEN h.status = 'offline' AND h.reason = 'oom-killed' AND {_RECENT}"
    "  THEN 1 ELSE 0 END),"
    f" sum(CASE WHEN h.status = 'offline' AND {_RECENT} AND (h.reason = 'oom-killed'"
    "  OR (coalesce(h.reason, '') <> 'initializing' AND f.first_online <= h.occurred_at))"
    "  THEN 1 ELSE 0 END)"
    " FROM mz_catalog.mz_cluster_replicas r"
    " LEFT JOIN mz_internal.mz_cluster_replica_status_history h ON h.replica_id = r.id"
    " LEFT JOIN (SELECT replica_id, min(occurred_at) AS first_online"
    "  FROM mz_internal.mz_cluster_replica_status_history WHERE status = 'online'"
    "  GROUP BY replica_id) f ON f.replica_id = r.id"
    " LEFT JOIN mz_internal.mz_cluster_replica_history rh ON rh.replica_id = r.id"
    " GROUP BY r.id"
)
# Any statement on a cluster is activity, finished or not, whatever its outcome: a query
# refused because the cluster is suspended is exactly the signal to resume it. A statement
# still running (finished_at NULL: a long query, a SUBSCRIBE) is activity now, not when it
# began. Bound: only rows that began inside the read window count, so a row that never gets its
# end (its process died and nothing wrote one) keeps its cluster on for at most that window
# (24 h, or the longest idle_after_s plus an hour); a finished statement whose end is not yet
# flushed (Materialize writes its log about every 5 s) counts as running until it is.
ACTIVITY_RELATION = "mz_internal.mz_statement_execution_history_redacted"
_ACTIVITY = (
    "SELECT cluster_id, max(coalesce(finished_at, now()))"
    f" FROM {ACTIVITY_RELATION}"
    " WHERE cluster_id IS NOT NULL"
    " AND coalesce(application_name, '') <> %s"
    " AND began_at > now() - make_interval(secs => %s)"
    " GROUP BY cluster_id"
)


def read_signals(
    db: Database,
    store: Store,
    *,
    filter_clusters: str | None = None,
    log_flush_lag_s: float = LOG_FLUSH_LAG_S,
) -> Signals:
    """One batch of reads; its statement count does not depend on the number of clusters."""
    now = db.query("SELECT now()")[0][0]
    strategies = store.read_strategies()
    scoped_ids = {row.cluster_id for row in strategies}
    clusters_rows = db.query(CLUSTERS_READ)
    pattern = re.compile(filter_clusters) if filter_clusters else None
    wanted = {
        row[0]
        for row in clusters_rows
        if row[0] in scoped_ids and (pattern is None or pattern.fullmatch(row[1]))
    }
    # Rows for no cluster's id stay in the document, with the clusters they point at: decide
    # reports each (engine/unknown_rows.py) instead of ignoring it without a word.
    stray, cluster_names = stray_rows(
        rows=strategies, clusters={row[0]: row[1] for row in clusters_rows}, pattern=pattern
    )
    objects, object_ids = _objects(db, wanted)
    dropped: list[ReplicaEvent] = []
    replicas = _replicas(db, wanted, object_ids, dropped)
    activity = _activity(db, strategies)
    auto_scaling, reconfigurations = _mz_scheduling(db)
    recent, audited = read_audit(store)  # the rate limit's rows and the audit's evidence
    approvals = live_approvals(read_rows(store), wanted)  # the approval gate's: one SELECT
    clusters = tuple(
        _cluster(
            row,
            replicas.get(row[0], []),
            objects.get(row[0], {}),
            activity,
            auto_scaling,
            reconfigurations.get(row[0]),
        )
        for row in clusters_rows
        if row[0] in wanted
    )
    return Signals(
        now=now,
        logging_visible=_logging_visible(db),
        controller_cluster=_show(db, "cluster"),
        crash_window_s=float(CRASH_WINDOW_S),
        sizes=read_sizes(db),
        clusters=clusters,
        strategies=(*(r for r in strategies if r.cluster_id in wanted), *stray),
        states=tuple(r for r in store.read_states() if r.cluster_id in wanted),
        recent_actions=tuple(a for a in recent if a.cluster_id in wanted),
        cluster_names=cluster_names,
        log_flush_lag_s=log_flush_lag_s,
        replica_events=tuple(e for e in (*audited, *dropped) if e.cluster_id in wanted),
        approvals=approvals,
    )


def _show(db: Database, variable: str) -> str | None:
    try:
        rows = db.query(f"SHOW {variable}")
    except DatabaseError:
        return None
    return str(rows[0][0]) if rows else None


def _logging_visible(db: Database) -> bool:
    """Idle detection is blind when statement logging samples nothing."""
    rate = logging_sample_rate(db)
    return rate is not None and rate > 0


def logging_sample_rate(db: Database) -> float | None:
    """Materialize's statement_logging_max_sample_rate; None when it cannot be read."""
    rate = _show(db, "statement_logging_max_sample_rate")
    try:
        return None if rate is None else float(rate)
    except ValueError:
        return None


def read_sizes(db: Database) -> tuple[Size, ...]:
    allowed_text = _show(db, "allowed_cluster_replica_sizes") or ""
    allowed = {s.strip().strip('"') for s in allowed_text.split(",") if s.strip().strip('"')}
    return tuple(
        Size(
            name=str(name),
            credits_per_hour=float(credits),
            memory_bytes=int(memory or 0),
            allowed=not allowed or name in allowed,
        )
        for name, credits, memory in db.query(_SIZES)
    )


def _mz_scheduling(db: Database) -> tuple[set[str], dict[str, Reconfiguration]]:
    """(clusters with a built-in AUTO SCALING STRATEGY, each cluster's reconfiguration)."""
    try:
        rows = db.query(_MZ_SCHEDULING)
    except DatabaseError:
        rows = _tolerant(db, _AUTO_SCALING) + _tolerant(db, _RECONFIGURATIONS)
    auto_scaling = {str(row[0]) for row in rows if row[1] == "auto_scaling"}
    found: dict[str, list[Reconfiguration]] = defaultdict(list)
    for cid, kind, status, deadline, on_timeout, size, factor in rows:
        if kind == "reconfiguration" and status is not None:
            found[str(cid)].append(
                Reconfiguration(
                    status=str(status),
                    deadline=deadline,
                    on_timeout=None if on_timeout is None else str(on_timeout),
                    target_size=None if size is None else str(size),
                    target_replication_factor=_int_or_none(factor),
                )
            )
    return auto_scaling, {cid: _relevant(rcs) for cid, rcs in found.items()}


def _tolerant(db: Database, sql: str) -> list[tuple[Any, ...]]:
    try:
        return db.query(sql)
    except DatabaseError:
        return []  # a release without this relation


def _relevant(reconfigurations: list[Reconfiguration]) -> Reconfiguration:
    """The one in progress, else the latest by deadline (the relation has no other order)."""
    running = [r for r in reconfigurations if r.in_progress]
    if running:
        return running[-1]
    return max(
        enumerate(reconfigurations),
        key=lambda p: (p[1].deadline is not None, p[1].deadline or datetime.min, p[0]),
    )[1]


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _replicas(
    db: Database, wanted: set[str], object_ids: set[str], dropped: list[ReplicaEvent]
) -> dict[str, list[Replica]]:
    """Live replicas by cluster; Materialize's dropped replicas (evidence) go to ``dropped``."""
    statuses: dict[str, tuple[str, str, str | None, str | None]] = {}
    processes: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)
    for rid, name, cid, size, status, reason in db.query(_REPLICAS):
        if cid in wanted:
            statuses[rid] = (name, cid, size, None)
            processes[rid].append((status, reason))
    live, gone = split_history(db.query(with_dropped(_HISTORY)))
    dropped.extend(gone)
    history = {row[0]: (row[1], int(row[2] or 0), int(row[3] or 0)) for row in live}
    hydrated: dict[str, int] = defaultdict(int)
    for rid, object_id in db.query(HYDRATED_OBJECTS):
        # Only objects that count for their cluster: a hydrated subsource must not stand in
        # for its unhydrated source.
        if object_id in object_ids:
            hydrated[rid] += 1
    result: dict[str, list[Replica]] = defaultdict(list)
    for rid, (name, cid, size, _) in statuses.items():
        status, reason = _worst(processes[rid])
        created, ooms, crashes = history.get(rid, (None, 0, 0))
        result[cid].append(
            Replica(
                id=rid,
                name=name,
                size=size,
                created_at=created,
                status=status,
                status_reason=reason,
                hydrated_objects=hydrated.get(rid, 0),
                oom_count=ooms,
                crash_count=crashes,
            )
        )
    return result


def _worst(processes: Iterable[tuple[str | None, str | None]]) -> tuple[str | None, str | None]:
    """A replica is only as healthy as its least healthy process."""
    seen = list(processes)
    for status, reason in seen:
        if status == "offline":
            return status, reason
    for status, reason in seen:
        if status is not None:
            return status, reason
    return None, None


def _objects(db: Database, wanted: set[str]) -> tuple[dict[str, dict[str, int]], set[str]]:
    """Per cluster, how many user objects of each kind it hosts; and all their ids."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    ids: set[str] = set()
    for cid, kind, oid in db.query(USER_OBJECTS):
        if cid in wanted:
            counts[cid][kind] += 1
            ids.add(oid)
    return counts, ids


def _activity(db: Database, strategies: Iterable[StrategyRow]) -> dict[str, datetime]:
    # The strategies say how far back they look.
    window = int(activity_window_s(activity_lookback_s(strategies)))
    return {
        str(cid): ts
        for cid, ts in db.query(_ACTIVITY, (APPLICATION_NAME, min(window, 10**9)))
        if ts is not None
    }


def _cluster(
    row: tuple[Any, ...],
    replicas: list[Replica],
    objects: dict[str, int],
    activity: dict[str, datetime],
    auto_scaling: set[str],
    reconfiguration: Reconfiguration | None,
) -> Cluster:
    cid, name, managed, size, replication_factor, schedule = row
    return Cluster(
        id=cid,
        name=name,
        managed=bool(managed),
        size=size,
        replication_factor=None if replication_factor is None else int(replication_factor),
        schedule_type=schedule,
        auto_scaling=cid in auto_scaling,
        is_system=str(cid).startswith("s"),
        replicas=tuple(sorted(replicas, key=lambda r: r.name)),
        indexes=objects.get("index", 0),
        materialized_views=objects.get("materialized_view", 0),
        sources=objects.get("source", 0),
        sinks=objects.get("sink", 0),
        last_activity=activity.get(cid),
        reconfiguration=reconfiguration if managed else None,
    )
