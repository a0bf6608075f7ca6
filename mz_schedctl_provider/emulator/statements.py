"""Execution of the Materialize-only statements (cluster DDL, cluster objects, variables).

``parse`` recognises a statement (see ``mzsql``); ``execute`` applies it to the simulated catalog
in one backend transaction, raising ``MzError`` with Materialize's error texts (materialize.md
section 3). Semantics follow Materialize v26.37; deviations are listed in the module docstring of
``catalog`` and in the README fidelity table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

from . import catalog, hydration, stats
from . import mzsql as m
from .mzsql import MzError, quote_ident

__all__ = ["MzError", "Result", "SessionLike", "execute", "parse"]

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


def parse(sql: str) -> object | None:
    """A parsed Materialize-only statement, or None for ordinary SQL (raises MzError on a
    malformed Materialize statement)."""
    return m.parse_statement(sql)


def returns_rows(stmt: object) -> bool:
    """SHOW statements answer with rows; the proxy must describe them before executing."""
    return isinstance(stmt, (m.ShowVariable, m.ShowClusters, m.ShowClusterReplicas))


def is_session_statement(stmt: object) -> bool:
    """SET/RESET of a session variable: neutral for Materialize's transaction rules."""
    return isinstance(stmt, (m.SetVariable, m.ResetVariable))


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


def _option_text(opt: m.Option) -> str:
    value = opt.value
    if value.kind in ("string", "number", "words") and value.text is not None:
        return value.text
    raise MzError(f"invalid {opt.name.upper()} option value", sqlstate="22023")


def _option_bool(opt: m.Option) -> bool:
    if opt.value.kind == "none":
        return True
    text = _option_text(opt).lower()
    if text in ("true", "on", "t", "yes", "1"):
        return True
    if text in ("false", "off", "f", "no", "0"):
        return False
    raise MzError(f"invalid {opt.name.upper()} option value: expected boolean", sqlstate="22023")


def _option_int(opt: m.Option) -> int:
    text = _option_text(opt)
    if not re.fullmatch(r"-?\d+", text):
        raise MzError(f"invalid {opt.name.upper()} option value: {text}", sqlstate="22023")
    value = int(text)
    if value < 0:
        raise MzError(
            f"invalid {opt.name.upper()} option value: must be non-negative", sqlstate="22023"
        )
    return value


def _interval(db: psycopg.Connection, text: str, what: str) -> str:
    """Validate a duration with PostgreSQL's interval input ('10m', '1 hour'...)."""
    try:
        with db.transaction():
            value = _scalar(db, "SELECT %s::interval::text", (text,))
    except psycopg.Error as exc:
        raise MzError(f"invalid {what}: {text}", sqlstate="22023") from exc
    return str(value)


def _options_by_name(options: list[m.Option], allowed: frozenset[str]) -> dict[str, m.Option]:
    by_name: dict[str, m.Option] = {}
    for opt in options:
        if opt.name not in allowed:
            raise MzError(f"unrecognized cluster option {opt.name.upper()}", sqlstate="42601")
        if opt.name in by_name:
            raise MzError(f"{opt.name.upper()} specified more than once", sqlstate="42601")
        by_name[opt.name] = opt
    return by_name


def _replica_size(options: list[m.Option], replica: str) -> str:
    size = None
    for opt in options:
        if opt.name == "size":
            size = _option_text(opt)
        elif opt.name not in IGNORED_CLUSTER_OPTIONS | {"availability zone", "internal"}:
            raise MzError(f"unrecognized replica option {opt.name.upper()}", sqlstate="42601")
    if size is None:
        raise MzError(f"replica {replica} must specify SIZE", sqlstate="42601")
    return size


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


# ---------------------------------------------------------------------------------------------
# CREATE / DROP CLUSTER [REPLICA]
# ---------------------------------------------------------------------------------------------


@dataclass
class _ManagedConfig:
    size: str | None = None
    replication_factor: int | None = None
    schedule: str | None = None  # 'manual' | 'on-refresh'
    hydration_time_estimate: str | None = None
    auto_scaling: str | None = None  # jsonb text, '' to clear
    managed: bool | None = None


