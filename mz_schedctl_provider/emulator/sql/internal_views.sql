CREATE VIEW mz_emulator.env AS
SELECT pg_catalog.now() + c."offset" AS now,
       (SELECT value::interval FROM mz_emulator.settings
         WHERE name = 'emulator_startup_delay') AS startup_delay,
       (SELECT value::interval FROM mz_emulator.settings
         WHERE name = 'emulator_hydration_delay') AS hydration_base
FROM mz_emulator.clock c;

-- Live replicas with their current incarnation and whether they are online now.
CREATE VIEW mz_emulator.replica_now AS
SELECT r.id, r.name, r.cluster_id, r.size, r.pending, r.created_at,
       r.cpu_percent, r.memory_percent,
       i.n, i.started_at, i.started_at + i.startup AS online_at,
       (i.n IS NOT NULL
        AND i.started_at + i.startup <= e.now
        AND (i.ended_at IS NULL OR (i.ended_at > e.now AND i.ended_at >= i.started_at + i.startup))
       ) AS online,
       COALESCE(c.hydration_delay, e.hydration_base)
           * sqrt(0.25 / s.credits_per_hour)::float8 AS hydration_delay,
       e.now
FROM mz_emulator.env e
CROSS JOIN mz_emulator.replicas r
JOIN mz_emulator.clusters c ON c.id = r.cluster_id
LEFT JOIN mz_emulator.sizes s ON s.size = r.size
LEFT JOIN LATERAL (
    SELECT * FROM mz_emulator.incarnations i
    WHERE i.replica_id = r.id AND i.started_at <= e.now
    ORDER BY i.n DESC LIMIT 1
) i ON true
WHERE r.dropped_at IS NULL;

-- (object, replica) pairs with the instant the object is (or will be) hydrated on the replica
-- in its current incarnation; NULL when the replica is not online.
CREATE VIEW mz_emulator.hydration AS
SELECT o.id AS object_id, o.kind, r.id AS replica_id, r.cluster_id,
       CASE WHEN r.online THEN
           GREATEST(r.online_at, o.created_at)
           + CASE WHEN o.id LIKE 's%' THEN interval '0'
                  -- An override wins over the stored estimate (1 s if none was stored).
                  ELSE COALESCE(r.hydration_delay, x.delay, interval '1 second') END
       END AS hydrated_at,
       -- Materialize times hydration on the replica from the dataflow's installation, which
       -- needs the process up: hydration_time excludes the start-up.
       GREATEST(r.online_at, o.created_at) AS hydration_began_at,
       r.now
FROM mz_emulator.items o
JOIN mz_emulator.replica_now r ON r.cluster_id = o.cluster_id
LEFT JOIN mz_emulator.hydration_estimates x ON x.object_id = o.id AND x.replica_id = r.id
WHERE o.kind IN ('index', 'materialized-view', 'source', 'sink');

-- When each live replica became ready: online and every object on its cluster hydrated.
CREATE VIEW mz_emulator.replica_ready AS
SELECT r.id AS replica_id, r.cluster_id, r.pending,
       CASE WHEN r.online THEN
           GREATEST(r.online_at, (SELECT max(h.hydrated_at) FROM mz_emulator.hydration h
                                  WHERE h.replica_id = r.id))
       END AS ready_at,
       r.now
FROM mz_emulator.replica_now r;
