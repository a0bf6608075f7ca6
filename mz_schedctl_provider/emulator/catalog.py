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

from mz_schedctl_provider.emulator import hydration, logflush, replica_views, sqlfiles, stats

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

_SCHEMAS = sqlfiles.load("schemas.sql")

_TABLES = sqlfiles.load("tables.sql")

# Internal views. Views check table privileges as their owner (the superuser), so the public
# catalog views may read mz_emulator through them while `materialize` cannot read the tables.
_INTERNAL_VIEWS = sqlfiles.load("internal_views.sql")

_CATALOG_VIEWS = sqlfiles.load("catalog_views.sql")

_INTERNAL_CATALOG_VIEWS = sqlfiles.load("internal_catalog_views.sql")

_CLOCK_FUNCTIONS = sqlfiles.load("clock_functions.sql")

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


_CONTROL_FUNCTIONS = sqlfiles.load("control_functions.sql")
# Back-dated replicas and refused queries (the cost report's tests and demo).
_HISTORY_FUNCTIONS = sqlfiles.load("history_functions.sql")

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
    "mz_emulator.backdate_replica(text, text, text, timestamptz, timestamptz)",
    "mz_emulator.backdate_refused_query(text, timestamptz, text)",
    "mz_emulator.backdate_statement(text, timestamptz, timestamptz, text)",
    "mz_emulator.mz_ts_to_tstz(mz_catalog.mz_timestamp)",
)

_GRANTS = sqlfiles.load("grants.sql")


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
            _HISTORY_FUNCTIONS,
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