def _schedule(db: psycopg.Connection, opt: m.Option) -> tuple[str, str | None]:
    value = opt.value
    text = (value.text or "").lower()
    if value.kind == "words" and text == "manual":
        return "manual", None
    if value.kind == "words" and text == "on refresh":
        estimate = "0"
        for inner in value.options or []:
            if inner.name != "hydration time estimate":
                raise MzError(
                    f"unrecognized SCHEDULE option {inner.name.upper()}", sqlstate="42601"
                )
            estimate = _option_text(inner)
        return "on-refresh", _interval(db, estimate, "HYDRATION TIME ESTIMATE")
    raise MzError("Expected one of MANUAL or ON REFRESH for SCHEDULE", sqlstate="42601")


def _auto_scaling(db: psycopg.Connection, session: SessionLike, opt: m.Option) -> str:
    """AUTO SCALING STRATEGY = (ON HYDRATION (HYDRATION SIZE = .., LINGER DURATION = ..)) | NONE."""
    value = opt.value
    if value.kind == "words" and (value.text or "").lower() == "none":
        return ""
    strategy: dict[str, Any] = {}
    for inner in value.options or []:
        if inner.name != "on hydration":
            raise MzError(
                f"unrecognized AUTO SCALING STRATEGY {inner.name.upper()}", sqlstate="42601"
            )
        params: dict[str, str] = {}
        for p in inner.value.options or []:
            if p.name == "hydration size":
                params["hydration_size"] = _option_text(p)
                _validate_size(db, session, params["hydration_size"])
            elif p.name == "linger duration":
                params["linger_duration"] = _interval(db, _option_text(p), "LINGER DURATION")
            else:
                raise MzError(
                    f"unrecognized ON HYDRATION option {p.name.upper()}", sqlstate="42601"
                )
        if "hydration_size" not in params:
            raise MzError("ON HYDRATION requires HYDRATION SIZE", sqlstate="42601")
        strategy["on_hydration"] = params
    if not strategy:
        raise MzError("Expected ON HYDRATION for AUTO SCALING STRATEGY", sqlstate="42601")
    return json.dumps(strategy)


def _managed_config(
    db: psycopg.Connection, session: SessionLike, options: list[m.Option]
) -> _ManagedConfig:
    by_name = _options_by_name(options, MANAGED_OPTIONS | IGNORED_CLUSTER_OPTIONS)
    cfg = _ManagedConfig()
    if "managed" in by_name:
        cfg.managed = _option_bool(by_name["managed"])
    if "size" in by_name:
        cfg.size = _option_text(by_name["size"])
        _validate_size(db, session, cfg.size)
    if "replication factor" in by_name:
        cfg.replication_factor = _option_int(by_name["replication factor"])
    if "schedule" in by_name:
        cfg.schedule, cfg.hydration_time_estimate = _schedule(db, by_name["schedule"])
        if cfg.schedule != "manual" and cfg.replication_factor is not None:
            raise MzError(
                "REPLICATION FACTOR cannot be given together with any SCHEDULE other than MANUAL",
                sqlstate="42601",
            )
    if "auto scaling strategy" in by_name:
        cfg.auto_scaling = _auto_scaling(db, session, by_name["auto scaling strategy"])
    return cfg


def _create_cluster(db: psycopg.Connection, session: SessionLike, stmt: m.CreateCluster) -> Result:
    _check_reserved("cluster", stmt.name)
    if _get_cluster(db, stmt.name) is not None:
        raise MzError(f"cluster '{stmt.name}' already exists")
    if stmt.replicas is not None:
        return _create_unmanaged_cluster(db, session, stmt)
    cfg = _managed_config(db, session, stmt.options)
    if cfg.managed is False:
        raise MzError("must specify REPLICAS when creating an unmanaged cluster", sqlstate="42601")
    if cfg.size is None:
        raise MzError("missing SIZE for managed cluster", sqlstate="42601")
    schedule = cfg.schedule or "manual"
    # An ON REFRESH cluster is turned on only around refreshes; the emulator has no REFRESH
    # materialized views, so such a cluster stays off (replication factor 0).
    rf = (
        0
        if schedule == "on-refresh"
        else (1 if cfg.replication_factor is None else cfg.replication_factor)
    )
    limit = _setting_int(db, "max_replicas_per_cluster")
    if rf > limit:
        _check_replica_count(db, "", 0, rf)
    cluster_id = catalog.create_cluster_row(
        db,
        stmt.name,
        managed=True,
        size=cfg.size,
        replication_factor=rf,
        schedule=schedule,
        hydration_time_estimate=cfg.hydration_time_estimate,
        auto_scaling=cfg.auto_scaling or None,
    )
    for i in range(1, rf + 1):
        catalog.add_replica(db, cluster_id, f"r{i}", cfg.size)
    return Result("CREATE CLUSTER")


