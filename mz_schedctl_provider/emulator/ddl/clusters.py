"""CREATE / DROP / ALTER CLUSTER, managed and unmanaged, including graceful reconfiguration."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from .. import catalog
from .. import mzsql as m
from ..errors import MzError
from .common import (
    IGNORED_CLUSTER_OPTIONS,
    Result,
    Row,
    SessionLike,
    _check_replica_count,
    _check_reserved,
    _get_cluster,
    _live_replicas,
    _setting_int,
    _unknown_cluster,
    _validate_size,
)
from .objects import _drop_item_objects
from .options import _managed_config, _option_bool, _options_by_name, _replica_size, _wait_options
from .replicas import _user_items_on


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
