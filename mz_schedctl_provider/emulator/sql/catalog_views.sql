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
