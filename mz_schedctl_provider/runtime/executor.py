"""Carry out a plan: re-check the live catalog before each DDL, audit intent and outcome, and
stop a cluster's remaining actions after its first failure while other clusters go on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mz_schedctl_provider.engine.models import (
    Action,
    ActionResult,
    ApplyResult,
    ClusterPlan,
    JsonValue,
    Outcome,
    Plan,
)
from mz_schedctl_provider.runtime.catalog_reads import (
    REPLICA_HYDRATION_BY_ID,
    replica_hydration,
)
from mz_schedctl_provider.runtime.db import (
    CLIENT_TIMEOUT_GRACE_S,
    ConnectionLost,
    Database,
    DatabaseError,
)
from mz_schedctl_provider.runtime.ddl import render
from mz_schedctl_provider.runtime.store import ACTIONS, AuditRecord, Store

# The cluster by id (its current name: it may have been renamed since the plan) and the replica
# of that name on it, if any.
_LIVE_REPLICA = (
    "SELECT c.name, r.id, r.size FROM mz_catalog.mz_clusters c"
    " LEFT JOIN mz_catalog.mz_cluster_replicas r ON r.cluster_id = c.id AND r.name = %s"
    " WHERE c.id = %s"
)

_LIVE_CLUSTER = (
    "SELECT managed, size, replication_factor, name FROM mz_catalog.mz_clusters WHERE id = %s"
)
# Graceful reconfigurations running in the background (v26.35+; older releases lack it).
_RECONFIGURING = (
    "SELECT target ->> 'size', target ->> 'replication_factor'"
    " FROM mz_internal.mz_cluster_reconfigurations"
    " WHERE cluster_id = %s AND status = 'in-progress'"
)


@dataclass(frozen=True)
class Check:
    """What the live catalog says about an action just before it would run."""

    proceed: bool
    outcome: Outcome | None = None
    reason: str = ""
    # The cluster's name now, which every statement is rendered with (not the plan's copy).
    cluster_name: str | None = None


class Executor:
    """Runs the actions of a plan against Materialize.

    :param db: the connection (autocommit).
    :param store: the controller's tables, for the audit rows.
    :param reconnect: opens a fresh connection after one was lost mid-statement, so the truth
        can be read back and the outcome audited; None to give up at once.
    """

    def __init__(
        self, *, db: Database, store: Store, reconnect: Callable[[], Database] | None = None
    ) -> None:
        self.db = db
        self.store = store
        self._reconnect = reconnect

    def apply(self, plan: Plan, *, execute: bool, reason: str | None = None) -> ApplyResult:
        """Run every planned action; with ``execute`` false (kill switch), audit them as held
        back instead. A dry-run plan is never executed and writes nothing."""
        if plan.dry_run:
            return _not_executed(plan, reason or "dry run")
        if not execute:
            self._audit_held_back(plan, reason or "paused")
            return _not_executed(plan, reason or "paused")
        interrupted = self._interrupted_intents(plan)
        results: list[ActionResult] = []
        for cluster in plan.clusters:
            results += self._apply_cluster(plan, cluster, interrupted)
        return ApplyResult(cycle_id=plan.cycle_id, executed=True, results=tuple(results))

    def _apply_cluster(
        self, plan: Plan, cluster: ClusterPlan, interrupted: set[str]
    ) -> list[ActionResult]:
        results: list[ActionResult] = []
        failed: str | None = None
        for action in cluster.actions:
            if action.status == "shadow":
                self._audit(plan, action, phase="outcome", executed=False, note="shadow")
                results.append(_result(action, "not_executed", "shadow strategy: audit only"))
                continue
            if action.status != "planned":
                results.append(_result(action, "not_executed", f"action {action.status}"))
                continue
            if failed is not None:
                results.append(_result(action, "not_executed", f"after earlier failure: {failed}"))
                continue
            result = self._apply_action(plan, cluster, action, action.id in interrupted)
            if result.outcome == "failed":
                failed = result.error or "failed"
            results.append(result)
        return results

    def _apply_action(
        self, plan: Plan, cluster: ClusterPlan, action: Action, interrupted: bool
    ) -> ActionResult:
        check = self._recheck(cluster, action)
        if not check.proceed:
            # An earlier attempt whose outcome was never written did run: say so.
            done = interrupted and check.outcome == "already_true"
            self._audit(
                plan,
                action,
                phase="outcome",
                executed=done,
                note=("completed by an interrupted attempt; " if done else "") + check.reason,
                error=check.reason if check.outcome == "failed" else None,
            )
            return _result(
                action, "succeeded" if done else (check.outcome or "failed"), check.reason
            )
        # Rendered here, from the action's fields and the cluster's current name: never the
        # plan's own SQL text, and never a name that may now belong to another cluster.
        live = dataclasses.replace(action, cluster_name=check.cluster_name or action.cluster_name)
        action = dataclasses.replace(live, sql=render(live))
        sql = action.sql or ""
        self._audit(plan, action, phase="intent", executed=None)
        try:
            self.db.execute(
                sql,
                purpose=f"{action.describe()} on cluster {action.cluster_name!r}",
                timeout_s=_ddl_bound(action),
            )
        except ConnectionLost as exc:
            return self._after_lost_connection(plan, cluster, action, str(exc))
        except DatabaseError as exc:
            self._audit(plan, action, phase="outcome", executed=False, error=str(exc))
            return _result(action, "failed", str(exc))
        self._audit(plan, action, phase="outcome", executed=True)
        return _result(action, "succeeded")

    def _after_lost_connection(
        self, plan: Plan, cluster: ClusterPlan, action: Action, error: str
    ) -> ActionResult:
        """The DDL may or may not have run: reconnect, read the truth, audit it."""
        if self._reconnect is None:
            raise ConnectionLost(
                f"connection lost during {action.describe()} on {action.cluster_name}"
            )
        self.db = self._reconnect()
        self.store.db = self.db
        check = self._recheck(cluster, action)
        ran = check.outcome == "already_true"
        note = f"connection lost ({error}); the catalog shows it {'ran' if ran else 'did not run'}"
        self._audit(
            plan, action, phase="outcome", executed=ran, note=note, error=None if ran else error
        )
        return _result(action, "succeeded" if ran else "failed", None if ran else note)

    def _recheck(self, cluster: ClusterPlan, action: Action) -> Check:
        if action.kind == "alter_cluster":
            return self._recheck_alter(action)
        rows = self.db.query(
            _LIVE_REPLICA,
            (action.replica_name, action.cluster_id),
            purpose=f"re-checking {action.describe()} on {action.cluster_name!r}",
        )
        if not rows:
            if action.kind == "drop_replica":
                return Check(False, "already_true", "the cluster (and its replica) is gone")
            return Check(False, "failed", "the cluster no longer exists")
        name, replica_id, size = str(rows[0][0]), rows[0][1], rows[0][2]
        if action.kind == "create_replica":
            if replica_id is None:
                return Check(True, cluster_name=name)
            if size == action.size:
                return Check(False, "already_true", "replica already exists with that size")
            return Check(False, "failed", f"a replica of that name has size {size}")
        if action.kind == "drop_replica":
            if replica_id is None:
                return Check(False, "already_true", "replica already gone")
            if action.replica_id and replica_id != action.replica_id:
                return Check(False, "failed", "replica was recreated since the plan was made")
            if not _may_leave_none(cluster) and not self._drop_keeps_hydration(action):
                return Check(False, "failed", "no other hydrated replica: refusing to drop it")
            return Check(True, cluster_name=name)
        return Check(False, "failed", f"unsupported action kind {action.kind}")

    def _recheck_alter(self, action: Action) -> Check:
        """Managed clusters: already at that size and factor -> already_true; a graceful
        reconfiguration running -> already_true if it goes to this size, else skip."""
        alter = action.alter
        if alter is None:
            return Check(False, "failed", "alter_cluster action without anything to set")
        rows = self.db.query(_LIVE_CLUSTER, (action.cluster_id,))
        if not rows:
            return Check(False, "failed", "the cluster no longer exists")
        managed, size, factor, name = rows[0]
        if not managed:
            return Check(False, "failed", "the cluster is no longer managed")
        running = self._reconfiguring(action.cluster_id)
        if running:
            target = running[0][0]
            if alter.wait and alter.size is not None and target == alter.size:
                # Ours (an earlier attempt whose answer was lost) or someone's: the same change.
                return Check(
                    False, "already_true", f"a graceful reconfiguration to {target} is running"
                )
            return Check(
                False,
                "not_executed",
                f"skipped: a graceful reconfiguration to {target or 'another size'} is running",
            )
        size_ok = alter.size is None or size == alter.size
        factor_ok = alter.replication_factor is None or (
            factor is not None and int(factor) == alter.replication_factor
        )
        if size_ok and factor_ok:
            return Check(False, "already_true", f"the cluster is already at {alter.describe()}")
        return Check(True, cluster_name=str(name))

    def _reconfiguring(self, cluster_id: str) -> list[tuple[str | None, str | None]]:
        try:
            rows = self.db.query(_RECONFIGURING, (cluster_id,))
        except DatabaseError:
            return []  # a release without background reconfigurations
        return [(None if s is None else str(s), None if f is None else str(f)) for s, f in rows]

    def _drop_keeps_hydration(self, action: Action) -> bool:
        """The drop leaves as many hydrated replicas serving as there were, or at least one:
        the replica is not hydrated itself (nothing is lost), or another one is."""
        cid = action.cluster_id
        rows = self.db.query(
            REPLICA_HYDRATION_BY_ID,
            (cid,),
            purpose=f"re-checking hydration of {action.cluster_name!r}",
        )
        hydrated = {r.name: r.hydrated for r in replica_hydration(rows)}
        if not hydrated.get(action.replica_name, False):
            return True
        return any(ok for name, ok in hydrated.items() if name != action.replica_name)

    def _interrupted_intents(self, plan: Plan) -> set[str]:
        """Actions of this plan with an intent row but no outcome: a previous attempt died."""
        ids = [a.id for a in plan.actions()]
        if not ids:
            return set()
        marks = ", ".join(["%s"] * len(ids))
        table = self.store.table(ACTIONS)
        rows = self.db.query(
            f"SELECT action_id, decision_ctx ->> 'phase' FROM {table} WHERE action_id IN ({marks})",
            ids,
        )
        phases: dict[str, set[str]] = {}
        for aid, phase in rows:
            phases.setdefault(str(aid), set()).add(str(phase))
        return {aid for aid, seen in phases.items() if "intent" in seen and "outcome" not in seen}

    def _audit_held_back(self, plan: Plan, reason: str) -> None:
        records = [
            _record(plan, a, phase="outcome", executed=False, note=f"held back: {reason}")
            for a in plan.actions()
            if a.status in ("planned", "shadow")
        ]
        self.store.audit(records)

    def _audit(
        self,
        plan: Plan,
        action: Action,
        *,
        phase: str,
        executed: bool | None,
        note: str | None = None,
        error: str | None = None,
    ) -> None:
        self.store.audit(
            [_record(plan, action, phase=phase, executed=executed, note=note, error=error)]
        )


def _ddl_bound(action: Action) -> float | None:
    """A graceful resize may wait up to its TIMEOUT (Materialize before v26.35 returns only when
    the new replicas are ready; v26.35+ at once): its client-side bound covers that wait. Every
    other DDL has the connection's bound (None)."""
    alter = action.alter
    if alter is None or not alter.wait:
        return None
    return (alter.timeout_s if alter.timeout_s is not None else 3600.0) + CLIENT_TIMEOUT_GRACE_S


