"""Replica status and lifetime views, as Materialize writes them.

Status history (``mz_internal.mz_cluster_replica_status_history``). Materialize gives a new
replica the status offline/``initializing`` *in memory only*
(``ClusterReplicaStatuses::initialize_cluster_replica_statuses``, src/adapter/src/coord.rs) and
appends a history row only when the orchestrator reports a status that differs from the
current one (``message_cluster_event``, src/adapter/src/coord/message_handler.rs). No
orchestrator reports ``initializing`` for a process: the process orchestrator of the docker
image reports online when it spawns the process and offline with reason NULL when it exits,
whatever killed it, and relaunches it (src/orchestrator-process/src/lib.rs,
``ProcessStatus::NotReady => ServiceStatus::Offline(None)``); Kubernetes (Cloud) reports
``oom-killed`` for an OOM-killed container and offline with reason NULL for any other pod that
is not ready, a pod still starting included (src/orchestrator-kubernetes/src/lib.rs). So on the
docker image a new replica has no history row until it is online; on Kubernetes its first row
may be offline/NULL. Either way an offline row before the first online one is start-up.

The emulator derives the rows from its incarnations (one per process lifetime): an online row
when the process came up, an offline row when it ended (``end_reason``: NULL, or
``oom-killed`` for ``inject_oom``, which follows Kubernetes/Cloud; on the docker image an OOM
reads NULL like any other exit).

Current status (``mz_cluster_replica_statuses``): the newest history row of each live replica,
or offline/``initializing`` since its creation while it has none, like Materialize's in-memory
state.

Lifetimes (``mz_internal.mz_cluster_replica_history``): Materialize's view over the audit log
(src/catalog/src/builtin.rs, ``MZ_CLUSTER_REPLICA_HISTORY``): one row per user replica ever
created, with the size, cluster name and replica name of its create event, its drop time and the
size's credits per hour. System clusters (``s`` ids) have no audit events, so no rows.
"""

from __future__ import annotations

SQL = """
CREATE VIEW mz_internal.mz_cluster_replica_status_history AS
SELECT h.replica_id, h.process_id, h.status, h.reason, h.occurred_at
FROM (
    -- The process came up (it did unless it ended or was dropped while starting).
    SELECT i.replica_id, 0::bigint AS process_id, 'online'::text AS status,
           NULL::text AS reason, i.started_at + i.startup AS occurred_at, 1 AS seq
    FROM mz_emulator.incarnations i
    JOIN mz_emulator.replicas r ON r.id = i.replica_id
    WHERE (i.ended_at IS NULL OR i.ended_at >= i.started_at + i.startup)
      AND (r.dropped_at IS NULL OR r.dropped_at >= i.started_at + i.startup)
    UNION ALL
    -- The process ended: NULL (any exit on the docker image) or oom-killed.
    SELECT i.replica_id, 0::bigint, 'offline', i.end_reason, i.ended_at, 2
    FROM mz_emulator.incarnations i
    WHERE i.ended_at IS NOT NULL
) h, mz_emulator.env e
WHERE h.occurred_at <= e.now
ORDER BY h.occurred_at, h.seq;

CREATE VIEW mz_internal.mz_cluster_replica_statuses AS
SELECT r.id AS replica_id, 0::bigint AS process_id,
       COALESCE(h.status, 'offline') AS status,
       CASE WHEN h.status IS NULL THEN 'initializing' ELSE h.reason END AS reason,
       COALESCE(h.occurred_at, r.created_at) AS updated_at
FROM mz_emulator.replicas r
LEFT JOIN (
    -- At one instant an exit follows the start it ends: offline wins the tie.
    SELECT DISTINCT ON (s.replica_id) s.replica_id, s.status, s.reason, s.occurred_at
    FROM mz_internal.mz_cluster_replica_status_history s
    ORDER BY s.replica_id, s.occurred_at DESC, CASE s.status WHEN 'offline' THEN 0 ELSE 1 END
) h ON h.replica_id = r.id
WHERE r.dropped_at IS NULL
ORDER BY r.id;

CREATE VIEW mz_internal.mz_cluster_replica_history AS
SELECT r.id AS replica_id, r.size, r.cluster_id, r.created_cluster_name AS cluster_name,
       r.created_name AS replica_name, r.created_at, r.dropped_at, s.credits_per_hour
FROM mz_emulator.replicas r
LEFT JOIN mz_emulator.sizes s ON s.size = r.size
WHERE r.cluster_id NOT LIKE 's%';
"""
