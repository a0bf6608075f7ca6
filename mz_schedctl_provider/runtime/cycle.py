"""The four stages of a cycle as functions of JSON documents: what the Airflow operators and the
CLI both call. signals -> decide -> apply -> persist; each returns one versioned document.

Only :func:`decide` is pure. The lease is claimed by :func:`claim_lease` before
:func:`collect` (unless dry run or paused), checked by :func:`apply` and released by
:func:`persist`, so one claim covers the whole cycle."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from mz_schedctl_provider.engine import alerts
from mz_schedctl_provider.engine.approval import ApprovalRule
from mz_schedctl_provider.engine.codec import Codec, Rules
from mz_schedctl_provider.engine.contract import (
    apply_result_from_json,
    apply_result_to_json,
    plan_from_json,
    plan_to_json,
    signals_from_json,
    signals_to_json,
)

# JsonValue: the codec resolves PersistOutcome's hints (list[JsonObject]) in this module.
from mz_schedctl_provider.engine.models import JsonObject, JsonValue  # noqa: F401
from mz_schedctl_provider.engine.planner import decide as engine_decide
from mz_schedctl_provider.engine.planner import next_states
from mz_schedctl_provider.engine.state import STATE_VERSION, state_to_payload
from mz_schedctl_provider.runtime import approvals, ddl
from mz_schedctl_provider.runtime.catalog_reads import cluster_names
from mz_schedctl_provider.runtime.db import Database, DatabaseError, is_missing_table
from mz_schedctl_provider.runtime.executor import Executor
from mz_schedctl_provider.runtime.signals import LOG_FLUSH_LAG_S, read_signals
from mz_schedctl_provider.runtime.store import LeaseClaim, Store

PERSIST_SCHEMA_VERSION = 1
# Why apply executed nothing (run_summary.py tells the run's kind from these).
DRY_RUN_REASON = "dry run"
HELD_BACK_REASON = "paused by the kill switch"
LEASE_HELD_PREFIX = "another cycle holds the lease"
T = TypeVar("T")


@dataclass(frozen=True)
class CycleSettings:
    """Knobs shared by every stage.

    :param schema: database schema of the controller's tables.
    :param lease_ttl_s: a claim expires after this long (longer than any cycle).
    :param audit_retention_days: audit rows older than this are pruned by persist.
    :param experimental: allow experimental strategies (shrink_to_fit).
    :param holder: who claims the lease (host and process by default).
    :param log_flush_lag_s: how late the statement log may be (Materialize writes it every 5 s):
        the idle clock stops that far before now, and a late row of a query just before a
        suspend still resumes the cluster.
    :param realert_interval_s: a persisting problem fails a run again only this long after its
        last alert (server clock); a failed action fails every run it happens in.
    """

    schema: str = "public"
    lease_ttl_s: int = 900
    audit_retention_days: int = 7
    experimental: bool = False
    holder: str = f"{socket.gethostname()}:{os.getpid()}"
    log_flush_lag_s: float = LOG_FLUSH_LAG_S
    realert_interval_s: float = alerts.REALERT_INTERVAL_S


def new_cycle_id(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def claim_lease(db: Database, settings: CycleSettings, *, cycle_id: str) -> LeaseClaim:
    """Claim the single-writer lease, creating the tables on first use."""
    store = Store(db, schema=settings.schema)
    return _creating_tables(
        store,
        lambda: store.claim_lease(
            holder=settings.holder, cycle_id=cycle_id, ttl_s=settings.lease_ttl_s
        ),
    )


def collect(
    db: Database,
    settings: CycleSettings,
    *,
    filter_clusters: str | None = None,
) -> JsonObject:
    """signals: everything decide needs, as the signals document."""
    store = Store(db, schema=settings.schema)
    return signals_to_json(
        read_signals(
            db, store, filter_clusters=filter_clusters, log_flush_lag_s=settings.log_flush_lag_s
        )
    )


def decide(
    signals_doc: JsonObject,
    *,
    cycle_id: str,
    dry_run: bool,
    filter_clusters: str | None = None,
    experimental: bool = False,
    approval: ApprovalRule | None = None,
) -> JsonObject:
    """decide: pure; the plan document with every action's SQL rendered (with an approval
    rule, what it matches waits for a person unless approved)."""
    plan = engine_decide(
        signals_from_json(signals_doc),
        cycle_id=cycle_id,
        dry_run=dry_run,
        filter_clusters=filter_clusters or None,
        render=ddl.render,
        experimental=experimental,
        approval=approval,
    )
    return plan_to_json(plan)


def apply(
    plan_doc: JsonObject,
    db: Database,
    settings: CycleSettings,
    *,
    paused: bool = False,
    reconnect: Callable[[], Database] | None = None,
) -> JsonObject:
    """apply: execute the plan unless dry run, kill switch or another cycle's lease forbid it."""
    plan = plan_from_json(plan_doc)
    store = Store(db, schema=settings.schema)
    executor = Executor(db=db, store=store, reconnect=reconnect)
    if plan.dry_run:
        result = executor.apply(plan, execute=False, reason=DRY_RUN_REASON)
    elif paused:
        # Paused runs claim no lease, so on a first run nothing created the tables yet; the
        # held-back actions must still be audited.
        result = _creating_tables(
            store, lambda: executor.apply(plan, execute=False, reason=HELD_BACK_REASON)
        )
    else:
        holder = lease_holder(store, cycle_id=plan.cycle_id)
        if holder is not None:
            result = executor.apply(plan, execute=False, reason=f"{LEASE_HELD_PREFIX}: {holder}")
        else:
            result = executor.apply(plan, execute=True)
    return apply_result_to_json(result)


