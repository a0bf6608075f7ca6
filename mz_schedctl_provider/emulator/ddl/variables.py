"""ALTER SYSTEM, SET / RESET / SHOW of the session variables, SHOW CLUSTERS and SHOW CLUSTER
REPLICAS.
"""

from __future__ import annotations

import re

import psycopg

from .. import catalog
from .. import mzsql as m
from ..errors import MzError
from .common import DEFAULT_CLUSTER, Result, SessionLike

# ---------------------------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------------------------


def _parse_rate(name: str, value: str) -> str:
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise MzError(f'invalid value for parameter "{name}": "{value}"', sqlstate="22023")
    return catalog.format_rate(rate)


def _system_value(name: str, values: list[str]) -> str:
    if name == "allowed_cluster_replica_sizes":
        sizes = [v for v in values if v.strip()]
        return ", ".join('"' + s.replace('"', '""') + '"' for s in sizes)
    if len(values) != 1:
        raise MzError(f'parameter "{name}" cannot have multiple values', sqlstate="22023")
    value = values[0]
    if name == "max_replicas_per_cluster":
        if not re.fullmatch(r"\d+", value.strip()):
            raise MzError(f'invalid value for parameter "{name}": "{value}"', sqlstate="22023")
        return str(int(value))
    return _parse_rate(name, value)


def _alter_system(db: psycopg.Connection, stmt: m.AlterSystem) -> Result:
    names = sorted(m.SYSTEM_VARS) if stmt.name == "all" else [stmt.name]
    for name in names:
        if name not in m.SYSTEM_VARS:
            raise MzError(f'unrecognized configuration parameter "{name}"', sqlstate="42704")
        if stmt.values is None:
            db.execute(
                "UPDATE mz_emulator.settings SET value = d.value FROM mz_emulator.settings d"
                " WHERE settings.name = %s AND d.name = 'default.' || %s",
                (name, name),
            )
        else:
            db.execute(
                "UPDATE mz_emulator.settings SET value = %s WHERE name = %s",
                (_system_value(name, stmt.values), name),
            )
    return Result("ALTER SYSTEM")


def _session_value(db: psycopg.Connection, session: SessionLike, name: str) -> str:
    if name == "cluster":
        return session.vars.get("cluster", DEFAULT_CLUSTER)
    if name in session.vars:
        return session.vars[name]
    if name == "cluster_replica":
        return ""  # unset: statements may run on any replica
    # The session sample rate defaults to the system's default sample rate.
    return catalog.get_setting(db, "statement_logging_default_sample_rate") or "0"


def _set_variable(db: psycopg.Connection, session: SessionLike, stmt: m.SetVariable) -> Result:
    if stmt.value is None:
        session.vars.pop(stmt.name, None)
        if stmt.name == "cluster":
            session.vars["cluster"] = DEFAULT_CLUSTER
    elif stmt.name in ("cluster", "cluster_replica"):
        # Materialize accepts any name here; queries fail later with unknown cluster (replica).
        session.vars[stmt.name] = stmt.value
    else:
        session.vars[stmt.name] = _parse_rate(stmt.name, stmt.value)
    return Result("SET")


def _reset_variable(session: SessionLike, stmt: m.ResetVariable) -> Result:
    session.vars.pop(stmt.name, None)
    if stmt.name == "cluster":
        session.vars["cluster"] = DEFAULT_CLUSTER
    return Result("RESET")


def _show_variable(db: psycopg.Connection, session: SessionLike, stmt: m.ShowVariable) -> Result:
    if stmt.name in m.SESSION_VARS:
        value = _session_value(db, session, stmt.name)
    else:
        value = catalog.get_setting(db, stmt.name) or ""
    return Result("SHOW", [stmt.name], [(value,)])


def _show_clusters(db: psycopg.Connection) -> Result:
    rows = db.execute(
        "SELECT c.name, COALESCE(string_agg(r.name || ' (' || r.size || ')', ', '"
        " ORDER BY r.name), '') FROM mz_emulator.clusters c"
        " LEFT JOIN mz_emulator.replicas r ON r.cluster_id = c.id AND r.dropped_at IS NULL"
        " GROUP BY c.name ORDER BY c.name"
    ).fetchall()
    return Result("SHOW", ["name", "replicas", "comment"], [(r[0], r[1], "") for r in rows])


def _show_cluster_replicas(db: psycopg.Connection) -> Result:
    rows = db.execute(
        "SELECT c.name, r.name, r.size, COALESCE(s.status = 'online', false)"
        " FROM mz_catalog.mz_cluster_replicas r"
        " JOIN mz_catalog.mz_clusters c ON c.id = r.cluster_id"
        " LEFT JOIN mz_internal.mz_cluster_replica_statuses s ON s.replica_id = r.id"
        " ORDER BY c.name, r.name"
    ).fetchall()
    return Result(
        "SHOW",
        ["cluster", "replica", "size", "ready", "comment"],
        [(r[0], r[1], r[2], "t" if r[3] else "f", "") for r in rows],
    )
