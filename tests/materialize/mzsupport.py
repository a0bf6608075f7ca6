"""Helpers for the Materialize-layer tests: build clusters in the emulator, run cycles through
the engine API (either driver) or the CLI (a subprocess), and read the ground truth back from
the emulator's catalog, its statement log and the controller's tables.

Every check reads the truth itself: never the controller's own report alone."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import psycopg2
from psycopg import sql

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.approval import ApprovalRule
from mz_schedctl_provider.engine.contract import load_schema
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, Database
from mz_schedctl_provider.runtime.store import (
    ACTIONS,
    ALERTS,
    APPROVALS,
    LEASES,
    STATE,
    STRATEGIES,
    Store,
)

REPO = Path(__file__).resolve().parents[2]
CONTROLLER_TABLES = (STRATEGIES, STATE, ACTIONS, LEASES, ALERTS, APPROVALS)
DRIVERS = ("psycopg", "psycopg2")
HOSTILE = 'we"ird; name ü -- ☃'

# User objects of a cluster, as the contract defines them (ids "u...", real sources only).
_USER_OBJECTS = """
SELECT id FROM mz_catalog.mz_indexes WHERE cluster_id = %(c)s AND id LIKE 'u%%'
UNION ALL SELECT id FROM mz_catalog.mz_materialized_views WHERE cluster_id = %(c)s
UNION ALL SELECT id FROM mz_catalog.mz_sources
    WHERE cluster_id = %(c)s AND id LIKE 'u%%' AND type NOT IN ('subsource', 'progress')
UNION ALL SELECT id FROM mz_catalog.mz_sinks WHERE cluster_id = %(c)s AND id LIKE 'u%%'
"""


# Building the world ------------------------------------------------------------------------


def q(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def cluster_id(emu: Emulator, name: str) -> str:
    return str(emu.execute("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (name,))[0][0])


def make_cluster(
    emu: Emulator,
    name: str,
    *,
    size: str = "25cc",
    replica: str = "r1",
    objects: str | None = "mv",
    hydration: str | None = None,
) -> str:
    """An unmanaged cluster with one replica hosting a materialized view ("mv"), an index
    ("index"), a load-generator source ("source") or nothing (None); returns its id.

    ``hydration``: the cluster's data is as big as this hydration time on a 25cc replica
    (``mz_emulator.set_hydration_delay``; bigger sizes are faster by sqrt(0.25/credits)). By
    default the emulator's estimate applies: about 1 s for these tiny objects."""
    replicas = f"{q(replica)} (SIZE = {sql.Literal(size).as_string(None)})" if replica else ""
    emu.execute(f"CREATE CLUSTER {q(name)} REPLICAS ({replicas})")
    table = q(f"t_{name}")
    if objects in ("mv", "index"):
        emu.execute(f"CREATE TABLE {table} (a int)")
    if objects == "mv":
        emu.execute(
            f"CREATE MATERIALIZED VIEW {q(f'mv_{name}')} IN CLUSTER {q(name)}"
            f" AS SELECT count(*) FROM {table}"
        )
    elif objects == "index":
        emu.execute(f"CREATE INDEX {q(f'i_{name}')} IN CLUSTER {q(name)} ON {table} (a)")
    elif objects == "source":
        emu.execute(
            f"CREATE SOURCE {q(f's_{name}')} IN CLUSTER {q(name)} FROM LOAD GENERATOR COUNTER"
        )
    if hydration is not None:
        emu.execute("SELECT mz_emulator.set_hydration_delay(%s, %s::interval)", (name, hydration))
    return cluster_id(emu, name)


def init_tables(emu: Emulator) -> None:
    db = Database(emu.connect())
    try:
        Store(db).bootstrap()
    finally:
        db.close()


def add_strategy(
    emu: Emulator,
    cid: str,
    strategy: str,
    config: dict[str, Any] | str,
    *,
    raw: bool = False,
) -> None:
    """Insert a strategy row; ``raw`` stores ``config`` as given (JSON text) in the JSONB."""
    text = config if raw and isinstance(config, str) else json.dumps(config)
    emu.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, %s, %s::jsonb)",
        (cid, strategy, text),
    )


def drop_strategies(emu: Emulator) -> None:
    """Forget every strategy row so later tests' cycles do not touch earlier clusters, and
    every lease claim a failed test may have left behind."""
    for table in (STRATEGIES, LEASES):
        with contextlib.suppress(psycopg.errors.UndefinedTable):
            emu.execute(f"DELETE FROM {q(table)}")


