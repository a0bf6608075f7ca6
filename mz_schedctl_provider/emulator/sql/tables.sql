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
