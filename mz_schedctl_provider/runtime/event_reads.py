"""The event trigger's reads (engine/wake.py decides from them): five small statements per
poll whatever the fleet size, each alone in autocommit like the signals stage's.

1. the cursor: the newest controller write's server time (state, audit and lease rows), so a
   triggerer restart loses nothing, and the server's now();
2. and 3. the strategy and state rows (the store's own reads);
4. per cluster, the newest statement by another session since the cursor less the statement
   log's flush lag and a whole cycle's span (a query refused while the last cycle ran came
   after its signals read; the signals stage's activity relation and application-name filter);
5. the replicas, with their hydration, of only the clusters a condition watches (a suspended,
   bursting or resizing cluster), by id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mz_schedctl_provider.engine.wake import ReplicaSeen, WakeFacts, watched_clusters
from mz_schedctl_provider.runtime.catalog_reads import (
    HYDRATED_OBJECTS,
    REPLICA_HYDRATION_COLUMNS,
    USER_OBJECTS,
    ReplicaHydration,
)
from mz_schedctl_provider.runtime.db import (
    APPLICATION_NAME,
    Database,
    DatabaseError,
    is_missing_table,
)
from mz_schedctl_provider.runtime.signals import ACTIVITY_RELATION, LOG_FLUSH_LAG_S
from mz_schedctl_provider.runtime.store import ACTIONS, LEASES, STATE, Store

EVENT_STATEMENTS_PER_POLL = 5

_STATEMENTS_SINCE = (
    "SELECT cluster_id, max(began_at)"
    f" FROM {ACTIVITY_RELATION}"
    " WHERE cluster_id IS NOT NULL"
    " AND coalesce(application_name, '') <> %s"
    " AND began_at > %s"
    " GROUP BY cluster_id"
)
_WATCHED_REPLICAS = f"""
WITH objects AS ({USER_OBJECTS}), hydrated AS ({HYDRATED_OBJECTS})
SELECT c.id, r.name, r.size,{REPLICA_HYDRATION_COLUMNS}
FROM mz_catalog.mz_clusters c
JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id
WHERE c.id = ANY(%s::text[])
"""


# The longest a cycle runs from its signals read to its last write: the lease TTL's default (a
# cycle past it applies nothing anyway).
CYCLE_SPAN_S = 900.0


def cursor_sql(store: Store) -> str:
    """(now, newest state row, newest audit row, newest lease claim) in one statement: the
    lease claim counts so that a cycle still running holds the rate limit too."""
    return (
        "SELECT now(),"
        f" (SELECT max(updated_at) FROM {store.table(STATE)}),"
        f" (SELECT max(created_at) FROM {store.table(ACTIONS)}),"
        f" (SELECT max(claimed_at) FROM {store.table(LEASES)})"
    )


def read_wake_facts(
    db: Database, store: Store, *, log_flush_lag_s: float = LOG_FLUSH_LAG_S
) -> WakeFacts:
    """One poll's facts; before ``init`` (no tables) the cursor is None and nothing else is
    read that could fail."""
    try:
        now, *writes = db.query(cursor_sql(store), purpose="reading the event cursor")[0]
    except DatabaseError as exc:
        if not is_missing_table(exc):
            raise
        now = db.query("SELECT now()")[0][0]
        writes = []
    cursor = max((w for w in writes if w is not None), default=None)
    strategies = tuple(store.read_strategies())
    states = tuple(store.read_states())
    # A cycle reads its signals before it writes: a statement up to a whole cycle before the
    # newest write may have come after that cycle's read (a query refused while it ran). The
    # conditions themselves (e.g. newer than the suspend, no replica) drop what it acted on.
    since = (cursor or now) - timedelta(seconds=log_flush_lag_s + CYCLE_SPAN_S)
    statements: dict[str, datetime] = {
        str(cid): at
        for cid, at in db.query(_STATEMENTS_SINCE, (APPLICATION_NAME, since))
        if at is not None
    }
    watched = watched_clusters(strategies, states)
    replicas = tuple(
        ReplicaSeen(
            cluster_id=str(cid),
            name=str(name),
            size=None if size is None else str(size),
            hydrated=ReplicaHydration(
                str(name), bool(online), int(objects or 0), int(hydrated or 0)
            ).hydrated,
        )
        for cid, name, size, online, objects, hydrated in db.query(
            _WATCHED_REPLICAS, (watched,), purpose="reading the watched clusters' replicas"
        )
    )
    return WakeFacts(
        now=now,
        cursor=cursor,
        strategies=strategies,
        states=states,
        statements=statements,
        replicas=replicas,
        log_flush_lag_s=log_flush_lag_s,
    )
