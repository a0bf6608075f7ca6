"""SQL text for the controller's DDL, every identifier quoted by psycopg's sql module: a cluster
or replica may be named anything Materialize accepts (quotes, spaces, unicode, semicolons)."""

from __future__ import annotations

from psycopg import sql

from mz_schedctl_provider.engine.models import Action, Alter


def ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def literal(value: str) -> str:
    return sql.Literal(value).as_string(None)


def create_replica(cluster: str, replica: str, size: str) -> str:
    return (
        sql.SQL("CREATE CLUSTER REPLICA {}.{} (SIZE = {})")
        .format(sql.Identifier(cluster), sql.Identifier(replica), sql.Literal(size))
        .as_string(None)
    )


def drop_replica(cluster: str, replica: str) -> str:
    return (
        sql.SQL("DROP CLUSTER REPLICA {}.{}")
        .format(sql.Identifier(cluster), sql.Identifier(replica))
        .as_string(None)
    )


def interval(seconds: float) -> str:
    """A duration as Materialize interval text: '10m', '1h', '90s'."""
    whole = max(1, round(seconds))
    if whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def alter_cluster(cluster: str, alter: Alter) -> str:
    """ALTER CLUSTER of a managed cluster; with ``wait``, Materialize's graceful
    reconfiguration: WITH (WAIT UNTIL READY (TIMEOUT = ..., ON TIMEOUT = 'ROLLBACK'))."""
    options: list[sql.Composable] = []
    if alter.size is not None:
        options.append(sql.SQL("SIZE = {}").format(sql.Literal(alter.size)))
    if alter.replication_factor is not None:
        if alter.replication_factor < 0:
            raise ValueError(f"negative replication factor {alter.replication_factor}")
        options.append(
            sql.SQL("REPLICATION FACTOR = {}").format(sql.Literal(int(alter.replication_factor)))
        )
    if not options:
        raise ValueError("ALTER CLUSTER with nothing to set")
    statement = sql.SQL("ALTER CLUSTER {} SET ({})").format(
        sql.Identifier(cluster), sql.SQL(", ").join(options)
    )
    if alter.wait:
        timeout = interval(alter.timeout_s if alter.timeout_s is not None else 3600)
        statement = sql.SQL("{} WITH (WAIT UNTIL READY (TIMEOUT = {}, ON TIMEOUT = {}))").format(
            statement, sql.Literal(timeout), sql.Literal("ROLLBACK")
        )
    return statement.as_string(None)


def render(action: Action) -> str:
    """The statement that carries out one planned action."""
    if action.kind == "create_replica":
        if action.size is None:
            raise ValueError(f"create_replica action {action.id} has no size")
        return create_replica(action.cluster_name, action.replica_name, action.size)
    if action.kind == "drop_replica":
        return drop_replica(action.cluster_name, action.replica_name)
    if action.kind == "alter_cluster":
        if action.alter is None:
            raise ValueError(f"alter_cluster action {action.id} says nothing to set")
        return alter_cluster(action.cluster_name, action.alter)
    raise ValueError(f"no SQL rendering for action kind {action.kind!r}")
