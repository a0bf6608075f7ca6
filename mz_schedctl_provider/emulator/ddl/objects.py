"""Objects on clusters: CREATE INDEX / MATERIALIZED VIEW / SOURCE / SINK and their DROP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from .. import catalog, hydration
from .. import mzsql as m
from ..errors import MzError
from ..mzsql import quote_ident
from .common import (
    DEFAULT_CLUSTER,
    Result,
    Row,
    SessionLike,
    _all,
    _live_replicas,
    _one,
    _require_cluster,
    _scalar,
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
