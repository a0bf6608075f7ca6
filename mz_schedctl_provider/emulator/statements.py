"""Execution of the Materialize-only statements (cluster DDL, cluster objects, variables).

``parse`` recognises a statement (see ``mzsql``); ``execute`` applies it to the simulated catalog
in one backend transaction, raising ``MzError`` with Materialize's error texts (materialize.md
section 3). Semantics follow Materialize v26.37; deviations are listed in the module docstring of
``catalog`` and in the README fidelity table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from . import catalog, stats
from . import mzsql as m
from .ddl.clusters import _alter_cluster, _create_cluster, _drop_cluster
from .ddl.common import Result, SessionLike, _atomic
from .ddl.objects import (
    _create_index,
    _create_materialized_view,
    _create_sink,
    _create_source,
    _drop_items,
)
from .ddl.replicas import _create_cluster_replica, _drop_cluster_replica
from .ddl.variables import (
    _alter_system,
    _reset_variable,
    _set_variable,
    _show_cluster_replicas,
    _show_clusters,
    _show_variable,
)
from .errors import MzError

__all__ = ["MzError", "Result", "SessionLike", "execute", "parse"]


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