def _creating_tables(store: Store, run: Callable[[], T]) -> T:
    """Run, and once more after creating the tables if one was missing. Only for a statement
    that wrote nothing when it failed: the lease claim's INSERT, the held-back audit's single
    INSERT."""
    try:
        return run()
    except DatabaseError as exc:
        if not is_missing_table(exc):
            raise
    store.bootstrap()
    return run()


def lease_holder(store: Store, *, cycle_id: str) -> str | None:
    """None when our cycle holds the lease; else who does (or why we do not)."""
    winner = store.lease_winner()
    if winner is None:
        return "nobody (our claim expired or was never made)"
    holder, held_by, _expires = winner
    return None if held_by == cycle_id else f"{holder} (cycle {held_by})"


@dataclass(frozen=True)
class PersistOutcome:
    """What persist wrote, every problem of the cycle, and which of them fail the run.

    ``problems`` lists every problem (the CLI exits non-zero while there is any);
    ``alerting`` those that fail the Airflow run: a failed action always, a persisting
    condition once per re-alert interval (engine/alerts.py); ``alerts`` says why for each.
    """

    states_written: int
    problems: list[str]
    alerting: list[str] = field(default_factory=list)
    alerts: list[JsonObject] = field(default_factory=list)
    # The approval gate: requests this persist wrote (the approval DAG asks for them).
    approval_requests: list[str] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        # Written by the contract's codec from the fields, like the other stages' documents.
        return {"schema_version": PERSIST_SCHEMA_VERSION, **_OUTCOME_CODEC.encode(self)}


# approval_requests: only with the approval gate on and something asked.
_OUTCOME_CODEC = Codec({PersistOutcome: Rules(omit_default=frozenset({"approval_requests"}))})


def persist(
    plan_doc: JsonObject,
    apply_doc: JsonObject,
    db: Database,
    settings: CycleSettings,
    *,
    approval: ApprovalRule | None = None,
    remember_alerts: bool = True,
    filter_clusters: str | None = None,
) -> PersistOutcome:
    """persist: new state for clusters whose actions all succeeded, retention, lease release;
    then which problems alert. With an approval rule, before the release: the approval
    requests of waiting actions, the approvals used, the expired (runtime/approvals.py).
    ``remember_alerts`` False (the CLI, which alerts nobody) reads what was alerted but
    records nothing; a dry run never records. ``filter_clusters``: the cycle's filter, so a
    remembered problem counts as gone only on a cluster it looked at."""
    plan = plan_from_json(plan_doc)
    result = apply_result_from_json(apply_doc)
    written = 0
    requested: list[str] = []
    store = Store(db, schema=settings.schema)
    if not plan.dry_run:
        if result.executed:
            states = next_states(plan, result)
            written = store.write_states(
                {cid: state_to_payload(s) for cid, s in states.items()}, version=STATE_VERSION
            )
            store.prune(audit_days=settings.audit_retention_days)
            if approval is not None:
                # Only while this cycle holds the lease (executed): one writer of requests.
                requested = approvals.settle(
                    store, plan_doc, result, timeout_s=approval.timeout_s
                ).requested
                approvals.prune(store, days=settings.audit_retention_days)
        store.release_lease(cycle_id=plan.cycle_id)
    found = alerts.problems(plan, result)
    decisions, rows = alerts.decide_alerts(
        found,
        store.read_alerts(),
        now=plan.now,
        in_scope=_scope(db, filter_clusters),
        interval_s=settings.realert_interval_s,
    )
    if remember_alerts and not plan.dry_run:
        store.write_alerts(rows, now=plan.now)
    return PersistOutcome(
        states_written=written,
        problems=[p.message for p in found],
        alerting=[d.problem.message for d in decisions if d.alert],
        alerts=[_alert_json(d) for d in decisions],
        approval_requests=requested,
    )


