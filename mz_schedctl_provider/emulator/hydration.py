"""Hydration time estimates: how long an object takes to hydrate on a replica.

On real Materialize a dataflow is hydrated once it has processed the snapshot of its inputs, so
a small object is hydrated about a second after its replica is online (Materialize's own
``test/testdrive/hydration-status.td`` expects idx/mv on a one-row-scale table hydrated within
testdrive's retry budget of a few seconds), and a big one takes minutes. The emulator models
that with an *estimate stored once*, when the replica or the object is created (never computed
inside a catalog query, so reading ``mz_hydration_statuses`` stays cheap):

* rows read: for an index or sink, those of the relation it is on; for a materialized view or
  a view, the sum over the base tables it reads, transitively through views and materialized
  views (``pg_rewrite`` / ``pg_depend``); a table's rows are PostgreSQL's estimate
  (``pg_class.reltuples``, or for a table never analysed its size at ``ROWS_PER_PAGE`` rows per
  8 kB page); a source has a nominal size (``SOURCE_ROWS``; load generators
  ``LOAD_GENERATOR_ROWS``), as its emulated table is empty;
* delay on a replica: ``rows / ROWS_PER_SECOND_25CC`` seconds scaled by
  ``sqrt(0.25 / credits_per_hour)`` (the scaling the overrides use), at least ``FLOOR``.

Overrides still win: a cluster's ``mz_emulator.set_hydration_delay`` and then the instance's
``mz_emulator.set_delays(_, hydration)`` replace the estimate of every user object (as the base
of a 25cc replica). There is no global override on a fresh instance: the estimate is the
default. ``set_delays(startup, NULL)`` leaves the global override as it is;
``mz_emulator.reset_hydration_delay()`` removes it. A crash keeps the estimate: the restarted
replica hydrates again in the same time. Estimates of dropped objects and replicas stay (ids are
never reused) and are never read.
"""

from __future__ import annotations

import psycopg

ROWS_PER_SECOND_25CC = 100_000
ROWS_PER_PAGE = 100
SOURCE_ROWS = 1_000_000
LOAD_GENERATOR_ROWS = 1_000
FLOOR = "1 second"

# Run after catalog's tables exist and before its views (mz_emulator.hydration joins the table).
SQL = f"""
CREATE TABLE mz_emulator.hydration_estimates (
    object_id text NOT NULL,
    replica_id text NOT NULL,
    rows_read float8 NOT NULL,
    delay interval NOT NULL,
    PRIMARY KEY (object_id, replica_id)
);

-- Rows a dataflow reading PostgreSQL relation p_rel processes to hydrate: its base tables'
-- row estimates, through views (the emulator's materialized views are views too).
CREATE FUNCTION mz_emulator.relation_rows(p_rel regclass) RETURNS float8
LANGUAGE sql STABLE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
WITH RECURSIVE reads(oid) AS (
    SELECT p_rel::oid
    UNION
    SELECT d.refobjid
    FROM reads r
    JOIN pg_class v ON v.oid = r.oid AND v.relkind IN ('v', 'm')
    JOIN pg_rewrite w ON w.ev_class = v.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> v.oid
)
SELECT COALESCE(sum(CASE
           WHEN s.item_type = 'load-generator' THEN {LOAD_GENERATOR_ROWS}
           WHEN s.id IS NOT NULL THEN {SOURCE_ROWS}
           WHEN c.reltuples >= 0 THEN c.reltuples
           -- Never analysed (reltuples -1): its size, at a nominal row density.
           ELSE pg_relation_size(c.oid) / 8192 * {ROWS_PER_PAGE}
       END), 0)::float8
FROM reads r
JOIN pg_class c ON c.oid = r.oid AND c.relkind IN ('r', 'p')
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN items s ON s.kind = 'source' AND s.schema_name = n.nspname AND s.name = c.relname
$$;

-- Rows catalog item p_item reads to hydrate (0 when it reads nothing, e.g. SELECT 1).
CREATE FUNCTION mz_emulator.item_rows(p_item text) RETURNS float8
LANGUAGE plpgsql STABLE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE it record;
BEGIN
    SELECT * INTO it FROM items WHERE id = p_item;
    IF NOT FOUND THEN
        RETURN 0;
    ELSIF it.kind IN ('index', 'sink') THEN
        RETURN mz_emulator.item_rows(it.on_id);
    ELSIF it.kind = 'source' THEN
        RETURN CASE WHEN it.item_type = 'load-generator' THEN {LOAD_GENERATOR_ROWS}
                    ELSE {SOURCE_ROWS} END;
    END IF;
    RETURN COALESCE(mz_emulator.relation_rows(
        to_regclass(quote_ident(it.schema_name) || '.' || quote_ident(it.name))), 0);
END $$;

-- Store the estimates of user objects x live replicas on their cluster, restricted to one
-- object or one replica (the one just created). Returns how many were written.
CREATE FUNCTION mz_emulator.record_hydration_estimates(p_object text, p_replica text)
RETURNS int
LANGUAGE sql VOLATILE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
WITH pairs AS (
    SELECT o.id AS object_id, r.id AS replica_id, mz_emulator.item_rows(o.id) AS rows_read,
           s.credits_per_hour
    FROM items o
    JOIN replicas r ON r.cluster_id = o.cluster_id AND r.dropped_at IS NULL
    LEFT JOIN sizes s ON s.size = r.size
    WHERE o.kind IN ('index', 'materialized-view', 'source', 'sink')
      AND o.id LIKE 'u%'
      AND (p_object IS NULL OR o.id = p_object)
      AND (p_replica IS NULL OR r.id = p_replica)
), ins AS (
    INSERT INTO hydration_estimates (object_id, replica_id, rows_read, delay)
    SELECT object_id, replica_id, rows_read,
           GREATEST(interval '{FLOOR}',
                    make_interval(secs => rows_read / {ROWS_PER_SECOND_25CC}
                                          * sqrt(0.25 / COALESCE(credits_per_hour, 0.25))))
    FROM pairs
    ON CONFLICT (object_id, replica_id) DO NOTHING
    RETURNING 1
)
SELECT count(*)::int FROM ins
$$;

CREATE FUNCTION mz_emulator.reset_hydration_delay() RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$ DELETE FROM mz_emulator.settings WHERE name = 'emulator_hydration_delay' $$;
COMMENT ON FUNCTION mz_emulator.reset_hydration_delay() IS
  'Removes the instance-wide hydration delay set by set_delays: objects hydrate in their '
  'estimated time again (per-cluster delays of set_hydration_delay stay).';
"""

PUBLIC_FUNCTIONS = ("mz_emulator.reset_hydration_delay()",)


def record_for_replica(conn: psycopg.Connection, replica_id: str) -> int:
    """Estimates of every user object of the replica's cluster on the new replica."""
    row = conn.execute(
        "SELECT mz_emulator.record_hydration_estimates(NULL, %s)", (replica_id,)
    ).fetchone()
    return int(row[0]) if row else 0


def record_for_object(conn: psycopg.Connection, object_id: str) -> int:
    """Estimates of a new object on every live replica of its cluster."""
    row = conn.execute(
        "SELECT mz_emulator.record_hydration_estimates(%s, NULL)", (object_id,)
    ).fetchone()
    return int(row[0]) if row else 0
