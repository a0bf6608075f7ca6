"""What a cycle needs from a connection, checked one by one (Airflow's "Test" button calls this
through the hook): the catalog is Materialize's, the session cluster exists and has a replica
(reading the controller's tables needs one), the controller's tables exist or the role may
create them, and statement logging is visible (idle detection is blind without it).

Each check says what it found; a failed one says what to fix. No Airflow here."""

from __future__ import annotations

from dataclasses import dataclass

from mz_schedctl_provider.runtime.db import Database, DatabaseError, is_missing_table
from mz_schedctl_provider.runtime.signals import ACTIVITY_RELATION, logging_sample_rate
from mz_schedctl_provider.runtime.store import ACTIONS, LEASES, STATE, STRATEGIES, Store

_CLUSTER_COUNT = "SELECT count(*) FROM mz_catalog.mz_clusters"
_SESSION_CLUSTER = "SHOW cluster"
# One row per cluster of that name (none: it does not exist) with its replica count.
_CLUSTER_REPLICAS = (
    "SELECT c.id, count(r.id) FROM mz_catalog.mz_clusters c"
    " LEFT JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id"
    " WHERE c.name = %s GROUP BY c.id"
)
_INVALID_SCHEMA_NAME = "3F000"  # PostgreSQL's and Materialize's "unknown schema"
_CAN_CREATE = "SELECT has_schema_privilege(current_user, %s, 'CREATE')"
_ACTIVITY_PROBE = f"SELECT count(*) FROM (SELECT 1 FROM {ACTIVITY_RELATION} LIMIT 1) AS probe"


@dataclass(frozen=True)
class Check:
    """One readiness check: its name, whether it passed and what it found."""

    name: str
    ok: bool
    detail: str


def check_readiness(db: Database, *, schema: str = "public") -> list[Check]:
    """Every check, in order; later checks still run after a failed one where they can."""
    checks = [_catalog(db)]
    if not checks[0].ok:
        return checks  # not Materialize (or no session at all): the rest would only repeat it
    checks.append(_session_cluster(db))
    checks.append(_tables(db, schema, cluster_ok=checks[-1].ok))
    checks.append(_statement_logging(db))
    return checks


def summary(checks: list[Check]) -> tuple[bool, str]:
    """(all passed, one line per check) as Airflow's test_connection returns it."""
    ok = all(c.ok for c in checks)
    failed = [c for c in checks if not c.ok]
    head = (
        "Connection successfully tested"
        if ok
        else "Not ready for a cycle: " + ", ".join(c.name for c in failed) + " failed"
    )
    lines = [f"{'ok' if c.ok else 'FAILED'}: {c.name}: {c.detail}" for c in checks]
    return ok, head + "\n" + "\n".join(lines)


def _catalog(db: Database) -> Check:
    try:
        (count,) = db.query(_CLUSTER_COUNT, purpose="reading mz_catalog.mz_clusters")[0]
    except DatabaseError as exc:
        return Check("catalog", False, f"cannot read mz_catalog.mz_clusters: {exc}")
    return Check("catalog", True, f"{count} clusters")


def _session_cluster(db: Database) -> Check:
    name = "session cluster"
    try:
        cluster = str(db.query(_SESSION_CLUSTER)[0][0])
        rows = db.query(_CLUSTER_REPLICAS, (cluster,), purpose="reading the session cluster")
    except DatabaseError as exc:
        return Check(name, False, str(exc))
    if not rows:
        return Check(
            name,
            False,
            f"cluster {cluster!r} does not exist (set the connection's cluster extra to an "
            "existing cluster)",
        )
    replicas = int(rows[0][1])
    if replicas == 0:
        return Check(
            name,
            False,
            f"cluster {cluster!r} has no replica: the controller's tables cannot be read on it "
            "(give it a replica, or pick another cluster)",
        )
    return Check(name, True, f"{cluster} ({replicas} replica{'s' if replicas != 1 else ''})")


def _tables(db: Database, schema: str, *, cluster_ok: bool) -> Check:
    name = "controller tables"
    store = Store(db, schema=schema)
    missing: list[str] = []
    for table in (STRATEGIES, STATE, ACTIONS, LEASES):
        try:
            db.query(f"SELECT count(*) FROM {store.table(table)}", purpose=f"reading {table}")
        except DatabaseError as exc:
            if not is_missing_table(exc):
                if not cluster_ok:
                    return Check(name, False, f"cannot read {table} without a usable cluster")
                return Check(name, False, f"cannot read {schema}.{table}: {exc}")
            missing.append(table)
    if not missing:
        return Check(name, True, f"all 4 in schema {schema}")
    try:
        (allowed,) = db.query(_CAN_CREATE, (schema,), purpose="checking CREATE on the schema")[0]
    except DatabaseError as exc:
        if exc.sqlstate == _INVALID_SCHEMA_NAME:
            return Check(name, False, f"schema {schema} does not exist: {exc}")
        # The privilege could not be asked (not the schema's fault): say so, do not guess.
        return Check(
            name,
            True,
            f"missing in schema {schema}: {', '.join(missing)}; could not check CREATE on it "
            f"({exc}): mz-schedctl init creates them",
        )
    if allowed:
        return Check(
            name,
            True,
            f"missing in schema {schema}: {', '.join(missing)}; this role may create them "
            "(mz-schedctl init, or the first applying cycle)",
        )
    return Check(
        name,
        False,
        f"missing in schema {schema}: {', '.join(missing)}, and this role may not create them "
        "(run the SQL of `mz-schedctl init --print-sql` as a role that may)",
    )


def _statement_logging(db: Database) -> Check:
    name = "statement logging"
    rate = logging_sample_rate(db)
    if rate is None or rate <= 0:
        return Check(
            name,
            False,
            f"statement_logging_max_sample_rate is {rate if rate is not None else 'unreadable'}:"
            " idle detection would see no activity",
        )
    try:
        db.query(_ACTIVITY_PROBE, purpose=f"reading {ACTIVITY_RELATION}")
    except DatabaseError as exc:
        return Check(name, False, f"cannot read {ACTIVITY_RELATION}: {exc}")
    return Check(name, True, f"sample rate {rate:g}, {ACTIVITY_RELATION} readable")
