-- Back-dated history for tests and demos of the cost report: rows written into the same
-- tables, with the same values, as the emulator's own DDL and statement logging would have
-- written at that earlier instant of the emulated clock. Nothing in the future, nothing that
-- contradicts the catalog (a live replica's name stays unique, a refusal needs a cluster that
-- had no replica).

CREATE FUNCTION mz_emulator.backdate_replica(cluster text, replica text, size text,
                                             created_at timestamptz,
                                             dropped_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    v_cluster record;
    v_id text;
    v_now timestamptz := mz_emulator.now();
BEGIN
    SELECT * INTO v_cluster FROM clusters WHERE id = mz_emulator.find_cluster(cluster);
    IF v_cluster.id LIKE 's%' THEN
        RAISE EXCEPTION 'system cluster ''%'' cannot be modified', cluster USING ERRCODE = 'XX000';
    END IF;
    -- A live replica of a managed cluster would contradict its SIZE / REPLICATION FACTOR.
    IF dropped_at IS NULL AND v_cluster.managed THEN
        RAISE EXCEPTION 'cannot modify managed cluster %', cluster USING ERRCODE = 'XX000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM sizes s WHERE s.size = backdate_replica.size) THEN
        RAISE EXCEPTION 'unknown cluster replica size %', size USING ERRCODE = 'XX000';
    END IF;
    IF created_at IS NULL OR created_at > v_now OR dropped_at > v_now
       OR dropped_at < created_at OR created_at < v_cluster.created_at THEN
        RAISE EXCEPTION 'mz_emulator.backdate_replica: need cluster creation <= created_at '
            '<= dropped_at <= now() (got % .. %)', created_at, dropped_at
            USING ERRCODE = '22023';
    END IF;
    v_id := 'u' || mz_emulator.next_id('replica');
    INSERT INTO replicas (id, name, cluster_id, size, owner_id, pending, created_at,
                          created_name, created_cluster_name, dropped_at)
    VALUES (v_id, replica, v_cluster.id, size, 'u1', false, created_at, replica,
            v_cluster.name, dropped_at);
    PERFORM mz_emulator.start_incarnation(v_id, created_at);
    IF dropped_at IS NULL THEN
        PERFORM mz_emulator.record_hydration_estimates(NULL, v_id);
    END IF;
    RETURN v_id;
END $$;
COMMENT ON FUNCTION mz_emulator.backdate_replica(text, text, text, timestamptz, timestamptz) IS
  'Adds a user replica to the named cluster as if CREATE CLUSTER REPLICA had run at '
  'created_at (and DROP CLUSTER REPLICA at dropped_at; NULL: still live, unmanaged clusters '
  'only): mz_cluster_replica_history, the status history and, while live, the catalog show '
  'it exactly as a replica made then. Returns its id.';

CREATE FUNCTION mz_emulator.backdate_refused_query(cluster text, began_at timestamptz,
                                                   application_name text DEFAULT 'psql')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    v_cluster text := mz_emulator.find_cluster(cluster);
    v_id uuid := gen_random_uuid();
BEGIN
    IF began_at IS NULL OR began_at > mz_emulator.now() THEN
        RAISE EXCEPTION 'mz_emulator.backdate_refused_query: began_at must be in the past'
            USING ERRCODE = '22023';
    END IF;
    -- Materialize refuses the query only when the cluster had no replica at that instant.
    IF EXISTS (SELECT 1 FROM replicas r WHERE r.cluster_id = v_cluster
               AND r.created_at <= began_at AND (r.dropped_at IS NULL OR r.dropped_at > began_at))
    THEN
        RAISE EXCEPTION 'mz_emulator.backdate_refused_query: cluster % had a replica at %',
            cluster, began_at USING ERRCODE = '22023';
    END IF;
    -- What the proxy logs for the refusal (session.py): it fails at once, no rows, and the
    -- strategy is recorded with successful ends only (logflush's visible view).
    INSERT INTO statement_log (id, session_id, prepared_statement_id, sample_rate, cluster_id,
        application_name, cluster_name, database_name, search_path, transaction_isolation,
        execution_timestamp, transaction_id, transient_index_id, mz_version, began_at,
        finished_at, finished_status, error_message, result_size, rows_returned,
        execution_strategy, sql)
    VALUES (v_id, gen_random_uuid(), gen_random_uuid(),
        -- The rate a default session logs at (activity.py: min(session, system max)).
        LEAST(COALESCE(mz_emulator.setting('statement_logging_default_sample_rate'), '1')::float8,
              COALESCE(mz_emulator.setting('statement_logging_max_sample_rate'), '1')::float8),
        v_cluster,
        backdate_refused_query.application_name, cluster, 'materialize', ARRAY['public'],
        'strict serializable', floor(extract(epoch FROM began_at) * 1000), NULL, NULL,
        mz_emulator.setting('mz_version'), began_at, began_at, 'error',
        format('CLUSTER "%s" has no replicas available to service request', cluster),
        NULL, NULL, 'standard', 'SELECT * FROM t /* mz_emulator.backdate_refused_query */');
    RETURN v_id;
END $$;
COMMENT ON FUNCTION mz_emulator.backdate_refused_query(text, timestamptz, text) IS
  'Logs, at began_at, a query the named cluster refused because it had no replica '
  '(finished_status error, CLUSTER "<c>" has no replicas available to service request), '
  'as the emulator logs one it refuses now (whatever sampling would have picked, with the '
  'sample rate of a default session). Returns the statement id.';

CREATE FUNCTION mz_emulator.backdate_statement(cluster text, began_at timestamptz,
                                               finished_at timestamptz,
                                               application_name text DEFAULT 'psql')
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    v_cluster text := mz_emulator.find_cluster(cluster);
    v_id uuid := gen_random_uuid();
BEGIN
    IF began_at IS NULL OR finished_at IS NULL OR finished_at < began_at
       OR finished_at > mz_emulator.now() THEN
        RAISE EXCEPTION 'mz_emulator.backdate_statement: need began_at <= finished_at <= now()'
            USING ERRCODE = '22023';
    END IF;
    -- A query runs only on a cluster with a replica (else Materialize refuses it at once:
    -- backdate_refused_query).
    IF NOT EXISTS (SELECT 1 FROM replicas r WHERE r.cluster_id = v_cluster
                   AND r.created_at <= began_at
                   AND (r.dropped_at IS NULL OR r.dropped_at > began_at)) THEN
        RAISE EXCEPTION 'mz_emulator.backdate_statement: cluster % had no replica at %',
            cluster, began_at USING ERRCODE = '22023';
    END IF;
    -- What the proxy logs for a SELECT that read an empty table on the cluster (session.py,
    -- activity.py): a success returning no rows.
    INSERT INTO statement_log (id, session_id, prepared_statement_id, sample_rate, cluster_id,
        application_name, cluster_name, database_name, search_path, transaction_isolation,
        execution_timestamp, transaction_id, transient_index_id, mz_version, began_at,
        finished_at, finished_status, error_message, result_size, rows_returned,
        execution_strategy, sql)
    VALUES (v_id, gen_random_uuid(), gen_random_uuid(),
        LEAST(COALESCE(mz_emulator.setting('statement_logging_default_sample_rate'), '1')::float8,
              COALESCE(mz_emulator.setting('statement_logging_max_sample_rate'), '1')::float8),
        v_cluster,
        backdate_statement.application_name, cluster, 'materialize', ARRAY['public'],
        'strict serializable', floor(extract(epoch FROM began_at) * 1000), NULL, NULL,
        mz_emulator.setting('mz_version'), began_at, finished_at, 'success', NULL,
        NULL, 0, 'standard', 'SELECT * FROM t /* mz_emulator.backdate_statement */');
    RETURN v_id;
END $$;
COMMENT ON FUNCTION mz_emulator.backdate_statement(text, timestamptz, timestamptz, text) IS
  'Logs a query that ran on the named cluster from began_at to finished_at and succeeded '
  '(no rows), as the emulator logs one it ran (with the sample rate of a default session); '
  'refused when the cluster had no replica at began_at. Returns the statement id.';