def _create_unmanaged_cluster(
    db: psycopg.Connection, session: SessionLike, stmt: m.CreateCluster
) -> Result:
    by_name = _options_by_name(stmt.options, frozenset({"managed"}) | IGNORED_CLUSTER_OPTIONS)
    if "managed" in by_name and _option_bool(by_name["managed"]):
        raise MzError("REPLICAS not supported for managed clusters", sqlstate="42601")
    assert stmt.replicas is not None
    seen: set[str] = set()
    sizes: list[tuple[str, str]] = []
    for replica in stmt.replicas:
        _check_reserved("replica", replica.name)
        if replica.name in seen:
            raise MzError(
                f"cannot create multiple replicas named '{replica.name}' on cluster '{stmt.name}'"
            )
        seen.add(replica.name)
        size = _replica_size(replica.options, replica.name)
        _validate_size(db, session, size)
        sizes.append((replica.name, size))
    _check_replica_count(db, "", 0, len(sizes))
    cluster_id = catalog.create_cluster_row(
        db, stmt.name, managed=False, size=None, replication_factor=None
    )
    for name, size in sizes:
        catalog.add_replica(db, cluster_id, name, size)
    return Result("CREATE CLUSTER")


def _create_cluster_replica(
    db: psycopg.Connection, session: SessionLike, stmt: m.CreateClusterReplica
) -> Result:
    cluster = _require_user_cluster(db, stmt.cluster)
    if cluster["managed"]:
        raise MzError(f"cannot modify managed cluster {stmt.cluster}")
    _check_reserved("replica", stmt.name)
    size = _replica_size(stmt.options, stmt.name)
    _validate_size(db, session, size)
    live = _live_replicas(db, cluster["id"])
    if any(r["name"] == stmt.name for r in live):
        raise MzError(
            f"cannot create multiple replicas named '{stmt.name}' on cluster '{stmt.cluster}'"
        )
    _check_replica_count(db, cluster["id"], len(live), len(live) + 1)
    catalog.add_replica(db, cluster["id"], stmt.name, size)
    return Result("CREATE CLUSTER REPLICA")


def _drop_cluster_replica(db: psycopg.Connection, stmt: m.DropClusterReplica) -> Result:
    result = Result("DROP CLUSTER REPLICA")
    for cluster_name, replica_name in stmt.targets:
        cluster = _get_cluster(db, cluster_name)
        if cluster is None:
            if stmt.if_exists:
                result.notices.append(f'cluster "{cluster_name}" does not exist, skipping')
                continue
            raise _unknown_cluster(cluster_name)
        if str(cluster["id"]).startswith("s"):
            raise MzError(f"system cluster '{cluster_name}' cannot be modified")
        if cluster["managed"]:
            raise MzError("cannot drop replica of managed cluster")
        replica = next(
            (r for r in _live_replicas(db, cluster["id"]) if r["name"] == replica_name), None
        )
        if replica is None:
            if stmt.if_exists:
                result.notices.append(
                    f'cluster replica "{cluster_name}.{replica_name}" does not exist, skipping'
                )
                continue
            raise MzError(f'CLUSTER {cluster_name} has no CLUSTER REPLICA named "{replica_name}"')
        catalog.drop_replica(db, replica["id"])
    return result


def _user_items_on(db: psycopg.Connection, cluster_id: str) -> list[Row]:
    return _all(
        db,
        "SELECT * FROM mz_emulator.items WHERE cluster_id = %s AND id LIKE 'u%%' ORDER BY id",
        (cluster_id,),
    )


def _drop_cluster(db: psycopg.Connection, stmt: m.DropCluster) -> Result:
    result = Result("DROP CLUSTER")
    for name in stmt.names:
        cluster = _get_cluster(db, name)
        if cluster is None:
            if stmt.if_exists:
                result.notices.append(f'cluster "{name}" does not exist, skipping')
                continue
            raise _unknown_cluster(name)
        if str(cluster["id"]).startswith("s"):
            raise MzError(f"system cluster '{name}' cannot be modified")
        items = _user_items_on(db, cluster["id"])
        if items and not stmt.cascade:
            raise MzError(
                f'cannot drop cluster "{name}" because other objects depend on it',
                sqlstate="2BP01",
                hint="Use DROP ... CASCADE to drop the dependent objects too.",
            )
        for item in items:
            _drop_item_objects(db, item, cascade=True)
        db.execute(
            "UPDATE mz_emulator.replicas SET dropped_at = mz_emulator.now()"
            " WHERE cluster_id = %s AND dropped_at IS NULL",
            (cluster["id"],),
        )
        _cancel_reconfigurations(db, cluster["id"])
        db.execute("DELETE FROM mz_emulator.items WHERE cluster_id = %s", (cluster["id"],))
        db.execute("DELETE FROM mz_emulator.clusters WHERE id = %s", (cluster["id"],))
    return result


