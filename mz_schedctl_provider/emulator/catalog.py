"""Materialize's catalog, simulated inside PostgreSQL.

``install`` creates three schemas in the ``materialize`` database:

* ``mz_emulator`` (private, superuser-owned): the base tables (clusters, replicas, replica
  incarnations, items, settings, id counters, reconfigurations, the statement log and injected
  faults), the emulator clock and the control functions (``mz_emulator.advance`` ...).
* ``mz_catalog`` / ``mz_internal``: read-only views with exactly Materialize's column lists, plus
  clock-following shadows of ``now()`` & co. and ``mz_now()``.

Time. Every simulated fact is *derived from the emulator clock at read time*: a replica's status
history is computed from its incarnations (start, start-up delay, crash) and an object's
hydration from when the replica came online, so ``mz_emulator.advance('1 minute')`` takes effect
at once and tests never sleep. The clock is ``pg_catalog.now() + mz_emulator.clock.offset``.

Hydration model: an index, materialized view, source or sink hydrates on a replica at
``max(replica online, object created) + delay``. ``delay`` is the estimate stored when the
replica or the object was created (``hydration``: from the rows it reads, at least 1 s), unless
an override gives ``base * sqrt(0.25 / credits_per_hour)`` instead: the base, the cluster's own
(``mz_emulator.set_hydration_delay``: its data is bigger or smaller) or the instance's
(``mz_emulator.set_delays``; none by default), is the time of a 25cc replica and bigger
replicas are faster (60 s at 25cc: 30 s at 100cc, ~5.3 s at 3200cc). System introspection
indexes (``si<n>``) hydrate as soon as the replica is online. A crash ends the incarnation; the
replica restarts one second later and hydrates again from scratch.

Graceful reconfigurations (``ALTER CLUSTER ... WITH (WAIT UNTIL READY ...)``) cannot finish from
inside a view, so ``mz_emulator.settle()`` finalizes them (dating the change at the instant the
new replicas were hydrated, or at the deadline). It runs on every emulator DDL, in
``advance()``, and must be called by the server before each statement (``settle(conn)``).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from mz_schedctl_provider.emulator import hydration, logflush, replica_views, stats

USER_ROLE = "materialize"
SEARCH_PATH = "public, mz_catalog, pg_catalog"
MZ_VERSION = "v26.37.0 (mz-schedctl emulator)"

# Replica sizes of the Materialize emulator image (materialize.md section 2): name, workers,
# cpus, memory in MiB, credits per hour. All sizes have one process.
SIZES: tuple[tuple[str, int, float, int, str], ...] = (
    ("25cc", 1, 0.5, 3881, "0.25"),
    ("50cc", 1, 1, 7762, "0.5"),
    ("100cc", 2, 2, 15525, "1"),
    ("200cc", 4, 4, 31050, "2"),
    ("300cc", 6, 6, 46575, "3"),
    ("400cc", 8, 8, 62100, "4"),
    ("600cc", 12, 12, 93150, "6"),
    ("800cc", 16, 16, 124201, "8"),
    ("1200cc", 24, 24, 186301, "12"),
    ("1600cc", 31, 31, 240640, "16"),
    ("3200cc", 62, 62, 481280, "32"),
)

SYSTEM_CLUSTERS: tuple[tuple[str, str, int], ...] = (
    # id, name, replication factor (system replicas get s<n> ids in this order)
    ("s1", "mz_system", 1),
    ("s2", "mz_catalog_server", 1),
    ("s3", "mz_probe", 1),
    ("s4", "mz_support", 0),
    ("s5", "mz_analytics", 0),
)

# Introspection indexes Materialize installs on every user cluster (a representative subset).
INTROSPECTION_LOGS: tuple[tuple[str, str], ...] = (
    ("s101", "mz_active_peeks_per_worker"),
    ("s102", "mz_arrangement_records_raw"),
    ("s103", "mz_compute_frontiers_per_worker"),
    ("s104", "mz_dataflow_operators_per_worker"),
)

# Relation names of mz_catalog / mz_internal that the emulator defines (policy uses them to
# tell catalog reads from user reads).
MZ_CATALOG_RELATIONS = frozenset(
    {
        "mz_clusters",
        "mz_cluster_replicas",
        "mz_cluster_replica_sizes",
        "mz_indexes",
        "mz_materialized_views",
        "mz_sources",
        "mz_sinks",
        "mz_roles",
        "mz_databases",
        "mz_schemas",
    }
)
MZ_INTERNAL_RELATIONS = frozenset(
    {
        "mz_hydration_statuses",
        "mz_compute_hydration_statuses",
        "mz_cluster_replica_status_history",
        "mz_cluster_replica_statuses",
        "mz_cluster_replica_history",
        "mz_cluster_replica_utilization",
        "mz_statement_execution_history",
        "mz_statement_execution_history_redacted",
        "mz_recent_activity_log_redacted",
        "mz_cluster_schedules",
        "mz_cluster_auto_scaling_strategies",
        "mz_cluster_reconfigurations",
    }
)

DEFAULT_STARTUP_DELAY = "3 seconds"
RESTART_GAP = "1 second"

_SCHEMAS = """
CREATE SCHEMA mz_emulator;
CREATE SCHEMA mz_catalog;
CREATE SCHEMA mz_internal;
REVOKE ALL ON SCHEMA mz_emulator FROM PUBLIC;
-- USAGE only so the control functions can be called; no table in it is readable.
GRANT USAGE ON SCHEMA mz_emulator TO PUBLIC;
GRANT USAGE ON SCHEMA mz_catalog, mz_internal TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA mz_emulator REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
"""

_TABLES = """
CREATE TABLE mz_emulator.clock (
    one bool PRIMARY KEY DEFAULT true CHECK (one),
    "offset" interval NOT NULL DEFAULT '0'
);
CREATE TABLE mz_emulator.settings (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE mz_emulator.counters (kind text PRIMARY KEY, last bigint NOT NULL DEFAULT 0);
CREATE TABLE mz_emulator.sizes (
    size text PRIMARY KEY, ord int NOT NULL, processes bigint NOT NULL, workers bigint NOT NULL,
    cpu_nano_cores bigint NOT NULL, memory_bytes bigint NOT NULL, disk_bytes bigint,
    credits_per_hour numeric NOT NULL
);
CREATE TABLE mz_emulator.clusters (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    managed bool NOT NULL,
    size text,
    replication_factor bigint,
    schedule text NOT NULL DEFAULT 'manual',
    hydration_time_estimate interval,
    auto_scaling jsonb,
    hydration_delay interval,            -- per-cluster override (set_hydration_delay)
    owner_id text NOT NULL DEFAULT 'u1',
    created_at timestamptz NOT NULL
);
CREATE TABLE mz_emulator.replicas (
    id text PRIMARY KEY,
    name text NOT NULL,
    cluster_id text NOT NULL,
    size text NOT NULL,
    availability_zone text,
    owner_id text NOT NULL DEFAULT 'u1',
    pending bool NOT NULL DEFAULT false,  -- created by a graceful reconfiguration
    created_at timestamptz NOT NULL,
    -- Names as of the create event (mz_cluster_replica_history keeps them through renames).
    created_name text NOT NULL,
    created_cluster_name text NOT NULL,
    dropped_at timestamptz,               -- dropped replicas stay so status history stays
    cpu_percent float8,
    memory_percent float8
);
CREATE UNIQUE INDEX replicas_live_name ON mz_emulator.replicas (cluster_id, name)
    WHERE dropped_at IS NULL;
-- One row per process lifetime: online after `startup`, ends with a crash (ended_at; the
-- reason Materialize reports, NULL or oom-killed, in end_reason) after which a new one starts.
CREATE TABLE mz_emulator.incarnations (
    replica_id text NOT NULL,
    n int NOT NULL,
    started_at timestamptz NOT NULL,
    startup interval NOT NULL,
    ended_at timestamptz,
    end_reason text,
    PRIMARY KEY (replica_id, n)
);
CREATE TABLE mz_emulator.items (
    id text PRIMARY KEY,
    oid bigint NOT NULL,
    kind text NOT NULL CHECK (kind IN ('index', 'materialized-view', 'source', 'sink', 'table',
                                       'view')),
    schema_name text NOT NULL DEFAULT 'public',
    name text NOT NULL,
    cluster_id text,
    on_id text,
    item_type text,                       -- source/sink type: load-generator, kafka ...
    definition text,
    create_sql text,
    redacted_create_sql text,
    created_at timestamptz NOT NULL
);
CREATE TABLE mz_emulator.reconfigurations (
    id bigserial PRIMARY KEY,
    cluster_id text NOT NULL,
    status text NOT NULL,
    deadline timestamptz,
    on_timeout text,
    target jsonb,
    changes jsonb,
    started_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE TABLE mz_emulator.statement_log (
    id uuid PRIMARY KEY,
    session_id uuid,
    prepared_statement_id uuid,
    sample_rate float8,
    cluster_id text,
    application_name text,
    cluster_name text,
    database_name text,
    search_path text[],
    transaction_isolation text,
    execution_timestamp numeric,
    transaction_id bigint,
    transient_index_id text,
    mz_version text,
    began_at timestamptz,
    finished_at timestamptz,
    finished_status text,
    error_message text,
    result_size bigint,
    rows_returned bigint,
    execution_strategy text,
    sql text
);
CREATE INDEX statement_log_began_at ON mz_emulator.statement_log (began_at);
CREATE TABLE mz_emulator.faults (
    id bigserial PRIMARY KEY,
    pattern text NOT NULL,
    action text NOT NULL CHECK (action IN ('error', 'drop_before', 'drop_after', 'delay')),
    message text,
    sqlstate text,
    remaining int NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- a delay's message is its duration in seconds
    CHECK (action <> 'delay' OR message ~ '^[0-9]+([.][0-9]+)?$')
);
"""

# Internal views. Views check table privileges as their owner (the superuser), so the public
# catalog views may read mz_emulator through them while `materialize` cannot read the tables.
_INTERNAL_VIEWS = """
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
"""

_CATALOG_VIEWS = """
CREATE VIEW mz_catalog.mz_clusters AS
SELECT c.id, c.name, c.owner_id,
       ARRAY[c.owner_id || '=UC/' || c.owner_id]::text[] AS privileges,
       c.managed,
       CASE WHEN c.managed THEN c.size END AS size,
       CASE WHEN c.managed THEN c.replication_factor END AS replication_factor,
       CASE WHEN c.managed THEN false END AS disk,
       CASE WHEN c.managed THEN '{}'::text[] END AS availability_zones,
       CASE WHEN c.managed THEN false END AS introspection_debugging,
       CASE WHEN c.managed THEN interval '1 second' END AS introspection_interval
FROM mz_emulator.clusters c;

CREATE VIEW mz_catalog.mz_cluster_replicas AS
SELECT r.id, r.name, r.cluster_id, r.size, r.availability_zone, r.owner_id,
       false AS disk
FROM mz_emulator.replicas r
WHERE r.dropped_at IS NULL;

CREATE VIEW mz_catalog.mz_cluster_replica_sizes AS
SELECT size, processes, workers, cpu_nano_cores, memory_bytes, disk_bytes, credits_per_hour
FROM mz_emulator.sizes;

CREATE VIEW mz_catalog.mz_indexes AS
SELECT i.id, i.oid::oid AS oid, i.name, i.on_id, i.cluster_id,
       CASE WHEN i.id LIKE 's%' THEN 's1' ELSE 'u1' END AS owner_id,
       i.create_sql, i.redacted_create_sql
FROM mz_emulator.items i
WHERE i.kind = 'index';

CREATE VIEW mz_catalog.mz_materialized_views AS
SELECT i.id, i.oid::oid AS oid, 'u3'::text AS schema_id, i.name, i.cluster_id, i.definition,
       'u1'::text AS owner_id, ARRAY['u1=arwd/u1']::text[] AS privileges,
       i.create_sql, i.redacted_create_sql
FROM mz_emulator.items i
WHERE i.kind = 'materialized-view';

CREATE VIEW mz_catalog.mz_sources AS
SELECT i.id, i.oid::oid AS oid, 'u3'::text AS schema_id, i.name, i.item_type AS type,
       NULL::text AS connection_id, NULL::text AS size,
       CASE WHEN i.item_type IN ('kafka', 'load-generator') THEN 'none' END AS envelope_type,
       NULL::text AS key_format, NULL::text AS value_format,
       i.cluster_id, 'u1'::text AS owner_id, ARRAY['u1=r/u1']::text[] AS privileges,
       i.create_sql, i.redacted_create_sql
FROM mz_emulator.items i
WHERE i.kind = 'source';

CREATE VIEW mz_catalog.mz_sinks AS
SELECT i.id, i.oid::oid AS oid, 'u3'::text AS schema_id, i.name, i.item_type AS type,
       NULL::text AS connection_id, NULL::text AS size, 'upsert'::text AS envelope_type,
       'json'::text AS format, 'json'::text AS key_format, 'json'::text AS value_format,
       i.cluster_id, 'u1'::text AS owner_id, i.create_sql, i.redacted_create_sql
FROM mz_emulator.items i
WHERE i.kind = 'sink';

CREATE VIEW mz_catalog.mz_roles AS
SELECT * FROM (VALUES ('u1'::text, 20001::oid, 'materialize'::text, true),
                      ('s1', 20000::oid, 'mz_system', true),
                      ('s2', 20002::oid, 'mz_support', true)) r(id, oid, name, inherit);

CREATE VIEW mz_catalog.mz_databases AS
SELECT 'u1'::text AS id, 20100::oid AS oid, 'materialize'::text AS name, 'u1'::text AS owner_id,
       ARRAY['u1=UC/u1', '=U/u1']::text[] AS privileges;

CREATE VIEW mz_catalog.mz_schemas AS
SELECT * FROM (VALUES ('s1'::text, 20200::oid, NULL::text, 'mz_catalog'::text, 's1'::text),
                      ('s2', 20201::oid, NULL, 'pg_catalog', 's1'),
                      ('s4', 20203::oid, NULL, 'mz_internal', 's1'),
                      ('s5', 20204::oid, NULL, 'information_schema', 's1'),
                      ('u3', 20300::oid, 'u1', 'public', 'u1'))
       s(id, oid, database_id, name, owner_id);
"""

_INTERNAL_CATALOG_VIEWS = """
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
"""

_CLOCK_FUNCTIONS = """
CREATE FUNCTION mz_emulator.now() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.now() + "offset" FROM mz_emulator.clock $$;
COMMENT ON FUNCTION mz_emulator.now() IS
  'The emulator clock: the transaction start time plus the offset added by mz_emulator.advance.';

CREATE FUNCTION mz_emulator.clock_offset() RETURNS interval
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT "offset" FROM mz_emulator.clock $$;

CREATE FUNCTION mz_catalog.now() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT mz_emulator.now() $$;
CREATE FUNCTION mz_catalog.transaction_timestamp() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT mz_emulator.now() $$;
CREATE FUNCTION mz_catalog.statement_timestamp() RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT pg_catalog.statement_timestamp() + mz_emulator.clock_offset() $$;
CREATE FUNCTION mz_catalog.clock_timestamp() RETURNS timestamptz LANGUAGE sql VOLATILE
AS $$ SELECT pg_catalog.clock_timestamp() + mz_emulator.clock_offset() $$;

CREATE DOMAIN mz_catalog.mz_timestamp AS numeric;
CREATE FUNCTION mz_catalog.mz_now() RETURNS mz_catalog.mz_timestamp LANGUAGE sql STABLE
AS $$ SELECT floor(extract(epoch FROM mz_emulator.now()) * 1000)::mz_catalog.mz_timestamp $$;

-- Materialize's version function; reads the seeded setting so it matches SHOW mz_version.
CREATE FUNCTION mz_catalog.mz_version() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = mz_emulator, pg_catalog
AS $$ SELECT value FROM mz_emulator.settings WHERE name = 'mz_version' $$;

-- Temporal filters compare mz_now() with timestamps: provide the comparison operators.
CREATE FUNCTION mz_emulator.mz_ts_to_tstz(mz_catalog.mz_timestamp) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT pg_catalog.to_timestamp($1::float8 / 1000) $$;
"""

_TEMPORAL_OPERATORS = ("<", "<=", ">", ">=", "=", "<>")
_OPERATOR_FUNCS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "=": "eq", "<>": "ne"}


def _temporal_operator_sql() -> str:
    """Operators mz_timestamp <op> timestamptz (and the mirror) for temporal filters."""
    parts: list[str] = []
    for op in _TEMPORAL_OPERATORS:
        fn = _OPERATOR_FUNCS[op]
        parts.append(
            f"""
CREATE FUNCTION mz_emulator.mzts_{fn}_tstz(mz_catalog.mz_timestamp, timestamptz) RETURNS bool
LANGUAGE sql IMMUTABLE AS $$ SELECT mz_emulator.mz_ts_to_tstz($1) {op} $2 $$;
CREATE FUNCTION mz_emulator.tstz_{fn}_mzts(timestamptz, mz_catalog.mz_timestamp) RETURNS bool
LANGUAGE sql IMMUTABLE AS $$ SELECT $1 {op} mz_emulator.mz_ts_to_tstz($2) $$;
CREATE OPERATOR mz_catalog.{op} (LEFTARG = mz_catalog.mz_timestamp, RIGHTARG = timestamptz,
    FUNCTION = mz_emulator.mzts_{fn}_tstz);
CREATE OPERATOR mz_catalog.{op} (LEFTARG = timestamptz, RIGHTARG = mz_catalog.mz_timestamp,
    FUNCTION = mz_emulator.tstz_{fn}_mzts);
"""
        )
    return "\n".join(parts)


def _temporal_operator_functions() -> tuple[str, ...]:
    names: list[str] = []
    for fn in _OPERATOR_FUNCS.values():
        names.append(f"mz_emulator.mzts_{fn}_tstz(mz_catalog.mz_timestamp, timestamptz)")
        names.append(f"mz_emulator.tstz_{fn}_mzts(timestamptz, mz_catalog.mz_timestamp)")
    return tuple(names)


_CONTROL_FUNCTIONS = """
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
"""

_PUBLIC_FUNCTIONS = (
    "mz_emulator.now()",
    "mz_emulator.clock_offset()",
    "mz_emulator.settle()",
    "mz_emulator.advance(interval)",
    "mz_emulator.inject_crash(text, text, text)",
    "mz_emulator.inject_oom(text, text)",
    "mz_emulator.record_activity(text)",
    "mz_emulator.set_delays(interval, interval)",
    "mz_emulator.set_hydration_delay(text, interval)",
    "mz_emulator.set_utilization(text, text, float8, float8)",
    "mz_emulator.inject_fault(text, text, text, text)",
    "mz_emulator.clear_faults()",
    "mz_emulator.mz_ts_to_tstz(mz_catalog.mz_timestamp)",
)

_GRANTS = """
REVOKE ALL ON ALL TABLES IN SCHEMA mz_emulator FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA mz_emulator FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA mz_emulator FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA mz_catalog TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA mz_internal TO PUBLIC;
"""


def _format_sizes_list(sizes: list[str]) -> str:
    """allowed_cluster_replica_sizes as Materialize shows it: "25cc", "50cc"."""
    return ", ".join('"' + s.replace('"', '""') + '"' for s in sizes)


def format_rate(value: float) -> str:
    """A float system variable as Materialize prints it (1 rather than 1.0)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _seed(conn: psycopg.Connection, sample_rate: float) -> None:
    conn.execute("INSERT INTO mz_emulator.clock DEFAULT VALUES")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mz_emulator.sizes VALUES (%s, %s, 1, %s, %s, %s, NULL, %s::numeric)",
            [
                (name, i, workers, int(cpu * 1_000_000_000), mib * 1048576, credits)
                for i, (name, workers, cpu, mib, credits) in enumerate(SIZES)
            ],
        )
        settings = {
            "statement_logging_max_sample_rate": format_rate(sample_rate),
            "statement_logging_default_sample_rate": format_rate(sample_rate),
            "allowed_cluster_replica_sizes": _format_sizes_list([s[0] for s in SIZES]),
            "max_replicas_per_cluster": "5",
            "emulator_startup_delay": DEFAULT_STARTUP_DELAY,
            "mz_version": MZ_VERSION,
        }
        # default.<name> rows are what ALTER SYSTEM RESET restores.
        defaults = {f"default.{k}": v for k, v in settings.items() if not k.startswith("emul")}
        cur.executemany(
            "INSERT INTO mz_emulator.settings VALUES (%s, %s)",
            list(settings.items()) + list(defaults.items()),
        )
        cur.executemany(
            "INSERT INTO mz_emulator.counters (kind, last) VALUES (%s, %s)",
            [
                ("cluster", 0),
                ("replica", 0),
                ("item", 0),
                ("system_replica", 0),
                ("system_index", 0),
                ("oid", 20_000),
            ],
        )
    # A fresh instance is up: its replicas started one start-up delay ago, so they are online.
    started = conn.execute("SELECT now - startup_delay FROM mz_emulator.env").fetchone()[0]  # type: ignore[index]
    for cid, name, rf in SYSTEM_CLUSTERS:
        conn.execute(
            "INSERT INTO mz_emulator.clusters (id, name, managed, size, replication_factor,"
            " owner_id, created_at) VALUES (%s, %s, true, '25cc', %s, 's1', %s)",
            (cid, name, rf, started),
        )
        for i in range(rf):
            rid = next_id(conn, "system_replica", "s")
            _insert_replica(conn, rid, f"r{i + 1}", cid, "25cc", started, owner="s1")
    quickstart = create_cluster_row(
        conn, "quickstart", managed=True, size="25cc", replication_factor=1
    )
    add_replica(conn, quickstart, "r1", "25cc")
    conn.execute("UPDATE mz_emulator.clusters SET created_at = %s", (started,))
    conn.execute(
        "UPDATE mz_emulator.replicas SET created_at = %s WHERE cluster_id = 'u1'", (started,)
    )
    conn.execute(
        "UPDATE mz_emulator.incarnations SET started_at = %s WHERE replica_id = 'u1'", (started,)
    )
    conn.execute("UPDATE mz_emulator.items SET created_at = %s", (started,))


def _insert_replica(
    conn: psycopg.Connection,
    replica_id: str,
    name: str,
    cluster_id: str,
    size: str,
    at: object,
    *,
    owner: str = "u1",
    pending: bool = False,
) -> None:
    conn.execute(
        "INSERT INTO mz_emulator.replicas (id, name, cluster_id, size, owner_id, pending,"
        " created_at, created_name, created_cluster_name)"
        " SELECT %s, %s, %s, %s, %s, %s, %s, %s, c.name FROM mz_emulator.clusters c"
        " WHERE c.id = %s",
        (replica_id, name, cluster_id, size, owner, pending, at, name, cluster_id),
    )
    conn.execute("SELECT mz_emulator.start_incarnation(%s, %s)", (replica_id, at))


def next_id(conn: psycopg.Connection, kind: str, prefix: str) -> str:
    row = conn.execute("SELECT mz_emulator.next_id(%s)", (kind,)).fetchone()
    assert row is not None
    return f"{prefix}{row[0]}"


def emulator_now(conn: psycopg.Connection) -> object:
    row = conn.execute("SELECT mz_emulator.now()").fetchone()
    assert row is not None
    return row[0]


def add_replica(
    conn: psycopg.Connection, cluster_id: str, name: str, size: str, *, pending: bool = False
) -> str:
    """Create a user replica (id u<n>) that starts initializing now."""
    replica_id = next_id(conn, "replica", "u")
    _insert_replica(conn, replica_id, name, cluster_id, size, emulator_now(conn), pending=pending)
    hydration.record_for_replica(conn, replica_id)
    return replica_id


def drop_replica(conn: psycopg.Connection, replica_id: str) -> None:
    conn.execute(
        "UPDATE mz_emulator.replicas SET dropped_at = mz_emulator.now() WHERE id = %s",
        (replica_id,),
    )


def create_cluster_row(
    conn: psycopg.Connection,
    name: str,
    *,
    managed: bool,
    size: str | None,
    replication_factor: int | None,
    schedule: str = "manual",
    hydration_time_estimate: str | None = None,
    auto_scaling: str | None = None,
) -> str:
    """Insert a user cluster with its introspection indexes; returns its id. No replicas."""
    cluster_id = next_id(conn, "cluster", "u")
    conn.execute(
        "INSERT INTO mz_emulator.clusters (id, name, managed, size, replication_factor, schedule,"
        " hydration_time_estimate, auto_scaling, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s::interval, %s::jsonb, mz_emulator.now())",
        (
            cluster_id,
            name,
            managed,
            size,
            replication_factor,
            schedule,
            hydration_time_estimate,
            auto_scaling,
        ),
    )
    for log_id, log_name in INTROSPECTION_LOGS:
        index_id = next_id(conn, "system_index", "si")
        index_name = f"{log_name}_{cluster_id}_primary_idx"
        sql = (
            f"CREATE INDEX {index_name} IN CLUSTER [{cluster_id}]"
            f" ON mz_introspection.{log_name} (id)"
        )
        conn.execute(
            "INSERT INTO mz_emulator.items (id, oid, kind, schema_name, name, cluster_id, on_id,"
            " create_sql, redacted_create_sql, created_at)"
            " VALUES (%s, mz_emulator.next_id('oid'), 'index', 'mz_introspection', %s, %s, %s,"
            " %s, %s, mz_emulator.now())",
            (index_id, index_name, cluster_id, log_id, sql, sql),
        )
    return cluster_id


def settle(conn: psycopg.Connection) -> int:
    """Finish due graceful reconfigurations; call before each statement. Returns how many."""
    row = conn.execute("SELECT mz_emulator.settle()").fetchone()
    return int(row[0]) if row else 0


def get_setting(conn: psycopg.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM mz_emulator.settings WHERE name = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


def install(conn: psycopg.Connection, *, sample_rate: float = 0.99) -> None:
    """Create mz_emulator, mz_catalog and mz_internal and seed a fresh instance.

    ``conn``: superuser, autocommit, connected to database ``materialize`` where role
    ``materialize`` exists (LOGIN, not superuser). Runs in one transaction. ``sample_rate`` seeds
    statement_logging_max_sample_rate and statement_logging_default_sample_rate (0 reproduces
    the Materialize docker image, which logs nothing).
    """
    if not 0.0 <= sample_rate <= 1.0:
        raise ValueError(f"sample_rate must be within [0, 1], got {sample_rate}")
    with conn.transaction():
        for block in (
            _SCHEMAS,
            _TABLES,
            hydration.SQL,
            stats.SQL,
            _CLOCK_FUNCTIONS,
            _temporal_operator_sql(),
            _INTERNAL_VIEWS,
            logflush.VIEWS_SQL,
            _CATALOG_VIEWS,
            replica_views.SQL,
            _INTERNAL_CATALOG_VIEWS,
            _CONTROL_FUNCTIONS,
            logflush.FUNCTIONS_SQL,
        ):
            conn.execute(block)
        _seed(conn, sample_rate)
        stats.analyze(conn)  # planner statistics from the first statement on
        logflush.seed(conn)
        conn.execute(_GRANTS)
        public = (
            _PUBLIC_FUNCTIONS
            + hydration.PUBLIC_FUNCTIONS
            + logflush.PUBLIC_FUNCTIONS
            + _temporal_operator_functions()
        )
        for signature in public:
            conn.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO PUBLIC")
        # mz_catalog before pg_catalog: the clock-following now() & co. shadow the built-ins.
        database = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
                sql.Identifier(USER_ROLE), sql.Identifier(database), sql.SQL(SEARCH_PATH)
            )
        )
