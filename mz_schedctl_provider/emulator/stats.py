"""Planner statistics of the emulator's own base tables, kept current from its DDL path.

Real Materialize answers catalog queries from in-memory arrangements whatever the fleet's age.
The emulator's catalog views are PostgreSQL views over small tables that grow fast while a
fleet is built; until autovacuum's next round (a minute or more) PostgreSQL plans them with the
row counts of an empty table and picks nested loops that re-run the hydration view per outer
row: a client's hydration query (clusters x replicas x indexes x mz_hydration_statuses) took
17 s at 100 clusters right after the build, and about 60 ms once the tables were analysed.

So the emulator analyses its base tables itself whenever its catalog has doubled since the last
time (measured exactly and cheaply by its own id counters, so the schedule is deterministic):
about log2(objects) ANALYZE rounds over a fleet's build, each over tables of a few thousand
rows. ``install`` analyses the fresh instance once.
"""

from __future__ import annotations

import psycopg

# Every base table. The ones whose size follows the catalog are the point; statement_log rides
# along so its statistics never lag far behind either; the constant ones (clock, sizes) must not
# stay unanalysed, or PostgreSQL assumes ~1,800 rows for the one-row clock and multiplies every
# join with it by that.
TABLES = (
    "clock",
    "sizes",
    "counters",
    "faults",
    "clusters",
    "replicas",
    "incarnations",
    "items",
    "hydration_estimates",
    "reconfigurations",
    "settings",
    "statement_log",
)
GROWTH = 2  # analyse again once the catalog has grown by this factor

SQL = f"""
-- Size of the catalog by the emulator's id counters: clusters, replicas and items created.
CREATE FUNCTION mz_emulator.catalog_size() RETURNS bigint
LANGUAGE sql STABLE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
SELECT COALESCE(sum(last), 0)::bigint FROM counters
WHERE kind IN ('cluster', 'replica', 'item', 'system_replica', 'system_index')
$$;

CREATE FUNCTION mz_emulator.analyze_catalog() RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
BEGIN
    -- SKIP_LOCKED: never wait behind autovacuum (or another session's ANALYZE) inside DDL.
    ANALYZE (SKIP_LOCKED) {", ".join(f"mz_emulator.{t}" for t in TABLES)};
    INSERT INTO settings VALUES ('emulator_analyzed_at', mz_emulator.catalog_size()::text)
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
END $$;

-- ANALYZE when the catalog has grown GROWTH-fold since the last time. Returns whether it did.
CREATE FUNCTION mz_emulator.analyze_if_grown() RETURNS bool
LANGUAGE plpgsql VOLATILE SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
DECLARE
    v_last bigint := COALESCE((SELECT value::bigint FROM settings
                               WHERE name = 'emulator_analyzed_at'), 0);
BEGIN
    IF mz_emulator.catalog_size() < GREATEST(v_last, 1) * {GROWTH} THEN
        RETURN false;
    END IF;
    PERFORM mz_emulator.analyze_catalog();
    RETURN true;
END $$;
"""


def analyze(conn: psycopg.Connection) -> None:
    """ANALYZE the base tables now (a superuser connection)."""
    conn.execute("SELECT mz_emulator.analyze_catalog()")


def analyze_if_grown(conn: psycopg.Connection) -> bool:
    """After emulated DDL: ANALYZE if the catalog doubled since the last time."""
    row = conn.execute("SELECT mz_emulator.analyze_if_grown()").fetchone()
    return bool(row and row[0])