# Driving cycles -----------------------------------------------------------------------------


def connect(emu: Emulator, driver: str) -> Database:
    """The controller's connection through either driver, tagged as the controller."""
    if driver == "psycopg":
        return Database.connect(emu.url)
    conn = psycopg2.connect(emu.url, application_name=APPLICATION_NAME)
    return Database(conn)


def validate(doc: JsonObject, kind: str) -> None:
    jsonschema.validate(doc, load_schema(kind), format_checker=jsonschema.FormatChecker())


@dataclass
class CycleRun:
    """One cycle's documents, each validated against its shipped schema."""

    signals: JsonObject
    plan: JsonObject
    result: JsonObject
    outcome: cycle.PersistOutcome
    lease: Any

    def actions(self, *, status: str | None = None) -> list[dict[str, Any]]:
        clusters: list[dict[str, Any]] = self.plan["clusters"]  # type: ignore[assignment]
        return [
            a for c in clusters for a in c["actions"] if status is None or a["status"] == status
        ]

    def cluster(self, name: str) -> dict[str, Any]:
        clusters: list[dict[str, Any]] = self.plan["clusters"]  # type: ignore[assignment]
        return next(c for c in clusters if c["cluster_name"] == name)

    def outcomes(self) -> list[str]:
        results: list[dict[str, Any]] = self.result["results"]  # type: ignore[assignment]
        return [r["outcome"] for r in results]


def run_cycle(
    db: Database,
    *,
    only: str | None = None,
    pattern: str | None = None,
    dry_run: bool = False,
    paused: bool = False,
    settings: cycle.CycleSettings | None = None,
    reconnect: Callable[[], Database] | None = None,
    approval: ApprovalRule | None = None,
) -> CycleRun:
    """signals -> decide -> apply -> persist as the CLI runs them, on the clusters named
    (with ``approval``: the approval gate's rule, at decide and persist)."""
    settings = settings or cycle.CycleSettings()
    filt = pattern if pattern is not None else (re.escape(only) if only else None)
    cycle_id = cycle.new_cycle_id("test")
    lease = None
    if not dry_run and not paused:
        lease = cycle.claim_lease(db, settings, cycle_id=cycle_id)
    signals = cycle.collect(db, settings, filter_clusters=filt)
    validate(signals, "signals")
    plan = cycle.decide(
        signals, cycle_id=cycle_id, dry_run=dry_run, filter_clusters=filt, approval=approval
    )
    validate(plan, "plan")
    # As the CLI does: after a reconnect, persist runs on the new connection.
    live = [db]

    def reopen() -> Database:
        assert reconnect is not None
        live.append(reconnect())
        return live[-1]

    try:
        result = cycle.apply(
            plan, db, settings, paused=paused, reconnect=reopen if reconnect else None
        )
        validate(result, "apply_result")
        outcome = cycle.persist(
            plan, result, live[-1], settings, approval=approval, filter_clusters=filt
        )
    finally:
        for extra in live[1:]:
            extra.close()
    return CycleRun(signals, plan, result, outcome, lease)


