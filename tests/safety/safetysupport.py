"""Shared pieces of the safety suite: the figures it reports, a connection that "dies" after a
number of statements (a killed worker), and ground truth read from the emulator: the
controller's replica DDL parsed out of the statement log, user activity, hydration.

Everything here reads the emulator's own records, never the controller's view of itself."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.reasons import REASON_CODES
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, Database


class Figures(Counter[str]):
    """What the suite did, printed in pytest's terminal summary: the totals first, then one
    line each for the step kinds taken, the invariants checked and the rails (reason and
    finding codes of the plans) fired, so a rail the model never reaches shows as 0."""

    ORDER = (
        "seed",
        "scenarios",
        "steps",
        "cycles",
        "invariant_checks",
        "faults_injected",
        "kills",
        "inputs_tried",
    )
    GROUPS = ("step", "invariant", "rail")

    def line(self) -> str:
        parts = [f"{k.replace('_', ' ')}: {self[k]}" for k in self.ORDER]
        parts += [
            f"{k}: {v}"
            for k, v in sorted(self.items())
            if k not in self.ORDER and k.split(":", 1)[0] not in self.GROUPS
        ]
        return ", ".join(parts)

    def lines(self) -> list[str]:
        out = [self.line()]
        for group in self.GROUPS:
            seen = {k.split(":", 1)[1]: v for k, v in self.items() if k.startswith(group + ":")}
            if group == "rail" and seen:
                # Every reason code, fired or not: a rail the model never reaches shows as 0.
                seen = {code: seen.get(code, 0) for code in REASON_CODES} | seen
            items = sorted(seen.items())
            if items:
                out.append(f"{group}s: " + ", ".join(f"{k} {v}" for k, v in items))
        return out


FIGURES = Figures()


class Killed(BaseException):
    """The worker process died (SIGKILL): nothing in the controller may catch it, hence a
    BaseException like KeyboardInterrupt, not an Exception."""


class KillableDatabase(Database):
    """A controller connection whose process is killed before its ``kill_at``-th statement:
    the statement is never sent and the socket is closed, as when the OS kills a worker."""

    kill_at: int | None = None

    def _run(self, sql: str, params: Any, **bounds: Any) -> Any:
        if self.kill_at is not None and self.statements >= self.kill_at:
            self.kill_at = None
            self.close()
            FIGURES["kills"] += 1
            raise Killed(f"killed before statement {self.statements + 1}: {sql[:60]}")
        return super()._run(sql, params, **bounds)


# Ground truth -------------------------------------------------------------------------------


class Observer:
    """Two long-lived connections that read ground truth: one as a user (catalog, hydration,
    the controller's tables) and one as the emulator's admin (its statement log, faults).
    Opening a connection per read would dominate the run time."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.conn = emu.connect(application_name="safety-observer")
        self.admin_conn = emu.backend.connect_admin()
        self.admin_conn.autocommit = True

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            cur = self.conn.execute(query, params)
        except psycopg.OperationalError:
            # The emulator restarted (a fault test did it): reads are safe to repeat.
            self.conn.close()
            self.conn = self.emu.connect(application_name="safety-observer")
            cur = self.conn.execute(query, params)
        return cur.fetchall() if cur.description else []

    def admin(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = self.admin_conn.execute(query, params)
        return cur.fetchall() if cur.description else []

    def close(self) -> None:
        self.conn.close()
        self.admin_conn.close()


_IDENT = r'"((?:[^"]|"")*)"'
_LIT = r"'((?:[^']|'')*)'"
_CREATE = re.compile(
    rf"^\s*CREATE\s+CLUSTER\s+REPLICA\s+{_IDENT}\.{_IDENT}\s*\(SIZE\s*=\s*{_LIT}\)\s*$",
    re.S,
)
_DROP = re.compile(rf"^\s*DROP\s+CLUSTER\s+REPLICA\s+{_IDENT}\.{_IDENT}\s*$", re.S)
# A managed cluster's reconfiguration: SET (SIZE = ..., REPLICATION FACTOR = ...), optionally
# graceful (WITH (WAIT UNTIL READY (...))). A user's RENAME does not match and is skipped.
_ALTER = re.compile(
    rf"^\s*ALTER\s+CLUSTER\s+{_IDENT}\s+SET\s+\(((?:[^()']|{_LIT})*)\)"
    r"(\s+WITH\s+\(WAIT\s+UNTIL\s+READY\s*\((?:[^()']|'(?:[^']|'')*')*\)\s*\))?\s*$",
    re.S | re.I,
)
_OPT_SIZE = re.compile(rf"\bSIZE\s*=\s*{_LIT}", re.I)
_OPT_FACTOR = re.compile(r"\bREPLICATION\s+FACTOR\s*=\s*'?(\d+)'?", re.I)
_ANY_REPLICA_DDL = re.compile(r"^\s*((CREATE|DROP)\s+CLUSTER\s+REPLICA|ALTER\s+CLUSTER\s)", re.I)


@dataclass(frozen=True)
class Ddl:
    """One controller-shaped statement from the statement log: a replica CREATE/DROP or a
    managed cluster's ALTER CLUSTER ... SET (SIZE / REPLICATION FACTOR)."""

    kind: str  # "create" | "drop" | "alter"
    cluster: str
    replica: str  # "" for an alter
    size: str | None
    status: str | None  # finished_status: success, error, or None (never finished)
    at: datetime
    sql: str
    application: str | None
    factor: int | None = None  # an alter's REPLICATION FACTOR
    wait: bool = False  # an alter WITH (WAIT UNTIL READY ...): graceful

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def controller(self) -> bool:
        return self.application == APPLICATION_NAME

    @property
    def suspends(self) -> bool:
        return self.kind == "alter" and self.factor == 0


@dataclass(frozen=True)
class Parsed:
    kind: str
    cluster: str
    replica: str
    size: str | None
    factor: int | None = None
    wait: bool = False


def parse(sql: str) -> Parsed | None:
    m = _CREATE.match(sql)
    if m:
        return Parsed("create", _unq(m[1]), _unq(m[2]), m[3].replace("''", "'"))
    m = _DROP.match(sql)
    if m:
        return Parsed("drop", _unq(m[1]), _unq(m[2]), None)
    m = _ALTER.match(sql)
    if m:
        size = _OPT_SIZE.search(m[2])
        factor = _OPT_FACTOR.search(m[2])
        if size is None and factor is None:
            return None
        return Parsed(
            "alter",
            _unq(m[1]),
            "",
            size[1].replace("''", "'") if size else None,
            int(factor[1]) if factor else None,
            bool(m[4]),
        )
    return None


def parse_ddl(sql: str) -> tuple[str, str, str, str | None] | None:
    p = parse(sql)
    return None if p is None else (p.kind, p.cluster, p.replica, p.size)


def _unq(text: str) -> str:
    return text.replace('""', '"')


def replica_ddl(obs: Observer, *, since: datetime) -> list[Ddl]:
    """Every replica CREATE/DROP and cluster ALTER ... SET that reached the emulator since
    ``since`` (anyone's), oldest first. A controller statement that does not parse is itself
    a finding."""
    rows = obs.admin(
        "SELECT sql, finished_status, began_at, application_name"
        " FROM mz_emulator.statement_log WHERE began_at >= %s"
        " AND sql ~* '^\\s*((CREATE|DROP)\\s+CLUSTER\\s+REPLICA|ALTER\\s+CLUSTER\\s)'"
        " ORDER BY began_at, id",
        (since,),
    )
    out = []
    for sql_text, status, at, app in rows:
        p = parse(sql_text)
        if p is None:
            assert app != APPLICATION_NAME, f"controller DDL in an unexpected form: {sql_text!r}"
            continue
        out.append(
            Ddl(p.kind, p.cluster, p.replica, p.size, status, at, sql_text, app, p.factor, p.wait)
        )
    return out


def last_user_activity(obs: Observer, cluster_id: str) -> datetime | None:
    """Newest statement on the cluster not sent by the controller, whatever its status."""
    rows = obs.admin(
        "SELECT max(began_at) FROM mz_emulator.statement_log"
        " WHERE cluster_id = %s AND application_name IS DISTINCT FROM %s",
        (cluster_id, APPLICATION_NAME),
    )
    return rows[0][0] if rows else None


@dataclass(frozen=True)
class ClusterTruth:
    """One cluster as the catalog shows it at one moment."""

    id: str
    name: str
    replicas: dict[str, str]  # name -> size
    created: dict[str, datetime]  # name -> created_at
    hydrated: frozenset[str]


_TRUTH = """
WITH objs AS (
  SELECT cluster_id, id FROM mz_catalog.mz_indexes WHERE id LIKE 'u%%'
  UNION ALL SELECT cluster_id, id FROM mz_catalog.mz_materialized_views
  UNION ALL SELECT cluster_id, id FROM mz_catalog.mz_sources
      WHERE id LIKE 'u%%' AND type NOT IN ('subsource', 'progress')
  UNION ALL SELECT cluster_id, id FROM mz_catalog.mz_sinks WHERE id LIKE 'u%%')
SELECT c.id, c.name, r.name, r.size,
  (SELECT min(h.occurred_at) FROM mz_internal.mz_cluster_replica_status_history h
   WHERE h.replica_id = r.id),
  CASE WHEN EXISTS (SELECT 1 FROM objs o WHERE o.cluster_id = c.id)
       THEN NOT EXISTS (SELECT 1 FROM objs o WHERE o.cluster_id = c.id AND NOT EXISTS (
            SELECT 1 FROM mz_internal.mz_hydration_statuses h
            WHERE h.object_id = o.id AND h.replica_id = r.id AND h.hydrated))
       ELSE EXISTS (SELECT 1 FROM mz_internal.mz_cluster_replica_statuses s
                    WHERE s.replica_id = r.id AND s.status = 'online') END
FROM mz_catalog.mz_clusters c LEFT JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id
WHERE c.id = ANY(%s)
"""


def truth(obs: Observer, cluster_ids: list[str]) -> dict[str, ClusterTruth]:
    """Replicas, sizes, creation times and hydration (contract's definition) per cluster, in
    one query: a replica is hydrated when every user object of its cluster is hydrated on it;
    without user objects, when it is online."""
    rows = obs.execute(_TRUTH, (cluster_ids,))
    acc: dict[str, tuple[str, dict[str, str], dict[str, datetime], set[str]]] = {}
    for cid, cname, rname, size, created, hydrated in rows:
        entry = acc.setdefault(cid, (cname, {}, {}, set()))
        if rname is None:
            continue
        entry[1][rname] = size
        entry[2][rname] = created
        if hydrated:
            entry[3].add(rname)
    return {
        cid: ClusterTruth(cid, name, reps, created, frozenset(hyd))
        for cid, (name, reps, created, hyd) in acc.items()
    }


def system_replicas(obs: Observer) -> list[tuple[Any, ...]]:
    return sorted(
        obs.execute(
            "SELECT r.id, r.cluster_id, r.name, r.size FROM mz_catalog.mz_cluster_replicas r"
            " WHERE r.cluster_id LIKE 's%'"
        )
    )


def is_replica_ddl(sql_text: str) -> bool:
    return bool(_ANY_REPLICA_DDL.match(sql_text))


Blind = list[tuple[datetime, datetime | None]]


def in_blind(at: datetime, blind: Blind | None) -> bool:
    return any(a <= at and (b is None or at <= b) for a, b in blind or ())


def audit_gaps(
    obs: Observer, *, since: datetime, cluster_ids: list[str], blind: Blind | None = None
) -> list[str]:
    """What the audit misses or invents since ``since`` on these clusters: a controller DDL in
    the statement log without an intent row before it or without an outcome row of the same
    action id; an outcome saying a DDL ran that the log never saw succeed. While statement
    logging was off (``blind``: sample rate 0) the log sees nothing: an executed replica
    outcome then needs the catalog's replica history to show that create or drop."""
    ddl = [d for d in replica_ddl(obs, since=since) if d.controller]
    rows = obs.execute(
        "SELECT action_id, action_sql, decision_ctx ->> 'phase', executed, created_at,"
        " cluster_id FROM mz_cluster_strategy_actions"
        " WHERE cluster_id = ANY(%s) AND created_at >= %s",
        (cluster_ids, since),
    )
    gaps = []
    for d in ddl:
        intents = {r[0] for r in rows if r[1] == d.sql and r[2] == "intent" and r[4] <= d.at}
        if not intents:
            gaps.append(f"no audit intent before {d.sql}")
        elif not any(r[0] in intents and r[2] == "outcome" for r in rows):
            gaps.append(f"no audit outcome for {d.sql}")
    sent_ok = {d.sql for d in ddl if d.ok}
    for aid, sql_text, phase, executed, at, cid in rows:
        if phase != "outcome" or not executed or sql_text in sent_ok:
            continue
        if in_blind(at, blind) and _in_replica_history(obs, cid, sql_text or "", at):
            continue
        gaps.append(f"audit says {aid} ran, the log never saw it: {sql_text}")
    return gaps


def _in_replica_history(obs: Observer, cid: str, sql_text: str, at: datetime) -> bool:
    p = parse(sql_text)
    if p is None:
        return False
    if p.kind == "alter":
        rows = obs.execute("SELECT 1 FROM mz_catalog.mz_clusters WHERE id = %s", (cid,))
        return bool(rows)  # a managed cluster's ALTER leaves no replica history row to match
    column = "created_at" if p.kind == "create" else "dropped_at"
    rows = obs.execute(
        f"SELECT 1 FROM mz_internal.mz_cluster_replica_history WHERE cluster_id = %s"
        f" AND replica_name = %s AND {column} BETWEEN %s - interval '5 minutes' AND %s",
        (cid, p.replica, at, at),
    )
    return bool(rows)
