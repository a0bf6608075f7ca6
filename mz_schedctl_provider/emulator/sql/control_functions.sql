-- Helpers (not granted to PUBLIC).
CREATE FUNCTION mz_emulator.next_id(p_kind text) RETURNS bigint
LANGUAGE sql VOLATILE
AS $$ UPDATE mz_emulator.counters SET last = last + 1 WHERE kind = p_kind RETURNING last $$;

CREATE FUNCTION mz_emulator.setting(p_name text) RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT value FROM mz_emulator.settings WHERE name = p_name $$;

CREATE FUNCTION mz_emulator.find_cluster(p_cluster text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE v_id text;
BEGIN
    SELECT id INTO v_id FROM clusters WHERE name = p_cluster;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'unknown cluster ''%''', p_cluster USING ERRCODE = 'XX000';
    END IF;
    RETURN v_id;
END $$;

CREATE FUNCTION mz_emulator.find_replica(p_cluster text, p_replica text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE v_cluster text := mz_emulator.find_cluster(p_cluster); v_id text;
BEGIN
    SELECT id INTO v_id FROM replicas
    WHERE cluster_id = v_cluster AND name = p_replica AND dropped_at IS NULL;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'CLUSTER % has no CLUSTER REPLICA named "%"', p_cluster, p_replica
            USING ERRCODE = 'XX000';
    END IF;
    RETURN v_id;
END $$;

-- Start a replica's first (or next) incarnation at p_at.
CREATE FUNCTION mz_emulator.start_incarnation(p_replica text, p_at timestamptz) RETURNS void
LANGUAGE sql VOLATILE
AS $$
INSERT INTO mz_emulator.incarnations (replica_id, n, started_at, startup)
SELECT p_replica,
       COALESCE((SELECT max(n) FROM mz_emulator.incarnations WHERE replica_id = p_replica), 0) + 1,
       p_at, (SELECT startup_delay FROM mz_emulator.env)
$$;

-- Finish graceful reconfigurations whose new replicas are hydrated or whose deadline passed.
CREATE FUNCTION mz_emulator.settle() RETURNS int
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    rc record;
    v_now timestamptz := mz_emulator.now();
    v_all_ready bool;
    v_ready_at timestamptz;
    v_done int := 0;
BEGIN
    FOR rc IN SELECT * FROM reconfigurations WHERE status = 'in-progress' ORDER BY id FOR UPDATE
    LOOP
        SELECT bool_and(ready_at IS NOT NULL AND ready_at <= v_now), max(ready_at)
          INTO v_all_ready, v_ready_at
          FROM replica_ready WHERE cluster_id = rc.cluster_id AND pending;
        v_ready_at := GREATEST(v_ready_at, rc.started_at);
        IF COALESCE(v_all_ready, true) AND (rc.deadline IS NULL OR v_ready_at <= rc.deadline) THEN
            PERFORM mz_emulator.finalize_reconfiguration(rc.id, COALESCE(v_ready_at, v_now),
                                                         'finalized');
            v_done := v_done + 1;
        ELSIF rc.deadline IS NOT NULL AND rc.deadline <= v_now THEN
            IF upper(rc.on_timeout) = 'COMMIT' THEN
                PERFORM mz_emulator.finalize_reconfiguration(rc.id, rc.deadline, 'finalized');
            ELSE
                UPDATE replicas SET dropped_at = rc.deadline
                 WHERE cluster_id = rc.cluster_id AND pending AND dropped_at IS NULL;
                UPDATE reconfigurations SET status = 'timed-out', finished_at = rc.deadline
                 WHERE id = rc.id;
            END IF;
            v_done := v_done + 1;
        END IF;
    END LOOP;
    RETURN v_done;
END $$;
COMMENT ON FUNCTION mz_emulator.settle() IS
  'Finishes due graceful reconfigurations (ALTER CLUSTER ... WITH (WAIT UNTIL READY)): '
  'finalized once the new replicas are hydrated, timed-out (or committed) at the deadline. '
  'The emulator calls it before each statement; returns how many were finished.';

CREATE FUNCTION mz_emulator.finalize_reconfiguration(p_id bigint, p_at timestamptz,
                                                     p_status text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE rc record;
BEGIN
    SELECT * INTO rc FROM reconfigurations WHERE id = p_id;
    UPDATE replicas SET dropped_at = p_at
     WHERE cluster_id = rc.cluster_id AND NOT pending AND dropped_at IS NULL;
    -- New replicas take the managed names r1..rN.
    UPDATE replicas SET pending = false, name = regexp_replace(name, '-pending$', '')
     WHERE cluster_id = rc.cluster_id AND pending AND dropped_at IS NULL;
    UPDATE clusters SET size = COALESCE(rc.target->>'size', size),
                        replication_factor = COALESCE((rc.target->>'replication_factor')::bigint,
                                                      replication_factor)
     WHERE id = rc.cluster_id;
    UPDATE reconfigurations SET status = p_status, finished_at = p_at WHERE id = p_id;
END $$;

CREATE FUNCTION mz_emulator.advance(d interval) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
BEGIN
    IF d IS NULL OR d < interval '0' THEN
        RAISE EXCEPTION 'mz_emulator.advance: the clock only moves forward (got %)', d
            USING ERRCODE = '22023';
    END IF;
    UPDATE clock SET "offset" = "offset" + d;
    PERFORM mz_emulator.settle();
    RETURN mz_emulator.now();
END $$;
COMMENT ON FUNCTION mz_emulator.advance(interval) IS
  'Moves the emulator clock forward by d (never backwards) and returns the new now(). '
  'Replica start-up, hydration, now(), mz_now() and DEFAULT now() all follow it.';

CREATE FUNCTION mz_emulator.inject_crash(cluster text, replica text, reason text)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    v_replica text := mz_emulator.find_replica(cluster, replica);
    v_inc record;
    v_at timestamptz;
BEGIN
    IF reason = 'initializing' THEN
        RAISE EXCEPTION 'mz_emulator.inject_crash: initializing is a start-up state, not a crash'
            USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_inc FROM incarnations WHERE replica_id = v_replica
     ORDER BY n DESC LIMIT 1 FOR UPDATE;
    v_at := GREATEST(mz_emulator.now(), v_inc.started_at);
    -- Materialize knows one crash reason (OfflineReason::OomKilled); any other exit is
    -- reported with reason NULL, whatever the caller called it.
    UPDATE incarnations SET ended_at = v_at,
                            end_reason = CASE WHEN reason = 'oom-killed' THEN reason END
     WHERE replica_id = v_replica AND n = v_inc.n;
    PERFORM mz_emulator.start_incarnation(v_replica, v_at + interval '1 second');
    RETURN v_at;
END $$;
COMMENT ON FUNCTION mz_emulator.inject_crash(text, text, text) IS
  'Crashes replica cluster.replica now: one offline row in mz_cluster_replica_status_history '
  'with reason oom-killed if reason is oom-killed, else NULL (Materialize reports no other '
  'reason), then a restart one second later, online after the start-up delay, that hydrates '
  'again from scratch. Returns the crash time.';

CREATE FUNCTION mz_emulator.inject_oom(cluster text, replica text) RETURNS timestamptz
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$ SELECT mz_emulator.inject_crash(cluster, replica, 'oom-killed') $$;
COMMENT ON FUNCTION mz_emulator.inject_oom(text, text) IS
  'Out-of-memory kill of replica cluster.replica: inject_crash with reason oom-killed, as '
  'Kubernetes (Cloud) reports it (the docker image reports NULL for any exit).';

CREATE FUNCTION mz_emulator.record_activity(cluster text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    v_cluster text := mz_emulator.find_cluster(cluster);
    v_id uuid := gen_random_uuid();
    v_now timestamptz := mz_emulator.now();
BEGIN
    INSERT INTO statement_log (id, session_id, prepared_statement_id, sample_rate, cluster_id,
        application_name, cluster_name, database_name, search_path, transaction_isolation,
        execution_timestamp, transaction_id, transient_index_id, mz_version, began_at,
        finished_at, finished_status, error_message, result_size, rows_returned,
        execution_strategy, sql)
    VALUES (v_id, gen_random_uuid(), gen_random_uuid(), 1.0, v_cluster, 'mz_emulator', cluster,
        'materialize', ARRAY['public'], 'strict serializable',
        floor(extract(epoch FROM v_now) * 1000), 0, NULL, mz_emulator.setting('mz_version'),
        v_now, v_now, 'success', NULL, 0, 1, 'standard',
        'SELECT 1 /* mz_emulator.record_activity */');
    RETURN v_id;
END $$;
COMMENT ON FUNCTION mz_emulator.record_activity(text) IS
  'Logs one successful statement on the named cluster (application_name mz_emulator) at the '
  'emulator clock, whatever the sample rates. Returns the statement id.';

CREATE FUNCTION mz_emulator.set_delays(startup interval, hydration interval) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
BEGIN
    IF startup < interval '0' OR hydration < interval '0' THEN
        RAISE EXCEPTION 'mz_emulator.set_delays: delays cannot be negative'
            USING ERRCODE = '22023';
    END IF;
    IF startup IS NOT NULL THEN
        UPDATE settings SET value = startup::text WHERE name = 'emulator_startup_delay';
    END IF;
    IF hydration IS NOT NULL THEN
        -- No row means no global override (the estimates apply): upsert it.
        INSERT INTO settings VALUES ('emulator_hydration_delay', hydration::text)
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
    END IF;
END $$;
COMMENT ON FUNCTION mz_emulator.set_delays(interval, interval) IS
  'Sets the replica start-up delay (for incarnations started from now on) and an instance-wide '
  'hydration delay of a 25cc replica (others: base * sqrt(0.25 / credits_per_hour)) that '
  'replaces the estimates. NULL leaves a value unchanged. Defaults: 3 seconds and no '
  'hydration override (each object hydrates in its estimated time, at least 1 second); '
  'reset_hydration_delay() removes the override.';

CREATE FUNCTION mz_emulator.set_hydration_delay(cluster text, d interval) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
BEGIN
    IF d < interval '0' THEN
        RAISE EXCEPTION 'mz_emulator.set_hydration_delay: delay cannot be negative'
            USING ERRCODE = '22023';
    END IF;
    UPDATE clusters SET hydration_delay = d WHERE id = mz_emulator.find_cluster(cluster);
END $$;
COMMENT ON FUNCTION mz_emulator.set_hydration_delay(text, interval) IS
  'Sets the base hydration delay (that of a 25cc replica; bigger ones are faster by '
  'sqrt(0.25 / credits_per_hour)) of every object on the named cluster, as if its data were '
  'bigger or smaller; a huge value simulates replicas that never hydrate. NULL clears it '
  '(the instance-wide delay of set_delays, or else the estimates, apply again).';

CREATE FUNCTION mz_emulator.set_utilization(cluster text, replica text, cpu float8,
                                            memory float8) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE replicas SET cpu_percent = cpu, memory_percent = memory
     WHERE id = mz_emulator.find_replica(cluster, replica);
END $$;
COMMENT ON FUNCTION mz_emulator.set_utilization(text, text, float8, float8) IS
  'Sets the cpu and memory percentages mz_cluster_replica_utilization reports for a replica '
  'while it is online (defaults 1 and 5).';

CREATE FUNCTION mz_emulator.inject_fault(pattern text, action text,
                                         message text DEFAULT 'injected fault',
                                         sqlstate text DEFAULT 'XX000') RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
INSERT INTO mz_emulator.faults (pattern, action, message, sqlstate, created_at)
VALUES (pattern, action, message, sqlstate, mz_emulator.now())
RETURNING id
$$;
COMMENT ON FUNCTION mz_emulator.inject_fault(text, text, text, text) IS
  'Arms a one-shot fault for the next statement whose text matches the Python regex pattern: '
  'action error (fails with message/sqlstate), drop_before (connection dropped before the '
  'statement runs), drop_after (dropped after it ran, before the reply) or delay (waits message '
  'seconds first; past the session statement_timeout it is cancelled with 57014 and does not '
  'run). Returns its id.';

CREATE FUNCTION mz_emulator.clear_faults() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$ WITH d AS (DELETE FROM mz_emulator.faults RETURNING 1) SELECT count(*) FROM d $$;
COMMENT ON FUNCTION mz_emulator.clear_faults() IS
  'Removes every armed fault; returns how many there were.';
