"""The catalog facts the controller reads, each defined once: a cluster's user objects, the
objects hydrated on each replica, and, for one cluster, each replica's hydration. The signals
stage reads them for the whole fleet; the executor's pre-drop re-check, the hook, the sensor
and the trigger read them for one cluster. "Hydrated" itself is the engine's rule
(:func:`mz_schedctl_provider.engine.facts.is_hydrated`), applied to these counts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mz_schedctl_provider.engine.facts import is_hydrated
from mz_schedctl_provider.runtime.db import Database

CLUSTER_NAMES = "SELECT id, name FROM mz_catalog.mz_clusters"

# A cluster's user objects: indexes, materialized views, sources and sinks with "u" ids
# (clusters also host system introspection indexes, "si" ids). Subsources and progress
# collections hydrate with their parent source, so only real sources count.
USER_OBJECTS = (
    "SELECT cluster_id, 'index' AS kind, id FROM mz_catalog.mz_indexes"
    " WHERE left(id, 1) = 'u' AND cluster_id IS NOT NULL"
    " UNION ALL SELECT cluster_id, 'materialized_view', id FROM mz_catalog.mz_materialized_views"
    " WHERE left(id, 1) = 'u'"
    " UNION ALL SELECT cluster_id, 'source', id FROM mz_catalog.mz_sources"
    " WHERE left(id, 1) = 'u' AND cluster_id IS NOT NULL"
    " AND type NOT IN ('subsource', 'progress')"
    " UNION ALL SELECT cluster_id, 'sink', id FROM mz_catalog.mz_sinks"
    " WHERE left(id, 1) = 'u' AND cluster_id IS NOT NULL"
)

# (replica, user object) pairs hydrated on that replica; objects missing from the view are not.
HYDRATED_OBJECTS = (
    "SELECT replica_id, object_id FROM mz_internal.mz_hydration_statuses"
    " WHERE hydrated AND replica_id IS NOT NULL AND left(object_id, 1) = 'u'"
)

# For replica ``r`` of cluster ``c``, with the CTEs ``objects`` (USER_OBJECTS) and ``hydrated``
# (HYDRATED_OBJECTS) in scope: whether every process is online, how many user objects the
# cluster hosts and how many of them are hydrated on it. Correlated counts touch only this
# cluster's objects (one cluster, or a few, must cost about one round trip).
REPLICA_HYDRATION_COLUMNS = """
       EXISTS (SELECT 1 FROM mz_internal.mz_cluster_replica_statuses s
               WHERE s.replica_id = r.id AND s.status = 'online')
       AND NOT EXISTS (SELECT 1 FROM mz_internal.mz_cluster_replica_statuses s
                       WHERE s.replica_id = r.id AND s.status <> 'online') AS online,
       (SELECT count(*) FROM objects o WHERE o.cluster_id = c.id) AS objects,
       (SELECT count(*) FROM objects o JOIN hydrated h ON h.object_id = o.id
        WHERE o.cluster_id = c.id AND h.replica_id = r.id) AS hydrated"""

# Per replica of one cluster (by name, as a user names it): its name and hydration columns.
_ONE_CLUSTER = f"""
WITH objects AS ({USER_OBJECTS}), hydrated AS ({HYDRATED_OBJECTS})
SELECT r.name,{REPLICA_HYDRATION_COLUMNS}
FROM mz_catalog.mz_clusters c
JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id
WHERE {{where}}
ORDER BY r.name
"""
REPLICA_HYDRATION_BY_NAME = _ONE_CLUSTER.format(where="c.name = %s")


@dataclass(frozen=True)
class ReplicaHydration:
    """One replica of a cluster as :data:`REPLICA_HYDRATION_COLUMNS` describe it."""

    name: str
    online: bool
    objects: int
    hydrated_objects: int

    @property
    def hydrated(self) -> bool:
        return is_hydrated(
            online=self.online, objects=self.objects, hydrated_objects=self.hydrated_objects
        )


def replica_hydration(rows: Iterable[tuple[Any, ...]]) -> list[ReplicaHydration]:
    """The rows of REPLICA_HYDRATION_BY_NAME, sync or async, as replicas."""
    return [
        ReplicaHydration(str(name), bool(online), int(objects or 0), int(hydrated or 0))
        for name, online, objects, hydrated in rows
    ]


def hydrated_names(rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """Names of the hydrated replicas among REPLICA_HYDRATION_BY_NAME's rows."""
    return [r.name for r in replica_hydration(rows) if r.hydrated]


def cluster_names(db: Database) -> list[tuple[str, str]]:
    """(id, name) of every cluster."""
    return [(str(i), str(n)) for i, n in db.query(CLUSTER_NAMES, purpose="reading cluster names")]
