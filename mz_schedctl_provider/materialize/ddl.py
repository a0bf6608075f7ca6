"""SQL text for the controller's DDL, every identifier quoted by psycopg's sql module: a cluster
or replica may be named anything Materialize accepts (quotes, spaces, unicode, semicolons)."""

from __future__ import annotations

from psycopg import sql

from mz_schedctl_provider.engine.models import Action


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


def render(action: Action) -> str:
    """The statement that carries out one planned action."""
    if action.kind == "create_replica":
        if action.size is None:
            raise ValueError(f"create_replica action {action.id} has no size")
        return create_replica(action.cluster_name, action.replica_name, action.size)
    if action.kind == "drop_replica":
        return drop_replica(action.cluster_name, action.replica_name)
    raise ValueError(f"no SQL rendering for action kind {action.kind!r}")