def cli(
    *args: str,
    url: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``mz-schedctl ARGS`` in a subprocess (the command first, then its options)."""
    argv = [sys.executable, "-m", "mz_schedctl_provider.cli", *args]
    if url is not None:
        argv += ["--database-url", url]
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MZ_SCHEDCTL_PAUSED")
    }
    full_env.update(env or {})
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO
    )


def json_docs(stdout: str) -> list[Any]:
    """Every JSON document printed (one or several, whitespace separated)."""
    decoder = json.JSONDecoder()
    docs, i = [], 0
    text = stdout.strip()
    while i < len(text):
        doc, end = decoder.raw_decode(text, i)
        docs.append(doc)
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return docs


# Ground truth -------------------------------------------------------------------------------


def replicas(emu: Emulator, name: str) -> dict[str, str]:
    """Replica name -> size, straight from mz_cluster_replicas."""
    rows = emu.execute(
        "SELECT r.name, r.size FROM mz_catalog.mz_cluster_replicas r"
        " JOIN mz_catalog.mz_clusters c ON c.id = r.cluster_id WHERE c.name = %s",
        (name,),
    )
    return {str(n): str(s) for n, s in rows}


def hydrated_replicas(emu: Emulator, name: str) -> set[str]:
    """Replicas on which every user object of the cluster is hydrated (per
    mz_hydration_statuses); without user objects, the online ones."""
    cid = cluster_id(emu, name)
    objects = {r[0] for r in emu.execute(_USER_OBJECTS, {"c": cid})}
    reps = dict(
        emu.execute(
            "SELECT id, name FROM mz_catalog.mz_cluster_replicas WHERE cluster_id = %s", (cid,)
        )
    )
    if not objects:
        online = emu.execute(
            "SELECT replica_id FROM mz_internal.mz_cluster_replica_statuses WHERE status = 'online'"
        )
        return {reps[r[0]] for r in online if r[0] in reps}
    hydrated: dict[str, set[str]] = {}
    for oid, rid in emu.execute(
        "SELECT object_id, replica_id FROM mz_internal.mz_hydration_statuses WHERE hydrated"
    ):
        if oid in objects and rid in reps:
            hydrated.setdefault(rid, set()).add(oid)
    return {reps[rid] for rid, done in hydrated.items() if done >= objects}


def state_payload(emu: Emulator, cid: str) -> dict[str, Any] | None:
    """The newest state row's payload (what the next cycle decides from)."""
    rows = emu.execute(
        "SELECT state_version, payload FROM mz_cluster_strategy_state WHERE cluster_id = %s"
        " ORDER BY updated_at DESC LIMIT 1",
        (cid,),
    )
    if not rows:
        return None
    assert rows[0][0] == 2
    payload = rows[0][1]
    return payload if isinstance(payload, dict) else json.loads(payload)


def state_rows(emu: Emulator, cid: str) -> int:
    return int(
        emu.execute("SELECT count(*) FROM mz_cluster_strategy_state WHERE cluster_id = %s", (cid,))[
            0
        ][0]
    )


@dataclass(frozen=True)
class AuditRow:
    action_id: str
    sql: str | None
    ctx: dict[str, Any]
    executed: bool | None
    error: str | None

    @property
    def phase(self) -> str:
        return str(self.ctx["phase"])


def audit(emu: Emulator, cid: str) -> list[AuditRow]:
    rows = emu.execute(
        "SELECT action_id, action_sql, decision_ctx, executed, error_message"
        " FROM mz_cluster_strategy_actions WHERE cluster_id = %s ORDER BY created_at",
        (cid,),
    )
    return [
        AuditRow(str(a), s, c if isinstance(c, dict) else json.loads(c), e, err)
        for a, s, c, e, err in rows
    ]


def statement_log(
    emu: Emulator, *, application: str | None = APPLICATION_NAME
) -> list[tuple[Any, ...]]:
    """(sql, finished_status, began_at) of every logged statement, oldest first: the
    emulator's own record of what reached it."""
    with emu.backend.connect_admin() as conn:
        rows = conn.execute(
            "SELECT sql, finished_status, began_at, application_name FROM mz_emulator.statement_log"
            " ORDER BY began_at, id"
        ).fetchall()
    return [r[:3] for r in rows if application is None or r[3] == application]


def ddl_sent(emu: Emulator, *, since: Any = None) -> list[str]:
    """Replica DDL that reached the emulator (whatever its outcome)."""
    return [
        s
        for s, _status, at in statement_log(emu, application=None)
        if re.match(r"\s*(CREATE|DROP)\s+CLUSTER\s+REPLICA", s or "", re.I)
        and (since is None or at >= since)
    ]


def server_now(emu: Emulator) -> Any:
    return emu.execute("SELECT now()")[0][0]


def table_rows(emu: Emulator, table: str) -> list[tuple[Any, ...]] | None:
    """Rows of a controller table, or None when it does not exist."""
    try:
        return emu.execute(f"SELECT * FROM {q(table)}")
    except psycopg.errors.UndefinedTable:
        return None


def snapshot(emu: Emulator) -> dict[str, Any]:
    """Everything a cycle could change: clusters, replicas and every controller table."""
    snap: dict[str, Any] = {
        "clusters": sorted(emu.execute("SELECT id, name, managed FROM mz_catalog.mz_clusters")),
        "replicas": sorted(
            emu.execute("SELECT id, cluster_id, name, size FROM mz_catalog.mz_cluster_replicas")
        ),
    }
    for table in CONTROLLER_TABLES:
        rows = table_rows(emu, table)
        snap[table] = None if rows is None else sorted(json.dumps(r, default=str) for r in rows)
        snap[f"{table}#count"] = None if rows is None else len(rows)
    return snap


def names_of(rows: Iterable[AuditRow]) -> list[str]:
    return [r.ctx.get("replica", "") for r in rows]
