"""Evidence that survives a lost state row (failed persist, crash before persist, wipe-state,
a predecessor's row of another version): which live replicas the controller created
(replica_scope "owned"), and what the newest suspend removed (resume without a remembered set;
a suspend that only partly ran). Pure: it reads ``Signals.replica_events``, never I/O.

The state table stays a hint: these facts come from the append-only audit trail
(mz_cluster_strategy_actions) and from Materialize's mz_internal.mz_cluster_replica_history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .models import Cluster, ReplicaEvent, Size

# Materialize's history has no "suspend" marker: the replicas dropped within this long of the
# newest drop count as one suspend (a suspend's drops run in one cycle, seconds apart; a
# rate-limited one spans cycles and is covered by the audit trail, which names its strategy).
SUSPEND_GROUP_S = 300.0
# Documented default when nothing says what the cluster had: one replica of this name, of the
# cheapest allowed size (a managed cluster: replication factor 1).
DEFAULT_REPLICA_NAME = "r1"
_FLOOR = datetime.min.replace(tzinfo=timezone.utc)

AUDIT = "the audit trail"
HISTORY = "mz_cluster_replica_history"


@dataclass(frozen=True)
class SuspendEvidence:
    """What the newest suspend of a cluster removed, and where that is known from."""

    replicas: tuple[tuple[str, str], ...]
    # When the suspend began (its first drop): activity after it is a reason to resume.
    at: datetime | None
    source: str
    # Managed clusters: how many replicas the suspend removed (the factor to restore).
    replication_factor: int | None = None


def cluster_events(events: Iterable[ReplicaEvent], cluster_id: str) -> tuple[ReplicaEvent, ...]:
    return tuple(e for e in events if e.cluster_id == cluster_id)


def _order(e: ReplicaEvent) -> tuple[datetime, bool]:
    # At one instant the controller's own row wins: its outcome is written after the DDL.
    return (e.at or _FLOOR, e.source == "audit")


def owned_by_evidence(*, cluster: Cluster, events: Iterable[ReplicaEvent]) -> frozenset[str]:
    """Live replicas whose newest event is the controller's own create (an executed outcome,
    or an intent whose outcome was never written: the replica exists, so the DDL ran). A later
    drop of that name, by the controller or anyone (Materialize's history), means the live one
    is a namesake someone else created: replica ids are never reused, names are."""
    newest: dict[str, ReplicaEvent] = {}
    for e in sorted(events, key=_order):
        if e.event == "dropped" and not e.confirmed:
            continue  # a drop that may not have run proves nothing
        newest[e.replica_name] = e
    ours = {n for n, e in newest.items() if e.source == "audit" and e.event == "created"}
    return frozenset(r.name for r in cluster.replicas if r.name in ours)


def audit_suspend(
    *, events: Iterable[ReplicaEvent], suspenders: frozenset[str]
) -> SuspendEvidence | None:
    """The executed drops of a suspending strategy since the controller's last create on this
    cluster (a resume creates): what the newest suspend removed, even if it only partly ran."""
    audit = sorted((e for e in events if e.source == "audit" and e.confirmed), key=_order)
    last_create = max((i for i, e in enumerate(audit) if e.event == "created"), default=-1)
    drops = [
        e
        for e in audit[last_create + 1 :]
        if e.event == "dropped" and e.strategy in suspenders and e.size is not None
    ]
    if not drops:
        return None
    return SuspendEvidence(replicas=_pairs(drops), at=drops[0].at, source=AUDIT)


def history_suspend(*, cluster: Cluster, events: Iterable[ReplicaEvent]) -> SuspendEvidence | None:
    """The replicas Materialize dropped last (within SUSPEND_GROUP_S of the newest drop), unless
    a live replica was created after them (the cluster was rebuilt since)."""
    history = [e for e in events if e.source == "replica_history" and e.at is not None]
    if not history:
        return None
    newest = max(e.at for e in history if e.at is not None)
    if any(r.created_at is not None and r.created_at > newest for r in cluster.replicas):
        return None
    cutoff = newest - timedelta(seconds=SUSPEND_GROUP_S)
    group = sorted(
        (e for e in history if e.at is not None and e.at >= cutoff and e.size is not None),
        key=lambda e: (e.replica_name, e.at or _FLOOR),
    )
    if not group:
        return None
    began = min(e.at for e in group if e.at is not None)
    factor = len({e.replica_name for e in group}) if cluster.managed else None
    return SuspendEvidence(
        replicas=_pairs(group),
        at=began,
        source=HISTORY,
        replication_factor=factor,
    )


def last_suspend(
    *, cluster: Cluster, events: Iterable[ReplicaEvent], suspenders: frozenset[str]
) -> SuspendEvidence | None:
    """Best evidence first: the audit trail (it names the strategy), then Materialize's replica
    history (covers a predecessor's suspend and a pruned or missing audit)."""
    mine = tuple(events)
    found = None if cluster.managed else audit_suspend(events=mine, suspenders=suspenders)
    return found or history_suspend(cluster=cluster, events=mine)


def default_replica(sizes: Mapping[str, Size]) -> tuple[str, str] | None:
    """(DEFAULT_REPLICA_NAME, the cheapest allowed size), or None when no size is allowed."""
    allowed = [s for s in sizes.values() if s.allowed]
    if not allowed:
        return None
    cheapest = min(allowed, key=lambda s: (s.credits_per_hour, s.name))
    return DEFAULT_REPLICA_NAME, cheapest.name


def _pairs(events: Iterable[ReplicaEvent]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for e in events:
        if e.size is not None and e.replica_name not in seen:
            seen[e.replica_name] = e.size
    return tuple(seen.items())
