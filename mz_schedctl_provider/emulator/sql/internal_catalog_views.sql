CREATE VIEW mz_internal.mz_cluster_replica_utilization AS
SELECT r.id AS replica_id, 0::bigint AS process_id,
       CASE WHEN r.online THEN COALESCE(r.cpu_percent, 1.0) END::float8 AS cpu_percent,
       CASE WHEN r.online THEN COALESCE(r.memory_percent, 5.0) END::float8 AS memory_percent,
       NULL::float8 AS disk_percent,
       CASE WHEN r.online THEN COALESCE(r.memory_percent, 5.0) END::float8 AS heap_percent
FROM mz_emulator.replica_now r;

CREATE VIEW mz_internal.mz_compute_hydration_statuses AS
SELECT h.object_id, h.replica_id,
       COALESCE(h.hydrated_at <= h.now, false) AS hydrated,
       CASE WHEN h.hydrated_at <= h.now THEN h.hydrated_at - h.hydration_began_at END
           AS hydration_time
FROM mz_emulator.hydration h
WHERE h.kind IN ('index', 'materialized-view');

CREATE VIEW mz_internal.mz_hydration_statuses AS
SELECT h.object_id, h.replica_id, COALESCE(h.hydrated_at <= h.now, false) AS hydrated
FROM mz_emulator.hydration h
UNION ALL
-- Objects on a cluster without replicas have no status: replica_id NULL, hydrated false.
SELECT o.id, NULL::text, false
FROM mz_emulator.items o
WHERE o.kind IN ('index', 'materialized-view', 'source', 'sink')
  AND NOT EXISTS (SELECT 1 FROM mz_emulator.replicas r
                  WHERE r.cluster_id = o.cluster_id AND r.dropped_at IS NULL);

CREATE VIEW mz_internal.mz_statement_execution_history AS
SELECT id, prepared_statement_id, sample_rate, cluster_id, application_name, cluster_name,
       database_name, search_path, transaction_isolation, execution_timestamp, transaction_id,
       transient_index_id, '{}'::text[] AS params, mz_version, began_at, finished_at,
       finished_status, error_message, result_size, rows_returned, execution_strategy
FROM mz_emulator.statement_log_visible;

CREATE VIEW mz_internal.mz_statement_execution_history_redacted AS
SELECT id, prepared_statement_id, sample_rate, cluster_id, application_name, cluster_name,
       database_name, search_path, transaction_isolation, execution_timestamp, transaction_id,
       transient_index_id, mz_version, began_at, finished_at, finished_status, result_size,
       rows_returned, execution_strategy
FROM mz_emulator.statement_log_visible;

CREATE VIEW mz_internal.mz_recent_activity_log_redacted AS
SELECT l.id AS execution_id, l.sample_rate, l.cluster_id, l.application_name, l.cluster_name,
       l.database_name, l.search_path, l.transaction_isolation, l.execution_timestamp,
       l.transient_index_id, l.mz_version, l.began_at, l.finished_at, l.finished_status,
       l.result_size, l.rows_returned, l.execution_strategy, l.transaction_id,
       l.prepared_statement_id,
       sha256(convert_to(COALESCE(l.sql, ''), 'UTF8')) AS sql_hash,
       ''::text AS prepared_statement_name, l.session_id, l.began_at AS prepared_at,
       lower(substring(ltrim(COALESCE(l.sql, '')) FROM '^[A-Za-z]+')) AS statement_type,
       0::bigint AS throttled_count, l.application_name AS initial_application_name,
       'materialize'::text AS authenticated_user,
       regexp_replace(COALESCE(l.sql, ''), '''([^'']|'''')*''', '''<REDACTED>''', 'g')
           AS redacted_sql
FROM mz_emulator.statement_log_visible l, mz_emulator.env e
WHERE l.began_at > e.now - interval '1 day';

CREATE VIEW mz_internal.mz_cluster_schedules AS
SELECT c.id AS cluster_id, c.schedule AS type,
       c.hydration_time_estimate AS refresh_hydration_time_estimate
FROM mz_emulator.clusters c
WHERE c.managed;

CREATE VIEW mz_internal.mz_cluster_auto_scaling_strategies AS
SELECT c.id AS cluster_id, c.auto_scaling AS strategy, '{}'::jsonb AS state
FROM mz_emulator.clusters c
WHERE c.auto_scaling IS NOT NULL;

CREATE VIEW mz_internal.mz_cluster_reconfigurations AS
SELECT r.cluster_id, r.status, r.deadline, r.on_timeout, r.target, r.changes
FROM mz_emulator.reconfigurations r
ORDER BY r.id;