def _may_leave_none(cluster: ClusterPlan) -> bool:
    """Whether the plan empties the cluster on purpose: a suspend, or a replacement with
    downtime (allow_downtime on a cluster that takes a single replica, whose old replica must
    go before the new one can be created). Otherwise a drop needs another hydrated replica."""
    return cluster.empty_on_purpose or any(f.kind == "downtime" for f in cluster.findings)


def _record(
    plan: Plan,
    action: Action,
    *,
    phase: str,
    executed: bool | None,
    note: str | None = None,
    error: str | None = None,
) -> AuditRecord:
    context: dict[str, JsonValue] = {
        "cycle_id": plan.cycle_id,
        "cluster_name": action.cluster_name,
        "strategy": action.strategy,
        "kind": action.kind,
        "replica": action.replica_name,
        "size": action.size,
        **({"alter": action.alter.describe()} if action.alter is not None else {}),
        "phase": phase,
        "reasons": list(action.reasons),
        "codes": list(action.codes),
        "dry_run": plan.dry_run,
        "credits_per_hour_before": action.credits_per_hour_before,
        "credits_per_hour_after": action.credits_per_hour_after,
    }
    if note:
        context["note"] = note
    return AuditRecord(
        action_id=action.id,
        cluster_id=action.cluster_id,
        # What apply renders, never the plan's own text (which an edited XCom could change).
        action_sql=_safe_render(action),
        context=context,
        executed=executed,
        error_message=error,
    )


def _safe_render(action: Action) -> str | None:
    try:
        return render(action)
    except ValueError:
        return None


def _result(action: Action, outcome: Outcome, error: str | None = None) -> ActionResult:
    return ActionResult(
        action_id=action.id,
        cluster_id=action.cluster_id,
        outcome=outcome,
        error=error if outcome == "failed" else None,
    )


def _not_executed(plan: Plan, reason: str) -> ApplyResult:
    return ApplyResult(
        cycle_id=plan.cycle_id,
        executed=False,
        reason=reason,
        results=tuple(_result(a, "not_executed") for a in plan.actions()),
    )
