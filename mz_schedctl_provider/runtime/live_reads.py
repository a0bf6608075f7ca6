"""What apply reads of the live catalog immediately before its DDL phase: for every cluster the
plan acts on, its current name and configuration and each replica with its hydration, all in
one statement (and the running graceful reconfigurations in a second, only when the plan alters
a managed cluster). The executor's single re-check of one cluster uses the same statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mz_schedctl_provider.runtime.catalog_reads import (
    HYDRATED_OBJECTS,
    REPLICA_HYDRATION_COLUMNS,
    USER_OBJECTS,
    ReplicaHydration,
)
from mz_schedctl_provider.runtime.db import Database, DatabaseError

# Per cluster (by id: a rename since the plan must not matter) and replica: the cluster's name
# and configuration, the replica's id and size, whether every process is online, how many user
# objects the cluster hosts and how many are hydrated on the replica. A cluster without
# replicas has one row with NULL replica columns; a cluster that is gone has none.
_LIVE = f"""
WITH objects AS ({USER_OBJECTS}), hydrated AS ({HYDRATED_OBJECTS}),
object_counts AS (SELECT cluster_id, count(*) AS n FROM objects GROUP BY cluster_id),
hydrated_counts AS (
  SELECT h.replica_id, count(*) AS n FROM hydrated h JOIN objects o ON o.id = h.object_id
  GROUP BY h.replica_id),
statuses AS (
  SELECT replica_id, bool_and(status = 'online') AS online
  FROM mz_internal.mz_cluster_replica_statuses GROUP BY replica_id)
SELECT c.id, c.name, c.managed, c.size, c.replication_factor, r.id, r.name, r.size,
       coalesce(s.online, false), coalesce(oc.n, 0), coalesce(hc.n, 0)
FROM mz_catalog.mz_clusters c
LEFT JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id
LEFT JOIN statuses s ON s.replica_id = r.id
LEFT JOIN object_counts oc ON oc.cluster_id = c.id
LEFT JOIN hydrated_counts hc ON hc.replica_id = r.id
WHERE c.id IN ({{marks}})
"""

# The same rows for a few clusters: correlated counts touch only their objects, where the
# aggregates above scan the fleet's (a single re-check must cost about one round trip).
_FEW = f"""
WITH objects AS ({USER_OBJECTS}), hydrated AS ({HYDRATED_OBJECTS})
SELECT c.id, c.name, c.managed, c.size, c.replication_factor,
       r.id, r.name, r.size,{REPLICA_HYDRATION_COLUMNS}
FROM mz_catalog.mz_clusters c
LEFT JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id
WHERE c.id IN ({{marks}})
"""
_FEW_MAX = 4

# Graceful reconfigurations running in the background (v26.35+; older releases lack it).
_RECONFIGURING = (
    "SELECT cluster_id, target ->> 'size', target ->> 'replication_factor'"
    " FROM mz_internal.mz_cluster_reconfigurations"
    " WHERE status = 'in-progress' AND cluster_id IN ({marks})"
)


@dataclass(frozen=True)
class LiveReplica:
    """One replica as apply read it."""

    id: str
    name: str
    size: str | None
    hydration: ReplicaHydration

    @property
    def hydrated(self) -> bool:
        return self.hydration.hydrated


@dataclass(frozen=True)
class LiveCluster:
    """One cluster as apply read it."""

    id: str
    name: str
    managed: bool
    size: str | None
    replication_factor: int | None
    replicas: dict[str, LiveReplica] = field(default_factory=dict)
    # (size, replication factor) targets of the graceful reconfigurations running.
    reconfiguring: tuple[tuple[str | None, str | None], ...] = ()


def live_sql(count: int) -> str:
    """The read of ``count`` clusters by id (parameters: the ids)."""
    template = _FEW if count <= _FEW_MAX else _LIVE
    return template.format(marks=", ".join(["%s"] * max(count, 1)))


def parse_live(rows: Sequence[tuple[Any, ...]]) -> dict[str, LiveCluster]:
    """The rows of :func:`live_sql`, by cluster id (a cluster that is gone is absent)."""
    out: dict[str, LiveCluster] = {}
    for cid, name, managed, size, factor, rid, rname, rsize, online, objects, hydrated in rows:
        key = str(cid)
        cluster = out.get(key)
        if cluster is None:
            cluster = LiveCluster(
                id=key,
                name=str(name),
                managed=bool(managed),
                size=None if size is None else str(size),
                replication_factor=None if factor is None else int(factor),
            )
            out[key] = cluster
        if rid is None:
            continue
        hydration = ReplicaHydration(str(rname), bool(online), int(objects), int(hydrated))
        cluster.replicas[str(rname)] = LiveReplica(
            str(rid), str(rname), None if rsize is None else str(rsize), hydration
        )
    return out


def read_live(db: Database, cluster_ids: Sequence[str], *, purpose: str) -> dict[str, LiveCluster]:
    """One statement: every one of these clusters (none if the list is empty)."""
    ids = list(dict.fromkeys(cluster_ids))
    if not ids:
        return {}
    return parse_live(db.query(live_sql(len(ids)), ids, purpose=purpose))


def with_reconfigurations(
    db: Database, live: dict[str, LiveCluster], cluster_ids: Sequence[str]
) -> dict[str, LiveCluster]:
    """The clusters with the graceful reconfigurations running on them, in one statement; a
    release without background reconfigurations has none."""
    ids = [c for c in dict.fromkeys(cluster_ids) if c in live]
    if not ids:
        return live
    try:
        rows = db.query(
            _RECONFIGURING.format(marks=", ".join(["%s"] * len(ids))),
            ids,
            purpose="reading running graceful reconfigurations",
        )
    except DatabaseError:
        return live  # a release without background reconfigurations
    running: dict[str, list[tuple[str | None, str | None]]] = {}
    for cid, size, factor in rows:
        running.setdefault(str(cid), []).append(
            (None if size is None else str(size), None if factor is None else str(factor))
        )
    out = dict(live)
    for cid, targets in running.items():
        if cid in out:
            out[cid] = replace(out[cid], reconfiguring=tuple(targets))
    return out
