"""Shared by the Materialize-only statements: the result type, the session they see, cluster
lookups and the checks several families make.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from .. import catalog
from .. import mzsql as m
from ..errors import MzError

DEFAULT_CLUSTER = "quickstart"
RESERVED_PREFIXES = ("mz_", "pg_")
DEFAULT_WAIT_TIMEOUT = "1 hour"
DEFAULT_ON_TIMEOUT = "COMMIT"
# Cluster options accepted for compatibility that the simulation does not model.
IGNORED_CLUSTER_OPTIONS = frozenset(
    {
        "disk",
        "introspection interval",
        "introspection debugging",
        "availability zones",
        "workload class",
    }
)
MANAGED_OPTIONS = frozenset(
    {"size", "replication factor", "managed", "schedule", "auto scaling strategy"}
)


@dataclass
class Result:
    tag: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[str | None, ...]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    types: list[int] | None = None  # type OIDs of the columns; None: all text


class SessionLike(Protocol):
    user: str
    vars: dict[str, str]


Row = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


@contextmanager
def _atomic(db: psycopg.Connection) -> Iterator[None]:
    """One backend transaction; PostgreSQL errors surface as MzError with their SQLSTATE."""
    try:
        with db.transaction():
            yield
    except psycopg.Error as exc:
        diag = exc.diag
        raise MzError(
            diag.message_primary or str(exc),
            sqlstate=exc.sqlstate or "XX000",
            detail=diag.message_detail,
            hint=diag.message_hint,
        ) from exc


def _one(db: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def _all(db: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
    with db.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _scalar(db: psycopg.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = db.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _unknown_cluster(name: str) -> MzError:
    return MzError(f"unknown cluster '{name}'")


def _get_cluster(db: psycopg.Connection, name: str) -> Row | None:
    return _one(db, "SELECT * FROM mz_emulator.clusters WHERE name = %s FOR UPDATE", (name,))


def _require_cluster(db: psycopg.Connection, name: str) -> Row:
    cluster = _get_cluster(db, name)
    if cluster is None:
        raise _unknown_cluster(name)
    return cluster


def _require_user_cluster(db: psycopg.Connection, name: str) -> Row:
    cluster = _require_cluster(db, name)
    if str(cluster["id"]).startswith("s"):
        raise MzError(f"system cluster '{name}' cannot be modified")
    return cluster


def _live_replicas(db: psycopg.Connection, cluster_id: str) -> list[Row]:
    return _all(
        db,
        "SELECT * FROM mz_emulator.replicas WHERE cluster_id = %s AND dropped_at IS NULL"
        " ORDER BY name",
        (cluster_id,),
    )


def _check_reserved(kind: str, name: str) -> None:
    if name.startswith(RESERVED_PREFIXES):
        quoted = '"' + name.replace('"', '\\"') + '"'
        raise MzError(f"{kind} name {quoted} is reserved", sqlstate="42939")


def _parse_size_list(text: str) -> list[str]:
    """allowed_cluster_replica_sizes: '"25cc", "50cc"' (or bare words) -> ['25cc', '50cc']."""
    tokens = m.tokenize(text) if text.strip() else []
    return [t.value for t in tokens if t.kind in (m.WORD, m.IDENT, m.STRING, m.NUMBER)]


def _validate_size(db: psycopg.Connection, session: SessionLike, size: str) -> None:
    """Known and allowed size, else Materialize's error with the list of usable sizes."""
    known = [r[0] for r in db.execute("SELECT size FROM mz_emulator.sizes ORDER BY ord")]
    allowed = _parse_size_list(catalog.get_setting(db, "allowed_cluster_replica_sizes") or "")
    if session.user == "mz_system" or not allowed:
        usable = known
    else:
        usable = [s for s in known if s in allowed]
    if size not in usable:
        raise MzError(
            f"unknown cluster replica size {size}",
            hint="Valid cluster replica sizes are: " + ", ".join(usable),
        )


def _interval(db: psycopg.Connection, text: str, what: str) -> str:
    """Validate a duration with PostgreSQL's interval input ('10m', '1 hour'...)."""
    try:
        with db.transaction():
            value = _scalar(db, "SELECT %s::interval::text", (text,))
    except psycopg.Error as exc:
        raise MzError(f"invalid {what}: {text}", sqlstate="22023") from exc
    return str(value)


def _setting_int(db: psycopg.Connection, name: str) -> int:
    return int(catalog.get_setting(db, name) or 0)


def _has_storage_objects(db: psycopg.Connection, cluster_id: str) -> bool:
    return bool(
        _scalar(
            db,
            "SELECT EXISTS (SELECT 1 FROM mz_emulator.items WHERE cluster_id = %s"
            " AND kind IN ('source', 'sink'))",
            (cluster_id,),
        )
    )


def _check_replica_count(
    db: psycopg.Connection, cluster_id: str, current: int, desired: int
) -> None:
    """max_replicas_per_cluster and the one-replica rule of clusters with sources/sinks."""
    limit = _setting_int(db, "max_replicas_per_cluster")
    if desired > limit and desired > current:
        raise MzError(
            "creating cluster replica would violate max_replicas_per_cluster limit"
            f" (desired: {desired}, limit: {limit}, current: {current})",
            sqlstate="53000",
            hint="Drop an existing cluster replica or contact support to request a limit increase.",
        )
    if desired > 1 and desired > current and _has_storage_objects(db, cluster_id):
        noun = "replica" if current == 1 else "replicas"
        raise MzError(
            "cannot create more than one replica of a cluster containing sources or sinks",
            detail=f"Currently have {current} {noun}; command would result in {desired}",
        )