# ---------------------------------------------------------------------------------------------
# ALTER CLUSTER
# ---------------------------------------------------------------------------------------------


def _cancel_reconfigurations(db: psycopg.Connection, cluster_id: str) -> None:
    db.execute(
        "UPDATE mz_emulator.replicas SET dropped_at = mz_emulator.now()"
        " WHERE cluster_id = %s AND pending AND dropped_at IS NULL",
        (cluster_id,),
    )
    db.execute(
        "UPDATE mz_emulator.reconfigurations SET status = 'cancelled',"
        " finished_at = mz_emulator.now() WHERE cluster_id = %s AND status = 'in-progress'",
        (cluster_id,),
    )


def _set_replication(
    db: psycopg.Connection, cluster: Row, size: str, rf: int, *, replace_all: bool
) -> None:
    """Make the managed replicas r1..r<rf> of the given size exist (dropping others)."""
    live = [r for r in _live_replicas(db, cluster["id"]) if not r["pending"]]
    wanted = {f"r{i}" for i in range(1, rf + 1)}
    keep: set[str] = set()
    for replica in live:
        if replace_all or replica["name"] not in wanted or replica["size"] != size:
            catalog.drop_replica(db, replica["id"])
        else:
            keep.add(replica["name"])
    for i in range(1, rf + 1):
        if f"r{i}" not in keep:
            catalog.add_replica(db, cluster["id"], f"r{i}", size)


def _wait_options(db: psycopg.Connection, with_options: list[m.Option]) -> tuple[str, str] | None:
    """(timeout interval, on-timeout action) of WITH (WAIT UNTIL READY (...)) / WAIT FOR."""
    for opt in with_options:
        if opt.name == "wait until ready":
            timeout, on_timeout = DEFAULT_WAIT_TIMEOUT, DEFAULT_ON_TIMEOUT
            for inner in opt.value.options or []:
                if inner.name == "timeout":
                    timeout = _interval(db, _option_text(inner), "TIMEOUT")
                elif inner.name == "on timeout":
                    on_timeout = _option_text(inner).upper()
                    if on_timeout not in ("COMMIT", "ROLLBACK"):
                        raise MzError(
                            f"invalid ON TIMEOUT value: {on_timeout}; expected COMMIT or ROLLBACK",
                            sqlstate="22023",
                        )
                else:
                    raise MzError(f"unrecognized WAIT UNTIL READY option {inner.name.upper()}")
            return timeout, on_timeout
        if opt.name == "wait for":
            return _interval(db, _option_text(opt), "WAIT FOR"), "COMMIT"
        raise MzError(f"unrecognized ALTER CLUSTER option {opt.name.upper()}", sqlstate="42601")
    return None


def _start_reconfiguration(
    db: psycopg.Connection, cluster: Row, size: str, rf: int, wait: tuple[str, str]
) -> None:
    """Background resize (v26.35+): pending replicas now, finalized by mz_emulator.settle()."""
    _cancel_reconfigurations(db, cluster["id"])
    live = _live_replicas(db, cluster["id"])
    _check_replica_count(db, cluster["id"], len(live), len(live) + rf)
    for i in range(1, rf + 1):
        catalog.add_replica(db, cluster["id"], f"r{i}-pending", size, pending=True)
    timeout, on_timeout = wait
    changes: dict[str, Any] = {}
    if size != cluster["size"]:
        changes["size"] = {"from": cluster["size"], "to": size}
    if rf != cluster["replication_factor"]:
        changes["replication_factor"] = {"from": cluster["replication_factor"], "to": rf}
    db.execute(
        "INSERT INTO mz_emulator.reconfigurations (cluster_id, status, deadline, on_timeout,"
        " target, changes, started_at) VALUES (%s, 'in-progress',"
        " mz_emulator.now() + %s::interval, %s, %s::jsonb, %s::jsonb, mz_emulator.now())",
        (
            cluster["id"],
            timeout,
            on_timeout,
            json.dumps({"size": size, "replication_factor": rf}),
            json.dumps(changes),
        ),
    )


