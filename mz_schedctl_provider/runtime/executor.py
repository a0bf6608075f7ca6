"""Carry out a plan in a handful of statements plus one per action: one fresh read of the live
catalog immediately before the DDL phase, every intent in one INSERT before the first DDL, the
DDLs one by one, every outcome in one INSERT after the last (or, on a crash, of what finished).
A cluster's remaining actions stop after its first failure while other clusters go on."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from mz_schedctl_provider.engine.models import (
    Action,
    ActionResult,
    ApplyResult,
    ClusterPlan,
    Outcome,
    Plan,
)
from mz_schedctl_provider.runtime.audit_records import not_executed, record, result
from mz_schedctl_provider.runtime.catalog_reads import ReplicaHydration
from mz_schedctl_provider.runtime.db import (
    CLIENT_TIMEOUT_GRACE_S,
    ConnectionLost,
    Database,
    DatabaseError,
)
from mz_schedctl_provider.runtime.ddl import render
from mz_schedctl_provider.runtime.live_reads import (
    LiveCluster,
    LiveReplica,
    live_sql,
    parse_live,
    read_live,
    with_reconfigurations,
)
from mz_schedctl_provider.runtime.store import ACTIONS, AuditRecord, Store

# A read protects a DDL only while fresh: in the same apply, at most this many statements and
# about this long before it (above all a DROP's survivors' hydration). Older, the cluster is
# re-checked singly first.
FRESH_STATEMENTS = 3
FRESH_S = 1.0


@dataclass(frozen=True)
class Check:
    """What the live catalog says about an action just before it would run."""

    proceed: bool
    outcome: Outcome | None = None
    reason: str = ""
    # The cluster's name now, which every statement is rendered with (not the plan's copy).
    cluster_name: str | None = None


@dataclass(frozen=True)
class Seen:
    """One cluster as last read (None: gone), and when: the connection's statement count
    right after the read and the monotonic clock just before it was sent."""

    live: LiveCluster | None
    statements: int
    at: float


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
        self._seen: dict[str, Seen] = {}
        self._outcomes: list[AuditRecord] = []

    def apply(self, plan: Plan, *, execute: bool, reason: str | None = None) -> ApplyResult:
        """Run every planned action; with ``execute`` false (kill switch), audit them as held
        back instead. A dry-run plan is never executed and writes nothing."""
        if plan.dry_run:
            return not_executed(plan, reason or "dry run")
        if not execute:
            self._audit_held_back(plan, reason or "paused")
            return not_executed(plan, reason or "paused")
        interrupted = self._interrupted_intents(plan)
        self._outcomes = []
        self._read_live_before_ddl(plan)
        results: dict[str, ActionResult] = {}
        queue = self._write_intents(plan, interrupted, results)
        try:
            self._run_ddl_phase(plan, queue, interrupted, results)
        except BaseException:
            self._flush_outcomes(best_effort=True)  # what finished, before the crash
            raise
        self._flush_outcomes(best_effort=False)
        ordered = tuple(results[a.id] for a in plan.actions() if a.id in results)
        return ApplyResult(cycle_id=plan.cycle_id, executed=True, results=ordered)

    # The batch ------------------------------------------------------------------------------

    def _read_live_before_ddl(self, plan: Plan) -> None:
        """One fresh read of everything the DDLs depend on: existence, current names, replica
        sizes and ids, hydration of the replicas a drop leaves (and, for managed clusters,
        the graceful reconfigurations running)."""
        ids = [c.cluster_id for c in plan.clusters if _planned(c)]
        managed = [c.cluster_id for c in plan.clusters if _alters(c)]
        self._read(ids, managed, purpose="reading the live catalog before the DDL phase")

    def _read(self, ids: list[str], managed: list[str], *, purpose: str) -> None:
        at = time.monotonic()
        live = read_live(self.db, ids, purpose=purpose)
        if managed:
            live = with_reconfigurations(self.db, live, managed)
        for cid in ids:
            self._seen[cid] = Seen(live.get(cid), self.db.statements, at)

    def _write_intents(
        self, plan: Plan, interrupted: set[str], results: dict[str, ActionResult]
    ) -> list[tuple[ClusterPlan, Action]]:
        """Check every action against the fresh read; audit the intent of every one that
        proceeds (one INSERT, before any DDL) and the outcome of every other (with the rest).
        Returns the actions to run, in plan order, rendered with current names."""
        intents: list[AuditRecord] = []
        queue: list[tuple[ClusterPlan, Action]] = []
        for cluster in plan.clusters:
            for action in cluster.actions:
                if action.status == "shadow":
                    self._outcome(plan, action, executed=False, note="shadow")
                    results[action.id] = result(
                        action, "not_executed", "shadow strategy: audit only"
                    )
                    continue
                if action.status != "planned":
                    results[action.id] = result(action, "not_executed", f"action {action.status}")
                    continue
                check = self._recheck(cluster, action)
                if not check.proceed:
                    results[action.id] = self._skip(plan, action, check, action.id in interrupted)
                    continue
                live = _rendered(action, check)
                intents.append(record(plan, live, phase="intent", executed=None))
                queue.append((cluster, live))
        self.store.audit(intents)
        return queue

    def _run_ddl_phase(
        self,
        plan: Plan,
        queue: list[tuple[ClusterPlan, Action]],
        interrupted: set[str],
        results: dict[str, ActionResult],
    ) -> None:
        failed: dict[str, str] = {}
        for i, (cluster, action) in enumerate(queue):
            if cluster.cluster_id in failed:
                results[action.id] = self._stopped(plan, action, failed[cluster.cluster_id])
                continue
            # The clusters of the next DDLs, which this one's round trip may read for them.
            ahead = [c for c, _a in queue[i + 1 : i + 2 + FRESH_STATEMENTS]]
            done = self._apply_action(plan, cluster, action, action.id in interrupted, ahead)
            if done.outcome == "failed":
                failed[cluster.cluster_id] = done.error or "failed"
            results[action.id] = done

    def _stopped(self, plan: Plan, action: Action, error: str) -> ActionResult:
        """Stop after a cluster's first failure: its later actions do not run (their intent
        gets an outcome that says so)."""
        self._outcome(plan, action, executed=False, note=f"not run after earlier failure: {error}")
        return result(action, "not_executed", f"after earlier failure: {error}")

    def _flush_outcomes(self, *, best_effort: bool) -> None:
        records, self._outcomes = self._outcomes, []
        try:
            self.store.audit(records)
        except DatabaseError:
            if not best_effort:
                raise
            # The crash path: the intents without outcomes are resolved from the catalog by
            # the retry (_interrupted_intents).

    # One action -----------------------------------------------------------------------------

    def _apply_action(
        self,
        plan: Plan,
        cluster: ClusterPlan,
        action: Action,
        interrupted: bool,
        ahead: list[ClusterPlan],
    ) -> ActionResult:
        if not self._fresh(cluster.cluster_id):
            self._recheck_singly(cluster)
        check = self._recheck(cluster, action)
        if not check.proceed:
            return self._skip(plan, action, check, interrupted)
        action = _rendered(action, check)
        sql = action.sql or ""
        purpose = f"{action.describe()} on cluster {action.cluster_name!r}"
        try:
            ids = self._read_ahead(action, ahead)
            if ids:
                at = time.monotonic()
                _count, rows = self.db.execute_then_query(
                    sql,
                    None,
                    live_sql(len(ids)),
                    ids,
                    purpose=purpose,
                    timeout_s=_ddl_bound(action),
                )
                self._ran(action)
                if rows is not None:
                    live = parse_live(rows)
                    for cid in ids:
                        self._seen[cid] = Seen(live.get(cid), self.db.statements, at)
            else:
                self.db.execute(sql, purpose=purpose, timeout_s=_ddl_bound(action))
                self._ran(action)
        except ConnectionLost as exc:
            return self._after_lost_connection(plan, cluster, action, str(exc))
        except DatabaseError as exc:
            self._outcome(plan, action, executed=False, error=str(exc))
            return result(action, "failed", str(exc))
        self._outcome(plan, action, executed=True)
        return result(action, "succeeded")

    def _read_ahead(self, action: Action, ahead: list[ClusterPlan]) -> list[str]:
        """The next DDL's cluster will have a stale read by then: read the clusters of the
        next few DDLs right after this one, in the same round trip, so each of them is at
        most FRESH_STATEMENTS statements after its read. Not after a graceful resize, which
        may wait minutes (the next DDL then re-checks singly)."""
        if not ahead or _ddl_bound(action) is not None:
            return []
        seen = self._seen.get(ahead[0].cluster_id)
        if seen is not None and self.db.statements + 1 - seen.statements <= FRESH_STATEMENTS:
            return []
        return list(dict.fromkeys(c.cluster_id for c in ahead))

    def _skip(self, plan: Plan, action: Action, check: Check, interrupted: bool) -> ActionResult:
        # An earlier attempt whose outcome was never written did run: say so.
        done = interrupted and check.outcome == "already_true"
        self._outcome(
            plan,
            action,
            executed=done,
            note=("completed by an interrupted attempt; " if done else "") + check.reason,
            error=check.reason if check.outcome == "failed" else None,
        )
        return result(action, "succeeded" if done else (check.outcome or "failed"), check.reason)

    def _ran(self, action: Action) -> None:
        """What this apply's own DDL changed, so the later checks of its cluster see it: a
        dropped replica is gone (it no longer counts as a hydrated survivor), a created one
        exists and is not hydrated yet."""
        seen = self._seen.get(action.cluster_id)
        if seen is None or seen.live is None or action.replica_name is None:
            return
        replicas = dict(seen.live.replicas)
        if action.kind == "drop_replica":
            replicas.pop(action.replica_name, None)
        elif action.kind == "create_replica":
            replicas[action.replica_name] = LiveReplica(
                "", action.replica_name, action.size,
                ReplicaHydration(action.replica_name, False, 0, 0),
            )  # fmt: skip
        live = dataclasses.replace(seen.live, replicas=replicas)
        self._seen[action.cluster_id] = dataclasses.replace(seen, live=live)

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
        # The new connection counts its statements from 0: no earlier read is fresh on it.
        self._seen = {
            c: dataclasses.replace(s, statements=-FRESH_STATEMENTS - 1)
            for c, s in self._seen.items()
        }
        self._recheck_singly(cluster)
        check = self._recheck(cluster, action)
        ran = check.outcome == "already_true"
        note = f"connection lost ({error}); the catalog shows it {'ran' if ran else 'did not run'}"
        self._outcome(plan, action, executed=ran, note=note, error=None if ran else error)
        return result(action, "succeeded" if ran else "failed", None if ran else note)

    # The checks -------------------------------------------------------------------------------

    def _recheck_singly(self, cluster: ClusterPlan) -> None:
        """Read one cluster again, alone (a lost connection, or a drop's stale hydration)."""
        managed = [cluster.cluster_id] if _alters(cluster) else []
        self._read([cluster.cluster_id], managed, purpose=f"re-checking {cluster.cluster_name!r}")

    def _fresh(self, cluster_id: str) -> bool:
        """Whether the last read of this cluster can still confirm a drop's survivors."""
        seen = self._seen.get(cluster_id)
        return (
            seen is not None
            and self.db.statements - seen.statements <= FRESH_STATEMENTS
            and time.monotonic() - seen.at <= FRESH_S
        )

    def _recheck(self, cluster: ClusterPlan, action: Action) -> Check:
        """Re-check before CREATE/DROP (and ALTER): against the last read of the cluster, with
        this apply's own DDL applied; skip what is already true, refuse what no longer fits."""
        seen = self._seen.get(action.cluster_id)
        live = seen.live if seen is not None else None
        if action.kind == "alter_cluster":
            return _recheck_alter(action, live)
        if live is None:
            if action.kind == "drop_replica":
                return Check(False, "already_true", "the cluster (and its replica) is gone")
            return Check(False, "failed", "the cluster no longer exists")
        replica = live.replicas.get(action.replica_name or "")
        if action.kind == "create_replica":
            if replica is None:
                return Check(True, cluster_name=live.name)
            if replica.size == action.size:
                return Check(False, "already_true", "replica already exists with that size")
            return Check(False, "failed", f"a replica of that name has size {replica.size}")
        if action.kind == "drop_replica":
            if replica is None:
                return Check(False, "already_true", "replica already gone")
            if action.replica_id and replica.id and replica.id != action.replica_id:
                return Check(False, "failed", "replica was recreated since the plan was made")
            if not _may_leave_none(cluster) and not _drop_keeps_hydration(live, action):
                return Check(False, "failed", "no other hydrated replica: refusing to drop it")
            return Check(True, cluster_name=live.name)
        return Check(False, "failed", f"unsupported action kind {action.kind}")

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

    # The audit --------------------------------------------------------------------------------

    def _audit_held_back(self, plan: Plan, reason: str) -> None:
        records = [
            record(plan, a, phase="outcome", executed=False, note=f"held back: {reason}")
            for a in plan.actions()
            if a.status in ("planned", "shadow")
        ]
        self.store.audit(records)

    def _outcome(
        self,
        plan: Plan,
        action: Action,
        *,
        executed: bool,
        note: str | None = None,
        error: str | None = None,
    ) -> None:
        """An outcome row, written with all the others after the DDL phase."""
        self._outcomes.append(
            record(plan, action, phase="outcome", executed=executed, note=note, error=error)
        )


def _drop_keeps_hydration(live: LiveCluster, action: Action) -> bool:
    """The drop leaves as many hydrated replicas serving as there were, or at least one:
    the replica is not hydrated itself (nothing is lost), or another one is."""
    hydrated = {name: r.hydrated for name, r in live.replicas.items()}
    if not hydrated.get(action.replica_name or "", False):
        return True
    return any(ok for name, ok in hydrated.items() if name != action.replica_name)


def _recheck_alter(action: Action, live: LiveCluster | None) -> Check:
    """Managed clusters: already at that size and factor -> already_true; a graceful
    reconfiguration running -> already_true if it goes to this size, else skip."""
    alter = action.alter
    if alter is None:
        return Check(False, "failed", "alter_cluster action without anything to set")
    if live is None:
        return Check(False, "failed", "the cluster no longer exists")
    if not live.managed:
        return Check(False, "failed", "the cluster is no longer managed")
    if live.reconfiguring:
        target = live.reconfiguring[0][0]
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
    size_ok = alter.size is None or live.size == alter.size
    factor_ok = alter.replication_factor is None or (
        live.replication_factor is not None
        and int(live.replication_factor) == alter.replication_factor
    )
    if size_ok and factor_ok:
        return Check(False, "already_true", f"the cluster is already at {alter.describe()}")
    return Check(True, cluster_name=live.name)


def _rendered(action: Action, check: Check) -> Action:
    """Rendered here, from the action's fields and the cluster's current name: never the
    plan's own SQL text, and never a name that may now belong to another cluster."""
    live = dataclasses.replace(action, cluster_name=check.cluster_name or action.cluster_name)
    return dataclasses.replace(live, sql=render(live))


def _planned(cluster: ClusterPlan) -> bool:
    return any(a.status == "planned" for a in cluster.actions)


def _alters(cluster: ClusterPlan) -> bool:
    return any(a.status == "planned" and a.kind == "alter_cluster" for a in cluster.actions)


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
