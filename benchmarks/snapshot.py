"""Freeze a benchmark situation and put it back between repetitions.

apply changes the catalog (replicas created and dropped), so each repetition of a real apply
needs the same situation again. Re-doing it with DDL would not work: a dropped replica re-created
has a new id and must hydrate again, and the clock would have to move. Instead this copies the
emulator's own base tables (schema ``mz_emulator``: clusters, replicas, incarnations, items, the
statement log, the clock...) and the controller's tables into a schema ``bench_snapshot``, through
a superuser connection to the PostgreSQL behind the emulator, and restores them in one
transaction. Every catalog view derives from those tables, so after a restore the emulator shows
exactly the snapshot's catalog, statement log, hydration and statuses, at the same emulated
instant (the clock offset is reduced by the real time that passed since the snapshot).

This touches the emulator's internals and is for benchmarks only; real Materialize has nothing
like it."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

EMULATOR_TABLES = (
    "clock",
    "counters",
    "clusters",
    "replicas",
    "incarnations",
    "items",
    "reconfigurations",
    "statement_log",
    "faults",
)
CONTROLLER_TABLES = (
    "mz_cluster_strategies",
    "mz_cluster_strategy_state",
    "mz_cluster_strategy_actions",
    "mz_cluster_strategy_leases",
)
SNAP = "bench_snapshot"


def _tables() -> list[tuple[str, str, str]]:
    """(schema, table, name in the snapshot schema)."""
    return [("mz_emulator", t, f"emu_{t}") for t in EMULATOR_TABLES] + [
        ("public", t, f"ctl_{t}") for t in CONTROLLER_TABLES
    ]


class Snapshot:
    def __init__(self, admin_conninfo: str) -> None:
        self.admin_conninfo = admin_conninfo

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_conninfo, autocommit=True)

    def take(self) -> None:
        with self._connect() as conn, conn.transaction():
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SNAP)))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SNAP)))
            for schema, table, copy in _tables():
                conn.execute(
                    sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                        sql.Identifier(SNAP, copy), sql.Identifier(schema, table)
                    )
                )
            conn.execute(
                sql.SQL("CREATE TABLE {} AS SELECT pg_catalog.now() AS taken_at").format(
                    sql.Identifier(SNAP, "taken")
                )
            )

    def restore(self) -> None:
        with self._connect() as conn:
            with conn.transaction():
                names = sql.SQL(", ").join(sql.Identifier(s, t) for s, t, _ in _tables())
                conn.execute(sql.SQL("TRUNCATE {}").format(names))
                for schema, table, copy in _tables():
                    conn.execute(
                        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                            sql.Identifier(schema, table), sql.Identifier(SNAP, copy)
                        )
                    )
                # The emulated clock stands still between repetitions.
                conn.execute(
                    sql.SQL(
                        'UPDATE mz_emulator.clock SET "offset" = "offset"'
                        " - (pg_catalog.now() - (SELECT taken_at FROM {}))"
                    ).format(sql.Identifier(SNAP, "taken"))
                )
            # Fresh statistics, so PostgreSQL plans the catalog views the same way every time.
            for schema, table, _ in _tables():
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))

    def emulated_now(self) -> Any:
        with self._connect() as conn:
            row = conn.execute("SELECT mz_emulator.now()").fetchone()
            return row[0] if row else None