def _alter_set(
    db: psycopg.Connection, session: SessionLike, cluster: Row, stmt: m.AlterCluster
) -> None:
    cfg = _managed_config(db, session, stmt.options)
    wait = _wait_options(db, stmt.with_options)
    name = cluster["name"]
    if cfg.managed is False:
        if cfg.size or cfg.replication_factor is not None or cfg.schedule:
            raise MzError("cannot set SIZE, REPLICATION FACTOR or SCHEDULE on an unmanaged cluster")
        # Hand the replicas over to whoever manages them now; they keep running.
        _cancel_reconfigurations(db, cluster["id"])
        db.execute(
            "UPDATE mz_emulator.clusters SET managed = false, size = NULL,"
            " replication_factor = NULL, schedule = 'manual', hydration_time_estimate = NULL"
            " WHERE id = %s",
            (cluster["id"],),
        )
        return
    managed = cluster["managed"] or cfg.managed is True
    if not managed:
        raise MzError(f"cannot modify unmanaged cluster {name}: set MANAGED = true first")
    size = cfg.size or cluster["size"]
    if not cluster["managed"]:
        size = size or _uniform_replica_size(db, cluster, name)
    rf = cfg.replication_factor
    if rf is None:
        current_rf = cluster["replication_factor"]
        if current_rf is None:
            current_rf = len(_live_replicas(db, cluster["id"]))
        rf = current_rf
    schedule = cfg.schedule or cluster["schedule"]
    if cfg.replication_factor is not None and schedule != "manual":
        raise MzError(
            "REPLICATION FACTOR cannot be given together with any SCHEDULE other than MANUAL",
            sqlstate="42601",
        )
    if schedule == "on-refresh":
        rf = 0
    size_changed = size != cluster["size"]
    live = [r for r in _live_replicas(db, cluster["id"]) if not r["pending"]]
    if (
        wait is not None
        and (size_changed or rf != cluster["replication_factor"])
        and rf > 0
        and cluster["managed"]
    ):
        _start_reconfiguration(db, cluster, size, rf, wait)
    else:
        _cancel_reconfigurations(db, cluster["id"])
        _check_replica_count(db, cluster["id"], len(live), rf)
        _set_replication(db, cluster, size, rf, replace_all=size_changed and cluster["managed"])
        db.execute(
            "UPDATE mz_emulator.clusters SET size = %s, replication_factor = %s WHERE id = %s",
            (size, rf, cluster["id"]),
        )
    db.execute(
        "UPDATE mz_emulator.clusters SET managed = true, schedule = %s,"
        " hydration_time_estimate = %s::interval WHERE id = %s",
        (
            schedule,
            cfg.hydration_time_estimate if cfg.schedule else cluster["hydration_time_estimate"],
            cluster["id"],
        ),
    )
    if cfg.auto_scaling is not None:
        db.execute(
            "UPDATE mz_emulator.clusters SET auto_scaling = %s::jsonb WHERE id = %s",
            (cfg.auto_scaling or None, cluster["id"]),
        )


def _uniform_replica_size(db: psycopg.Connection, cluster: Row, name: str) -> str:
    sizes = {r["size"] for r in _live_replicas(db, cluster["id"])}
    if len(sizes) != 1:
        raise MzError(
            f"cannot convert unmanaged cluster {name} to managed: specify SIZE", sqlstate="42601"
        )
    return str(sizes.pop())


def _alter_reset(
    db: psycopg.Connection, session: SessionLike, cluster: Row, stmt: m.AlterCluster
) -> None:
    if not cluster["managed"]:
        raise MzError(f"cannot modify unmanaged cluster {cluster['name']}")
    options: list[m.Option] = []
    for name in stmt.reset:
        if name == "replication factor":
            options.append(m.Option(name, m.OptionValue("1", "number")))
        elif name == "schedule":
            options.append(m.Option(name, m.OptionValue("manual", "words")))
        elif name == "auto scaling strategy":
            options.append(m.Option(name, m.OptionValue("none", "words")))
        else:
            raise MzError(f"cannot RESET {name.upper()} of a managed cluster", sqlstate="0A000")
    _alter_set(db, session, cluster, m.AlterCluster(cluster["name"], False, "set", options))