def _scope(db: Database, filter_clusters: str | None) -> list[str] | None:
    """The ids of the clusters a filtered cycle looked at (None: every cluster)."""
    if not filter_clusters:
        return None
    pattern = re.compile(filter_clusters)
    return [i for i, n in cluster_names(db) if pattern.fullmatch(n)]


def _alert_json(d: alerts.AlertDecision) -> JsonObject:
    return {
        "message": d.problem.message,
        "key": d.problem.key,
        "alert": d.alert,
        "code": d.code,
        "why": d.why,
        "first_seen": d.first_seen.isoformat(),
        "next_alert_at": None if d.next_alert_at is None else d.next_alert_at.isoformat(),
    }


# ---- the concerns around the four stages, shared by the CLI and the Airflow tasks --------------


@dataclass(frozen=True)
class WipeResult:
    """What wipe-state deleted: the state rows, and which clusters matched a filter."""

    deleted_state_rows: int
    filter_clusters: str | None
    clusters: list[str] | None  # None: every cluster

    def to_json(self) -> JsonObject:
        return {
            "deleted_state_rows": self.deleted_state_rows,
            "filter_clusters": self.filter_clusters or "",
            "clusters": None if self.clusters is None else list(self.clusters),
        }


def wipe_state(
    db: Database, settings: CycleSettings, *, filter_clusters: str | None = None
) -> WipeResult:
    """Delete stored state (all clusters, or those whose whole name matches the regex) so the
    next cycle decides from what it observes; strategies and the audit trail are kept. Before
    the tables exist there is nothing to delete."""
    store = Store(db, schema=settings.schema)
    ids: list[str] | None = None
    names: list[str] | None = None
    if filter_clusters:
        pattern = re.compile(filter_clusters)
        matched = [(i, n) for i, n in cluster_names(db) if pattern.fullmatch(n)]
        ids = [i for i, _ in matched]
        names = sorted(n for _, n in matched)
    try:
        deleted = store.wipe_state(ids)
    except DatabaseError as exc:
        if not is_missing_table(exc):
            raise
        deleted = 0
    return WipeResult(deleted, filter_clusters or None, names)


def release_after_failure(
    connects: Iterable[Callable[[], Database]], settings: CycleSettings, *, cycle_id: str
) -> bool:
    """Release this cycle's lease claim after a failed run, on a fresh connection (ours may be
    the one that broke), trying each way of connecting in turn; True once released. A claim
    left behind would hold every other cycle back for the whole lease TTL; at worst it
    expires on its own."""
    for connect in connects:
        with contextlib.suppress(DatabaseError):
            db = connect()
            try:
                Store(db, schema=settings.schema).release_lease(cycle_id=cycle_id)
                return True
            finally:
                db.close()
    return False


def reconnector(
    connect: Callable[[], Database],
    *,
    opened: list[Database],
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
) -> Callable[[], Database]:
    """What apply calls after a connection was lost mid-statement: a fresh connection, tried a
    few times with backoff (1, 2, 4... at most 10 s apart). Every connection opened is added to
    ``opened`` (the caller closes them; persist uses the last). If Materialize stays
    unreachable the last error is raised."""

    def reconnect() -> Database:
        last: Exception | None = None
        for attempt in range(max(1, attempts)):
            if attempt:
                sleep(min(2**attempt, 10))
            try:
                db = connect()
            except DatabaseError as exc:
                last = exc
                if log is not None:
                    log.warning("Reconnect attempt %d failed: %s", attempt + 1, exc)
                continue
            opened.append(db)
            return db
        assert last is not None
        raise last

    return reconnect
