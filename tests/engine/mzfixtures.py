"""Builders and a tiny apply simulator for engine tests (pure: no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

from mz_schedctl_provider.engine import (
    ActionResult,
    ApplyResult,
    Cluster,
    ClusterPlan,
    Plan,
    RecentAction,
    Replica,
    Signals,
    Size,
    StateRow,
    StrategyRow,
    decide,
    next_states,
    state_to_payload,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
MIB = 1048576
SIZES = (
    *(
        Size(name=n, credits_per_hour=c, memory_bytes=m * MIB)
        for n, c, m in [
            ("25cc", 0.25, 3881),
            ("50cc", 0.5, 7762),
            ("100cc", 1.0, 15525),
            ("200cc", 2.0, 31050),
            ("400cc", 4.0, 62100),
            ("800cc", 8.0, 124201),
        ]
    ),
    # Listed by Materialize but not allowed on this instance.
    Size(name="3200cc", credits_per_hour=32.0, memory_bytes=481280 * MIB, allowed=False),
)

_ids = iter(range(100, 10_000))


def replica(
    name: str,
    size: str,
    *,
    hydrated: bool = True,
    status: str | None = None,
    reason: str | None = None,
    created_at: datetime | None = None,
    oom: int = 0,
    crash: int = 0,
    objects: int = 1,
    rid: str | None = None,
) -> Replica:
    """A replica of a cluster hosting ``objects`` user objects (1 index by default)."""
    if status is None:
        status = "online" if hydrated else "offline"
        reason = None if hydrated else "initializing"
    return Replica(
        id=rid or f"u{next(_ids)}",
        name=name,
        size=size,
        created_at=created_at or NOW - DAY,
        status=status,
        status_reason=reason,
        hydrated_objects=objects if hydrated else 0,
        oom_count=oom,
        crash_count=crash,
    )


def cluster(name: str = "c", *replicas: Replica, cid: str = "u10", **kw: Any) -> Cluster:
    kw.setdefault("indexes", 1)
    kw.setdefault("last_activity", NOW - timedelta(minutes=1))
    return Cluster(id=cid, name=name, replicas=tuple(replicas), **kw)


def row(
    cid: str, strategy: str, config: Any, updated_at: datetime | None = NOW - DAY
) -> StrategyRow:
    return StrategyRow(cluster_id=cid, strategy_type=strategy, config=config, updated_at=updated_at)


def signals(
    clusters: list[Cluster] | Cluster,
    rows: list[StrategyRow],
    *,
    states: tuple[StateRow, ...] = (),
    recent: tuple[RecentAction, ...] = (),
    now: datetime = NOW,
    logging_visible: bool = True,
    controller_cluster: str | None = "mz_schedctl",
) -> Signals:
    return Signals(
        now=now,
        logging_visible=logging_visible,
        controller_cluster=controller_cluster,
        sizes=SIZES,
        clusters=tuple(clusters if isinstance(clusters, list) else [clusters]),
        strategies=tuple(rows),
        states=states,
        recent_actions=recent,
    )


def only(plan: Plan) -> ClusterPlan:
    assert len(plan.clusters) == 1, plan.clusters
    return plan.clusters[0]


def run(sig: Signals, **kw: Any) -> ClusterPlan:
    kw.setdefault("cycle_id", "test-cycle")
    kw.setdefault("dry_run", False)
    return only(decide(sig, **kw))


def planned(cp: ClusterPlan) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.replica_name, a.size) for a in cp.actions if a.status == "planned"]


def by_status(cp: ClusterPlan, status: str) -> list[tuple[str, str, str | None]]:
    return [(a.kind, a.replica_name, a.size) for a in cp.actions if a.status == status]


def hydrated_names(c: Cluster) -> set[str]:
    from mz_schedctl_provider.engine import replica_hydrated

    return {r.name for r in c.replicas if replica_hydrated(cluster=c, replica=r)[0]}


def apply(
    sig: Signals,
    plan: Plan,
    *,
    advance: timedelta = timedelta(minutes=5),
    fail: set[str] | None = None,
) -> Signals:
    """Execute the plan's planned actions on the signals (creates first, as ordered), write
    states as persist would, and move the clock. New replicas start offline/initializing.

    Asserts on the way that no moment leaves a cluster without a hydrated replica it had,
    unless the plan empties it on purpose.
    """
    fail = fail or set()
    results = []
    clusters = {c.id: c for c in sig.clusters}
    recent = list(sig.recent_actions)
    for cp in plan.clusters:
        c = clusters[cp.cluster_id]
        had_hydrated = bool(hydrated_names(c))
        for a in cp.actions:
            if a.status != "planned":
                continue
            if a.replica_name in fail:
                results.append(ActionResult(a.id, a.cluster_id, "failed", "boom"))
                recent.append(RecentAction(a.cluster_id, sig.now, a.strategy))
                continue
            if a.kind == "create_replica":
                assert c.replica(a.replica_name) is None, f"duplicate replica {a.replica_name}"
                new = replica(a.replica_name, a.size or "", hydrated=False, created_at=sig.now)
                c = replace(c, replicas=(*c.replicas, new))
            else:
                c = replace(c, replicas=tuple(r for r in c.replicas if r.name != a.replica_name))
                downtime = any(f.kind == "downtime" for f in cp.findings)
                if had_hydrated and not cp.empty_on_purpose and not downtime:
                    assert hydrated_names(c), f"dropped the last hydrated replica {a.replica_name}"
            results.append(ActionResult(a.id, a.cluster_id, "succeeded"))
            recent.append(RecentAction(a.cluster_id, sig.now, a.strategy))
        clusters[c.id] = c
    result = ApplyResult(cycle_id=plan.cycle_id, executed=True, results=tuple(results))
    states = list(sig.states)
    for cid, st in next_states(plan, result).items():
        states.append(StateRow(cid, 2, state_to_payload(st), sig.now))
    return replace(
        sig,
        now=sig.now + advance,
        clusters=tuple(clusters[c.id] for c in sig.clusters),
        states=tuple(states),
        recent_actions=tuple(recent),
    )


def hydrate(sig: Signals, name: str, *, cid: str = "u10") -> Signals:
    """Mark one replica online and fully hydrated."""

    def fix(c: Cluster) -> Cluster:
        if c.id != cid:
            return c
        reps = tuple(
            replace(r, status="online", status_reason=None, hydrated_objects=c.objects_to_hydrate)
            if r.name == name
            else r
            for r in c.replicas
        )
        return replace(c, replicas=reps)

    return replace(sig, clusters=tuple(fix(c) for c in sig.clusters))


def with_cluster(sig: Signals, **changes: Any) -> Signals:
    (c,) = sig.clusters
    return replace(sig, clusters=(replace(c, **changes),))