def _alter_cluster(db: psycopg.Connection, session: SessionLike, stmt: m.AlterCluster) -> Result:
    result = Result("ALTER CLUSTER")
    cluster = _get_cluster(db, stmt.name)
    if cluster is None:
        if stmt.if_exists:
            result.notices.append(f'cluster "{stmt.name}" does not exist, skipping')
            return result
        raise _unknown_cluster(stmt.name)
    if str(cluster["id"]).startswith("s"):
        raise MzError(f"system cluster '{stmt.name}' cannot be modified")
    if stmt.action == "rename":
        assert stmt.new_name is not None
        _check_reserved("cluster", stmt.new_name)
        if _get_cluster(db, stmt.new_name) is not None:
            raise MzError(f"cluster '{stmt.new_name}' already exists")
        db.execute(
            "UPDATE mz_emulator.clusters SET name = %s WHERE id = %s",
            (stmt.new_name, cluster["id"]),
        )
    elif stmt.action == "reset":
        _alter_reset(db, session, cluster, stmt)
    else:
        _alter_set(db, session, cluster, stmt)
    return result


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


# ---------------------------------------------------------------------------------------------
# Objects on clusters
# ---------------------------------------------------------------------------------------------


def _split_name(name: m.QualifiedName) -> tuple[str, str]:
    """(schema, item) of a 1-3 part name; the database part is ignored (one database)."""
    if len(name) == 1:
        return "public", name[0]
    return name[-2], name[-1]


def _display(name: m.QualifiedName) -> str:
    return ".".join(name)


def _target_cluster(db: psycopg.Connection, session: SessionLike, explicit: str | None) -> Row:
    name = explicit if explicit is not None else session.vars.get("cluster", DEFAULT_CLUSTER)
    cluster = _require_cluster(db, name)
    if str(cluster["id"]).startswith("s"):
        raise MzError(f"system cluster '{name}' cannot be modified")
    return cluster


def _find_item(db: psycopg.Connection, schema: str, name: str) -> Row | None:
    return _one(
        db,
        "SELECT * FROM mz_emulator.items WHERE schema_name = %s AND name = %s"
        " AND kind <> 'index' ORDER BY id LIMIT 1",
        (schema, name),
    )


def _pg_relation_kind(db: psycopg.Connection, schema: str, name: str) -> str | None:
    kind = _scalar(
        db,
        "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    )
    return None if kind is None else str(kind)


def _new_item(
    db: psycopg.Connection,
    *,
    kind: str,
    schema: str,
    name: str,
    cluster_id: str | None,
    on_id: str | None = None,
    item_type: str | None = None,
    definition: str | None = None,
    create_sql: str | None = None,
) -> str:
    item_id = catalog.next_id(db, "item", "u")
    db.execute(
        "INSERT INTO mz_emulator.items (id, oid, kind, schema_name, name, cluster_id, on_id,"
        " item_type, definition, create_sql, redacted_create_sql, created_at)"
        " VALUES (%s, mz_emulator.next_id('oid'), %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " mz_emulator.now())",
        (
            item_id,
            kind,
            schema,
            name,
            cluster_id,
            on_id,
            item_type,
            definition,
            create_sql,
            None if create_sql is None else m.redact(create_sql),
        ),
    )
    if kind in ("index", "materialized-view", "source", "sink"):
        hydration.record_for_object(db, item_id)
    return item_id


def _resolve_relation(db: psycopg.Connection, name: m.QualifiedName) -> str:
    """Item id of a relation: a catalog item, or a PostgreSQL table/view registered lazily."""
    schema, item = _split_name(name)
    found = _find_item(db, schema, item)
    if found is not None:
        return str(found["id"])
    relkind = _pg_relation_kind(db, schema, item)
    if relkind is None:
        raise MzError(f"unknown catalog item '{_display(name)}'", sqlstate="42P01")
    kind = "view" if relkind in ("v", "m") else "table"
    return _new_item(db, kind=kind, schema=schema, name=item, cluster_id=None)


def _name_taken(db: psycopg.Connection, schema: str, name: str) -> bool:
    return (
        bool(
            _scalar(
                db,
                "SELECT EXISTS (SELECT 1 FROM mz_emulator.items"
                " WHERE schema_name = %s AND name = %s"
                " AND kind IN ('index', 'materialized-view', 'source', 'sink'))",
                (schema, name),
            )
        )
        or _pg_relation_kind(db, schema, name) is not None
    )


