"""The controller's tables in Materialize: strategies (user-authored), state, the audit trail,
the lease and the alerts remembered (one alert per problem). The first three keep
mz-clusterctl's schemas, so existing installs just work.

Materialize has no keys, sequences, upserts or mixed transactions: every write is a plain
INSERT ... VALUES or a single-statement DELETE, and "the current row" is the newest one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mz_schedctl_provider.engine.alerts import AlertMemory, newest_memories
from mz_schedctl_provider.engine.models import JsonValue, StateRow, StrategyRow
from mz_schedctl_provider.runtime.db import Database, DatabaseError, is_missing_table
from mz_schedctl_provider.runtime.ddl import ident

STRATEGIES = "mz_cluster_strategies"
STATE = "mz_cluster_strategy_state"
ACTIONS = "mz_cluster_strategy_actions"
LEASES = "mz_cluster_strategy_leases"
ALERTS = "mz_cluster_strategy_alerts"
# The approval gate's requests and answers (runtime/approvals.py).
APPROVALS = "mz_cluster_strategy_approvals"

_TABLES = {
    STRATEGIES: "cluster_id TEXT NOT NULL, strategy_type TEXT NOT NULL, config JSONB NOT NULL,"
    " updated_at TIMESTAMPTZ DEFAULT now()",
    STATE: "cluster_id TEXT NOT NULL, state_version INT NOT NULL, payload JSONB NOT NULL,"
    " updated_at TIMESTAMPTZ DEFAULT now()",
    ACTIONS: "action_id TEXT NOT NULL, cluster_id TEXT, action_sql TEXT, decision_ctx JSONB,"
    " executed BOOL, error_message TEXT, created_at TIMESTAMPTZ DEFAULT now()",
    LEASES: "holder TEXT, cycle_id TEXT, claimed_at TIMESTAMPTZ, expires_at TIMESTAMPTZ",
    # What was alerted (engine/alerts.py): appended, the newest row per alert_key wins.
    ALERTS: "alert_key TEXT NOT NULL, cluster_id TEXT, message TEXT, first_seen TIMESTAMPTZ,"
    " last_alerted TIMESTAMPTZ, is_open BOOL, recorded_at TIMESTAMPTZ",
    APPROVALS: "request_id TEXT NOT NULL, cycle_id TEXT, cluster_id TEXT NOT NULL,"
    " cluster_name TEXT, fingerprint TEXT NOT NULL, action_text TEXT, action_sql TEXT,"
    " action JSONB, plan_text TEXT, requested_at TIMESTAMPTZ, expires_at TIMESTAMPTZ,"
    " status TEXT NOT NULL, decided_by TEXT, decided_at TIMESTAMPTZ,"
    " updated_at TIMESTAMPTZ DEFAULT now()",
}
# Six parameters per audit row; the wire protocol counts a statement's parameters in 16 bits.
_AUDIT_ROWS_PER_INSERT = 10_000
# Undefined table: Materialize's "unknown catalog item" and PostgreSQL's share this code.


@dataclass(frozen=True)
class AuditRecord:
    """One row of the audit trail: the intent before a DDL or the outcome after it."""

    action_id: str
    cluster_id: str
    action_sql: str | None
    context: dict[str, JsonValue]
    executed: bool | None
    error_message: str | None = None


@dataclass(frozen=True)
class LeaseClaim:
    """Who holds the lease after our claim: us, or another cycle."""

    acquired: bool
    holder: str
    cycle_id: str
    expires_at: datetime | None


class Store:
    """Reads and writes the controller's tables in one schema.

    :param db: the connection.
    :param schema: database schema holding the tables (default ``public``).
    """

    def __init__(self, db: Database, *, schema: str = "public") -> None:
        self.db = db
        self.schema = schema

    def table(self, name: str) -> str:
        return _qualified(self.schema, name)

    # Bootstrap -------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        for statement in create_sql(self.schema):
            self.db.execute(statement)

    # Reads -----------------------------------------------------------------------------------

    def read_strategies(self) -> list[StrategyRow]:
        """The newest row per (cluster, strategy type); empty when the table does not exist."""
        rows = self._read_optional(
            f"SELECT cluster_id, strategy_type, config, updated_at FROM {self.table(STRATEGIES)}"
        )
        newest: dict[tuple[str, str], StrategyRow] = {}
        for cid, kind, config, updated in rows:
            row = StrategyRow(str(cid), str(kind), config, updated)
            key = (row.cluster_id, row.strategy_type)
            if key not in newest or _newer(updated, newest[key].updated_at):
                newest[key] = row
        return sorted(newest.values(), key=lambda r: (r.cluster_id, r.strategy_type))

    def read_states(self) -> list[StateRow]:
        """The newest state row per cluster."""
        rows = self._read_optional(
            f"SELECT cluster_id, state_version, payload, updated_at FROM {self.table(STATE)}"
        )
        newest: dict[str, StateRow] = {}
        for cid, version, payload, updated in rows:
            row = StateRow(str(cid), int(version), payload, updated)
            if row.cluster_id not in newest or _newer(updated, newest[row.cluster_id].updated_at):
                newest[row.cluster_id] = row
        return list(newest.values())

    def read_actions(self, *, limit: int = 50) -> list[tuple[Any, ...]]:
        """The newest audit rows, for ``mz-schedctl status``."""
        return self._read_optional(
            f"SELECT created_at, cluster_id, decision_ctx ->> 'cluster_name',"
            f" decision_ctx ->> 'phase', executed, action_sql, error_message"
            f" FROM {self.table(ACTIONS)} ORDER BY created_at DESC LIMIT {int(limit)}"
        )

    def _read_optional(self, sql: str) -> list[tuple[Any, ...]]:
        # A dry run before `init` must plan as if the tables were empty, creating nothing.
        try:
            return self.db.query(sql)
        except DatabaseError as exc:
            if is_missing_table(exc):
                return []
            raise

    def read_alerts(self) -> dict[str, AlertMemory]:
        """What was alerted: the newest row per problem key; empty before the table exists."""
        rows = self._read_optional(
            "SELECT alert_key, cluster_id, message, first_seen, last_alerted, is_open, recorded_at"
            f" FROM {self.table(ALERTS)}"
        )
        memories = [
            AlertMemory(str(k), None if c is None else str(c), f, la, bool(o), str(m or ""))
            for k, c, m, f, la, o, _at in rows
        ]
        return newest_memories(memories, [r[6] for r in rows])

    # Writes ----------------------------------------------------------------------------------

    def write_alerts(self, rows: Sequence[AlertMemory], *, now: datetime) -> int:
        """Append alert rows (one INSERT, recorded at the server time ``now`` of the cycle),
        then drop the rows they supersede. Creates the table first where an install older than
        it lacks it (CREATE TABLE IF NOT EXISTS: the other tables are left as they are)."""
        if not rows:
            return 0
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        params: list[Any] = []
        for r in rows:
            params += [r.key, r.cluster_id, r.message, r.first_seen, r.last_alerted, r.open, now]
        insert = (
            f"INSERT INTO {self.table(ALERTS)} (alert_key, cluster_id, message, first_seen,"
            f" last_alerted, is_open, recorded_at) VALUES {values}"
        )
        try:
            self.db.execute(insert, params, purpose="remembering alerts")
        except DatabaseError as exc:
            if not is_missing_table(exc):
                raise
            self.bootstrap()
            self.db.execute(insert, params, purpose="remembering alerts")
        alerts = self.table(ALERTS)
        self.db.execute(
            f"DELETE FROM {alerts} AS a WHERE a.recorded_at <"
            f" (SELECT max(n.recorded_at) FROM {alerts} AS n WHERE n.alert_key = a.alert_key)",
            purpose="pruning superseded alert rows",
        )
        return len(rows)

    def write_states(self, payloads: dict[str, dict[str, JsonValue]], *, version: int) -> int:
        """Append one state row per cluster, all in one INSERT."""
        if not payloads:
            return 0
        values = ", ".join(["(%s, %s, %s::jsonb)"] * len(payloads))
        params: list[Any] = []
        for cid, payload in sorted(payloads.items()):
            params += [cid, version, json.dumps(payload, sort_keys=True)]
        self.db.execute(
            f"INSERT INTO {self.table(STATE)} (cluster_id, state_version, payload) VALUES {values}",
            params,
        )
        return len(payloads)

    def audit(self, records: Sequence[AuditRecord]) -> None:
        """Append audit rows: one INSERT (apply writes every intent in one, every outcome in
        another), more only past the protocol's 65,535 parameters per statement."""
        for start in range(0, len(records), _AUDIT_ROWS_PER_INSERT):
            self._audit(records[start : start + _AUDIT_ROWS_PER_INSERT])

    def _audit(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        values = ", ".join(["(%s, %s, %s, %s::jsonb, %s, %s)"] * len(records))
        params: list[Any] = []
        for r in records:
            params += [
                r.action_id,
                r.cluster_id,
                r.action_sql,
                json.dumps(r.context, sort_keys=True),
                r.executed,
                r.error_message,
            ]
        self.db.execute(
            f"INSERT INTO {self.table(ACTIONS)} (action_id, cluster_id, action_sql, decision_ctx,"
            f" executed, error_message) VALUES {values}",
            params,
        )

    def wipe_state(self, cluster_ids: Iterable[str] | None) -> int:
        """Delete state rows (all, or of these clusters): the next cycle starts fresh."""
        if cluster_ids is None:
            return self.db.execute(f"DELETE FROM {self.table(STATE)}")
        ids = sorted(set(cluster_ids))
        if not ids:
            return 0
        marks = ", ".join(["%s"] * len(ids))
        return self.db.execute(
            f"DELETE FROM {self.table(STATE)} WHERE cluster_id IN ({marks})", ids
        )

    def prune(self, *, audit_days: int = 7) -> tuple[int, int]:
        """Retention: audit rows older than ``audit_days``, state rows superseded by newer ones,
        and expired lease claims. Each is a single-statement DELETE.

        Whatever its age, the audit keeps per (cluster, replica name) the newest executed
        create or drop: the evidence of ownership (the create of a replica still running) and
        of the newest suspend (its drops), which a lost state row is rebuilt from (a cluster
        suspended for a month must still resume with its replicas)."""
        actions = self.table(ACTIONS)
        evidence = (
            "{t}.executed AND {t}.decision_ctx ->> 'phase' = 'outcome'"
            " AND {t}.decision_ctx ->> 'kind' IN ('create_replica', 'drop_replica')"
        )
        audit = self.db.execute(
            f"DELETE FROM {actions} AS a"
            f" WHERE a.created_at < now() - make_interval(days => {int(audit_days)})"
            f" AND NOT ({evidence.format(t='a')} AND a.created_at >="
            f" (SELECT max(n.created_at) FROM {actions} AS n WHERE n.cluster_id = a.cluster_id"
            " AND n.decision_ctx ->> 'replica' = a.decision_ctx ->> 'replica'"
            f" AND {evidence.format(t='n')}))"
        )
        state_table = self.table(STATE)
        state = self.db.execute(
            f"DELETE FROM {state_table} AS s WHERE s.updated_at <"
            f" (SELECT max(n.updated_at) FROM {state_table} AS n WHERE n.cluster_id = s.cluster_id)"
        )
        self.db.execute(f"DELETE FROM {self.table(LEASES)} WHERE expires_at < now()")
        return audit, state

    # Lease -----------------------------------------------------------------------------------

    def claim_lease(self, *, holder: str, cycle_id: str, ttl_s: int) -> LeaseClaim:
        """Append our claim, then read the unexpired ones back: the earliest claim wins (ties
        broken by holder), so two cycles that claim at once agree on one winner."""
        self.db.execute(
            f"INSERT INTO {self.table(LEASES)} (holder, cycle_id, claimed_at, expires_at)"
            f" VALUES (%s, %s, now(), now() + make_interval(secs => %s))",
            (holder, cycle_id, int(ttl_s)),
        )
        winner = self.lease_winner()
        if winner is None:  # our claim expired already: a TTL shorter than a round trip
            return LeaseClaim(False, holder, cycle_id, None)
        win_holder, win_cycle, expires = winner
        if win_cycle != cycle_id:
            self.release_lease(cycle_id=cycle_id)  # a lost claim must not block the next cycle
        return LeaseClaim(win_cycle == cycle_id, win_holder, win_cycle, expires)

    def lease_winner(self) -> tuple[str, str, datetime] | None:
        """(holder, cycle_id, expires_at) of the earliest unexpired claim (ties broken by
        holder): the cycle that holds the lease, as every claimant computes it."""
        rows = self.db.query(
            f"SELECT holder, cycle_id, expires_at FROM {self.table(LEASES)}"
            f" WHERE expires_at > now() ORDER BY claimed_at, holder, cycle_id LIMIT 1"
        )
        if not rows:
            return None
        holder, cycle_id, expires = rows[0]
        return str(holder), str(cycle_id), expires

    def release_lease(self, *, cycle_id: str) -> None:
        """Delete this cycle's claims. Without the lease table there is none to delete (a paused
        or first run that created no table)."""
        try:
            self.db.execute(
                f"DELETE FROM {self.table(LEASES)} WHERE cycle_id = %s",
                (cycle_id,),
                purpose="releasing the lease",
            )
        except DatabaseError as exc:
            if not is_missing_table(exc):
                raise


def _newer(a: datetime | None, b: datetime | None) -> bool:
    if b is None:
        return a is not None
    return a is not None and a > b


def create_sql(schema: str) -> list[str]:
    """The idempotent DDL, also printed by ``mz-schedctl init --print-sql`` (no connection
    needed)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {_qualified(schema, name)} ({columns})"
        for name, columns in _TABLES.items()
    ]


def _qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"
