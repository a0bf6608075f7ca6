"""Definitions the whole engine shares: hydrated, crash, ownership, names, cost, time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from .evidence import SuspendEvidence
from .models import Cluster, Replica, Size

PREDECESSOR_TARGET_PREFIX = "r_"
PREDECESSOR_BURST_SUFFIX = "_burst"


def is_crash(*, status: str | None, reason: str | None) -> bool:
    """A crash is any offline status except ``initializing`` (a new replica starting)."""
    return status == "offline" and reason != "initializing"


def is_oom(*, status: str | None, reason: str | None) -> bool:
    return status == "offline" and reason == "oom-killed"


def is_hydrated(*, online: bool, objects: int, hydrated_objects: int) -> bool:
    """The one definition of a hydrated replica: online, with every user object of its cluster
    hydrated on it (objects missing from the hydration view count as not hydrated); a cluster
    without user objects needs only the replica online."""
    return online and hydrated_objects >= objects


def replica_hydrated(*, cluster: Cluster, replica: Replica) -> tuple[bool, str]:
    """(hydrated, why), by :func:`is_hydrated`."""
    if replica.status == "offline":
        return False, f"offline ({replica.status_reason or 'no reason'})"
    total = cluster.objects_to_hydrate
    online = replica.status == "online"
    hydrated = is_hydrated(online=online, objects=total, hydrated_objects=replica.hydrated_objects)
    if total == 0:
        return hydrated, "online, no objects to hydrate" if hydrated else "not online yet"
    if not online:
        return False, "not online yet"
    return hydrated, f"{min(replica.hydrated_objects, total)}/{total} objects hydrated"


def free_name(*, preferred: str, taken: Iterable[str]) -> tuple[str, str]:
    """(name, why): the preferred name, or ``<preferred>_<n>`` when another replica has it."""
    used = set(taken)
    if preferred not in used:
        return preferred, ""
    n = 2
    while f"{preferred}_{n}" in used:
        n += 1
    name = f"{preferred}_{n}"
    return name, f"name {preferred!r} is taken, using {name!r} (never drop-then-create)"


def is_predecessor_name(*, cluster: Cluster, name: str, sizes: Mapping[str, Size]) -> bool:
    """Replicas mz-clusterctl created: ``r_<size>`` and ``<cluster name>_burst``."""
    if name == f"{cluster.name}{PREDECESSOR_BURST_SUFFIX}":
        return True
    return name.startswith(PREDECESSOR_TARGET_PREFIX) and name[2:] in sizes


def credits_of(*, sizes: Mapping[str, Size], size: str | None) -> float:
    """Credits per hour of a size; 0 for a size Materialize no longer lists."""
    if size is None or size not in sizes:
        return 0.0
    return sizes[size].credits_per_hour


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def latest(*stamps: datetime | None) -> datetime | None:
    present = [s for s in stamps if s is not None]
    return max(present) if present else None


def iso(ts: datetime) -> str:
    """A timestamp as ISO 8601 text; naive timestamps are refused (clocks must not mix)."""
    if ts.tzinfo is None:
        raise ValueError(f"naive timestamp {ts!r}: every timestamp must carry its time zone")
    return ts.isoformat()


def parse_ts(text: object) -> datetime | None:
    """An aware timestamp from ISO text, or None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ClusterContext:
    """What a strategy may look at besides its config and state: facts, never I/O."""

    cluster: Cluster
    sizes: Mapping[str, Size]
    owned: frozenset[str]
    logging_visible: bool
    controller_cluster: str | None
    # Strategies that empty a cluster on purpose (they declare suspends_on_purpose): a
    # keep-on strategy may undo their removals. Given by the planner from the registry.
    suspenders: frozenset[str] = frozenset()
    # Signals.log_flush_lag_s: activity of the last this-many seconds may not be logged yet.
    log_flush_lag_s: float = 5.0
    # What the newest suspend removed, from the audit trail or Materialize's replica history
    # (evidence.py): what a suspending strategy resumes when its state remembers nothing.
    suspend_evidence: SuspendEvidence | None = None

    def hydrated(self, name: str) -> bool:
        replica = self.cluster.replica(name)
        return replica is not None and replica_hydrated(cluster=self.cluster, replica=replica)[0]

    def exists(self, name: str) -> bool:
        return self.cluster.replica(name) is not None

    def owned_replicas(self) -> tuple[Replica, ...]:
        return tuple(r for r in self.cluster.replicas if r.name in self.owned)

    def taken_names(self) -> frozenset[str]:
        return frozenset(r.name for r in self.cluster.replicas)

    def credits(self, size: str | None) -> float:
        return credits_of(sizes=self.sizes, size=size)