def _exists_error(name: str) -> MzError:
    return MzError(f"catalog item '{name}' already exists", sqlstate="42710")


def _create_index(db: psycopg.Connection, session: SessionLike, stmt: m.CreateIndex) -> Result:
    cluster = _target_cluster(db, session, stmt.cluster)
    schema, on_name = _split_name(stmt.on)
    on_id = _resolve_relation(db, stmt.on)
    if stmt.name is not None:
        name = stmt.name
    elif stmt.default or not stmt.columns:
        name = f"{on_name}_primary_idx"
    else:
        cols = "_".join(re.sub(r"\W+", "_", c).strip("_") for c in stmt.columns)
        name = f"{on_name}_{cols}_idx"
    if _name_taken(db, schema, name):
        if stmt.if_not_exists:
            return Result("CREATE INDEX", notices=[f"index {name} already exists, skipping"])
        raise _exists_error(name)
    _new_item(
        db,
        kind="index",
        schema=schema,
        name=name,
        cluster_id=cluster["id"],
        on_id=on_id,
        create_sql=stmt.sql,
    )
    return Result("CREATE INDEX")


@contextmanager
def _as_user(db: psycopg.Connection) -> Iterator[None]:
    """Run PostgreSQL DDL as the user role with its search path, so it owns what it creates."""
    db.execute(f"SET LOCAL ROLE {catalog.USER_ROLE}")
    db.execute(f"SET LOCAL search_path = {catalog.SEARCH_PATH}")
    try:
        yield
    finally:
        db.execute("RESET ROLE")
        db.execute("RESET search_path")


