"""CREATE / DROP CLUSTER REPLICA."""

from __future__ import annotations

import psycopg

from .. import catalog
from .. import mzsql as m
from ..errors import MzError
from .common import (
    Result,
    Row,
    SessionLike,
    _all,
    _check_replica_count,
    _check_reserved,
    _get_cluster,
    _live_replicas,
    _require_user_cluster,
    _unknown_cluster,
    _validate_size,
)
from .options import _replica_size


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