def _relation_sql(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _create_materialized_view(
    db: psycopg.Connection, session: SessionLike, stmt: m.CreateMaterializedView
) -> Result:
    cluster = _target_cluster(db, session, stmt.cluster)
    schema, name = _split_name(stmt.name)
    existing = _find_item(db, schema, name)
    if existing is not None and stmt.or_replace and existing["kind"] == "materialized-view":
        _drop_item_objects(db, existing, cascade=False)
    elif _name_taken(db, schema, name):
        if stmt.if_not_exists:
            return Result(
                "CREATE MATERIALIZED VIEW", notices=[f"materialized view {name} already exists"]
            )
        raise _exists_error(name)
    with _as_user(db):
        db.execute(f"CREATE VIEW {_relation_sql(schema, name)} AS {stmt.query}")
    _new_item(
        db,
        kind="materialized-view",
        schema=schema,
        name=name,
        cluster_id=cluster["id"],
        definition=stmt.query,
        create_sql=stmt.sql,
    )
    return Result("CREATE MATERIALIZED VIEW")


def _check_single_replica(db: psycopg.Connection, cluster: Row, what: str) -> None:
    if len(_live_replicas(db, cluster["id"])) > 1:
        raise MzError(f"cannot create {what} in cluster with more than one replica")


def _create_source(db: psycopg.Connection, session: SessionLike, stmt: m.CreateSource) -> Result:
    cluster = _target_cluster(db, session, stmt.cluster)
    _check_single_replica(db, cluster, "source")
    schema, name = _split_name(stmt.name)
    if _name_taken(db, schema, name):
        if stmt.if_not_exists:
            return Result("CREATE SOURCE", notices=[f"source {name} already exists, skipping"])
        raise _exists_error(name)
    # An empty table stands in for the source's data so that it can be selected.
    columns = "(counter bigint)" if stmt.generator == "counter" else "()"
    with _as_user(db):
        db.execute(f"CREATE TABLE {_relation_sql(schema, name)} {columns}")
    _new_item(
        db,
        kind="source",
        schema=schema,
        name=name,
        cluster_id=cluster["id"],
        item_type=stmt.source_type,
        create_sql=stmt.sql,
    )
    return Result("CREATE SOURCE")


def _create_sink(db: psycopg.Connection, session: SessionLike, stmt: m.CreateSink) -> Result:
    cluster = _target_cluster(db, session, stmt.cluster)
    _check_single_replica(db, cluster, "sink")
    schema, name = _split_name(stmt.name)
    from_id = _resolve_relation(db, stmt.from_name)
    if _name_taken(db, schema, name):
        if stmt.if_not_exists:
            return Result("CREATE SINK", notices=[f"sink {name} already exists, skipping"])
        raise _exists_error(name)
    _new_item(
        db,
        kind="sink",
        schema=schema,
        name=name,
        cluster_id=cluster["id"],
        on_id=from_id,
        item_type=stmt.sink_type,
        create_sql=stmt.sql,
    )
    return Result("CREATE SINK")


_KIND_WORDS = {
    "index": "index",
    "materialized-view": "materialized view",
    "source": "source",
    "sink": "sink",
}
_DROP_TAGS = {
    "index": "DROP INDEX",
    "materialized-view": "DROP MATERIALIZED VIEW",
    "source": "DROP SOURCE",
    "sink": "DROP SINK",
}


def _drop_item_objects(db: psycopg.Connection, item: Row, *, cascade: bool) -> None:
    """Remove an item, the items built on it, and its PostgreSQL stand-in."""
    for dependent in _all(db, "SELECT * FROM mz_emulator.items WHERE on_id = %s", (item["id"],)):
        _drop_item_objects(db, dependent, cascade=True)
    relation = _relation_sql(item["schema_name"], item["name"])
    suffix = " CASCADE" if cascade else ""
    if item["kind"] == "materialized-view":
        db.execute(f"DROP VIEW IF EXISTS {relation}{suffix}")
    elif item["kind"] == "source":
        db.execute(f"DROP TABLE IF EXISTS {relation}{suffix}")
    db.execute("DELETE FROM mz_emulator.items WHERE id = %s", (item["id"],))


def _drop_items(db: psycopg.Connection, stmt: m.DropItems) -> Result:
    result = Result(_DROP_TAGS[stmt.kind])
    word = _KIND_WORDS[stmt.kind]
    for qname in stmt.names:
        schema, name = _split_name(qname)
        item = _one(
            db,
            "SELECT * FROM mz_emulator.items WHERE schema_name = %s AND name = %s AND kind = %s",
            (schema, name, stmt.kind),
        )
        if item is None:
            if stmt.if_exists:
                result.notices.append(f'{word} "{_display(qname)}" does not exist, skipping')
                continue
            raise MzError(f"unknown catalog item '{_display(qname)}'", sqlstate="42P01")
        dependents = _all(
            db, "SELECT * FROM mz_emulator.items WHERE on_id = %s ORDER BY id", (item["id"],)
        )
        if dependents and not stmt.cascade:
            listed = ", ".join(f'{_KIND_WORDS[d["kind"]]} "{d["name"]}"' for d in dependents)
            raise MzError(
                f'cannot drop {word} "{name}": still depended upon by {listed}',
                sqlstate="2BP01",
            )
        _drop_item_objects(db, item, cascade=stmt.cascade)
    return result


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------

_Handler = Callable[[psycopg.Connection, SessionLike, Any], Result]

_HANDLERS: dict[type, _Handler] = {
    m.CreateCluster: _create_cluster,
    m.CreateClusterReplica: _create_cluster_replica,
    m.DropCluster: lambda db, _s, st: _drop_cluster(db, st),
    m.DropClusterReplica: lambda db, _s, st: _drop_cluster_replica(db, st),
    m.AlterCluster: _alter_cluster,
    m.SetVariable: _set_variable,
    m.ResetVariable: lambda _db, s, st: _reset_variable(s, st),
    m.ShowVariable: _show_variable,
    m.ShowClusters: lambda db, _s, _st: _show_clusters(db),
    m.ShowClusterReplicas: lambda db, _s, _st: _show_cluster_replicas(db),
    m.AlterSystem: lambda db, _s, st: _alter_system(db, st),
    m.CreateIndex: _create_index,
    m.CreateMaterializedView: _create_materialized_view,
    m.CreateSource: _create_source,
    m.CreateSink: _create_sink,
    m.DropItems: lambda db, _s, st: _drop_items(db, st),
}


def execute(stmt: object, *, db: psycopg.Connection, session: SessionLike) -> Result:
    """Run a statement returned by ``parse``; atomic, raises MzError."""
    handler = _HANDLERS.get(type(stmt))
    if handler is None:
        raise TypeError(f"not a Materialize statement: {stmt!r}")
    with _atomic(db):
        catalog.settle(db)
        result = handler(db, session, stmt)
        # Catalog DDL grows the base tables: keep PostgreSQL's plans of the catalog views
        # right while a fleet is being built (see emulator.stats).
        stats.analyze_if_grown(db)
        return result
