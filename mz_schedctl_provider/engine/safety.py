"""Safety rails, applied after all strategies: scope, names, hydration, order, limits.

Each rail is a small function over the cluster's actions that returns the new actions and,
where it changed something, why. A rail never deletes an action: it marks it ``skipped``
(the rail forbids it) or ``deferred`` (later, e.g. the rate limit), with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .desired import Desired
from .facts import ClusterContext, free_name, replica_hydrated
from .models import (
    Action,
    ActionKind,
    ActionStatus,
    Backoff,
    Cluster,
    Finding,
    RecentAction,
    Replica,
)
from .reasons import ReasonCode


@dataclass(frozen=True)
class Limits:
    """Rate limit and backoff settings (defaults as the behaviour contract says)."""

    max_actions_per_window: int = 10
    rate_window_s: float = 3600.0
    backoff_base_s: float = 60.0
    backoff_max_s: float = 3600.0


DEFAULT_LIMITS = Limits()


def scope_finding(cluster: Cluster) -> Finding | None:
    """Why the controller must leave this cluster alone, or None when it may act.

    Materialize's own scheduling wins: a cluster with ``SCHEDULE = ON REFRESH`` or an
    ``AUTO SCALING STRATEGY`` is left alone (two controllers would fight). Other managed
    clusters are driven with ALTER CLUSTER (see managed.py).
    """
    if cluster.is_system or cluster.id.startswith("s"):
        return Finding(
            kind="out_of_scope",
            severity="warning",
            message="system cluster: never touched",
            code="system_cluster",
        )
    if cluster.schedule_type not in (None, "manual"):
        return Finding(
            kind="left_alone",
            severity="warning",
            message=(
                "left alone: Materialize schedules this cluster itself "
                f"(SCHEDULE {cluster.schedule_type})"
            ),
            code="materialize_schedule",
        )
    if cluster.auto_scaling:
        return Finding(
            kind="left_alone",
            severity="warning",
            message="left alone: Materialize's built-in AUTO SCALING STRATEGY drives this cluster",
            code="materialize_auto_scaling",
        )
    return None


def diff_actions(*, ctx: ClusterContext, desired: Desired, strategy_fallback: str) -> list[Action]:
    """Creates for wanted replicas that are missing, drops for owned ones no longer wanted.

    A wanted name held by a replica of another size is never dropped-then-recreated: the new
    replica gets a free name and the old one stays this cycle.
    """
    cluster = ctx.cluster
    creates: list[Action] = []
    collided: set[str] = set()
    taken = set(ctx.taken_names()) | set(desired.names())
    for want in desired.replicas:
        existing = cluster.replica(want.name)
        if existing is not None and existing.size == want.size:
            continue
        name, why = want.name, ""
        if existing is not None:
            name, why = free_name(preferred=want.name, taken=taken)
            taken.add(name)
            collided.add(want.name)
        reasons = (want.reason, why) if why else (want.reason,)
        renamed = bool(why) or want.name_taken
        codes: tuple[ReasonCode, ...] = (want.code, "name_taken") if renamed else (want.code,)
        creates.append(
            _action(ctx, "create_replica", name, want.size, want.strategy, reasons, codes)
        )
    drops: list[Action] = []
    for replica in ctx.owned_replicas():
        if replica.name in collided:
            continue
        wanted = desired.get(replica.name)
        if wanted is not None and wanted.size == replica.size:
            continue
        removal = desired.removal(replica.name)
        strategy = removal.strategy if removal else strategy_fallback
        reason = removal.reason if removal else "no strategy wants this replica"
        code: ReasonCode = removal.code if removal else "not_wanted"
        action = _action(
            ctx, "drop_replica", replica.name, replica.size, strategy, (reason,), (code,)
        )
        drops.append(replace(action, replica_id=replica.id))
    return creates + drops


def _action(
    ctx: ClusterContext,
    kind: ActionKind,
    name: str,
    size: str | None,
    strategy: str,
    reasons: tuple[str, ...],
    codes: tuple[ReasonCode, ...],
) -> Action:
    # Ids are given by the planner once the cluster's actions are final.
    return Action(
        id="",
        cluster_id=ctx.cluster.id,
        cluster_name=ctx.cluster.name,
        kind=kind,
        replica_name=name,
        size=size,
        strategy=strategy,
        reasons=reasons,
        codes=codes,
    )


def mark(
    actions: Iterable[Action],
    pick: set[int],
    status: ActionStatus,
    reason: str,
    code: ReasonCode,
) -> list[Action]:
    """Set a status and add a reason (and its code) to the planned actions at the given
    positions."""
    return [
        replace(a, status=status, reasons=(*a.reasons, reason), codes=_with(a.codes, code))
        if i in pick and a.status == "planned"
        else a
        for i, a in enumerate(actions)
    ]


def rail_last_hydrated(
    *, ctx: ClusterContext, actions: list[Action], empty_on_purpose: bool
) -> tuple[list[Action], str | None]:
    """Never drop the last hydrated replica, unless the cluster is emptied on purpose."""
    if empty_on_purpose:
        return actions, None
    hydrated = {
        r.name for r in ctx.cluster.replicas if replica_hydrated(cluster=ctx.cluster, replica=r)[0]
    }
    dropping = {
        a.replica_name for a in actions if a.kind == "drop_replica" and a.status == "planned"
    }
    if not hydrated or not hydrated <= dropping:
        return actions, None
    # Keep the biggest hydrated one: the most capacity while the replacement hydrates.
    keep = max(sorted(hydrated), key=lambda n: ctx.credits(_size_of(ctx, n)))
    pick = {i for i, a in enumerate(actions) if a.kind == "drop_replica" and a.replica_name == keep}
    reason = f"kept: {keep!r} is the last hydrated replica and nothing else is hydrated yet"
    return mark(actions, pick, "skipped", reason, "last_hydrated"), reason


def _with(codes: tuple[ReasonCode, ...], code: ReasonCode) -> tuple[ReasonCode, ...]:
    """Codes name causes, not sentences: each once, in the order first given."""
    return codes if code in codes else (*codes, code)


def _size_of(ctx: ClusterContext, name: str) -> str | None:
    replica = ctx.cluster.replica(name)
    return replica.size if replica else None


def rail_single_replica(
    *, ctx: ClusterContext, actions: list[Action], desired: Desired, allow_downtime: bool
) -> tuple[list[Action], Finding | None]:
    """Clusters with sources or sinks take one replica: replace with downtime, or say why not."""
    cluster = ctx.cluster
    creates = [
        i for i, a in enumerate(actions) if a.kind == "create_replica" and a.status == "planned"
    ]
    if not cluster.hosts_sources_or_sinks or not creates:
        return actions, None
    if not cluster.replicas and len(creates) == 1:
        return actions, None  # the only replica (e.g. a resume): nothing to replace
    what = f"hosts {cluster.sources} source(s) and {cluster.sinks} sink(s)"
    dropping = {
        a.replica_name for a in actions if a.kind == "drop_replica" and a.status == "planned"
    }
    staying = [r for r in cluster.replicas if r.name not in dropping]
    movable = [r for r in staying if _transitional(ctx=ctx, desired=desired, name=r.name)]
    if allow_downtime and len(creates) == 1 and len(movable) == len(staying):
        reason = f"allow_downtime: the cluster {what}, so the old replica goes first (downtime)"
        return _drops_first(ctx=ctx, actions=actions, movable=movable, reason=reason), Finding(
            kind="downtime",
            severity="warning",
            message=f"replacement with downtime: {reason}",
            code="downtime",
        )
    reason = (
        f"impossible without downtime: the cluster {what}, and Materialize refuses a second "
        "replica there; set allow_downtime: true to replace it with downtime"
    )
    finding = Finding(kind="impossible", severity="warning", message=reason, code="single_replica")
    return mark(actions, set(creates), "skipped", reason, "single_replica"), finding


def _drops_first(
    *, ctx: ClusterContext, actions: list[Action], movable: list[Replica], reason: str
) -> list[Action]:
    """Drop every replica being replaced (reviving drops a rail held back), then create."""
    names = {r.name for r in movable}
    drops = [
        replace(a, status="planned", reasons=(*a.reasons, reason), codes=_with(a.codes, "downtime"))
        if a.replica_name in names
        else a
        for a in actions
        if a.kind == "drop_replica"
    ]
    covered = {a.replica_name for a in drops}
    strategy = next(a.strategy for a in actions if a.kind == "create_replica")
    drops += [
        replace(
            _action(ctx, "drop_replica", r.name, r.size, strategy, (reason,), ("downtime",)),
            replica_id=r.id,
        )
        for r in movable
        if r.name not in covered
    ]
    return drops + [a for a in actions if a.kind != "drop_replica"]


def _transitional(*, ctx: ClusterContext, desired: Desired, name: str) -> bool:
    """An owned replica kept only until its replacement hydrates (or not wanted at all)."""
    want = desired.get(name)
    return name in ctx.owned and (want is None or want.until_replaced)


def creates_first(actions: list[Action]) -> list[Action]:
    """Creates before drops: a replacement exists before what it replaces goes."""
    return [a for a in actions if a.kind != "drop_replica"] + [
        a for a in actions if a.kind == "drop_replica"
    ]


def rail_backoff(
    *, actions: list[Action], backoff: Backoff | None, now: datetime
) -> tuple[list[Action], str | None]:
    """After a failure, nothing runs before the retry time (exponential backoff)."""
    if backoff is None or now >= backoff.retry_at:
        return actions, None
    reason = (
        f"backoff after {backoff.failures} failure(s): retry at {backoff.retry_at.isoformat()} "
        f"(last error: {backoff.last_error})"
    )
    pick = {i for i, a in enumerate(actions) if a.status == "planned"}
    return mark(actions, pick, "deferred", reason, "backoff"), (reason if pick else None)


def recent_count(
    *, recent: Iterable[RecentAction], cluster_id: str, now: datetime, limits: Limits
) -> int:
    since = now - timedelta(seconds=limits.rate_window_s)
    return sum(1 for r in recent if r.cluster_id == cluster_id and since < r.at <= now)


def rail_rate_limit(
    *, actions: list[Action], already: int, limits: Limits, all_or_nothing: bool
) -> tuple[list[Action], str | None]:
    """At most max_actions_per_window per cluster per rolling window; the excess waits."""
    planned = [i for i, a in enumerate(actions) if a.status == "planned"]
    budget = max(0, limits.max_actions_per_window - already)
    if len(planned) <= budget:
        return actions, None
    excess = set(planned) if all_or_nothing else set(planned[budget:])
    reason = (
        f"rate limit: {already} action(s) in the last {int(limits.rate_window_s)}s, "
        f"at most {limits.max_actions_per_window}"
    )
    return mark(actions, excess, "deferred", reason, "rate_limit"), reason


def next_backoff(*, prev: Backoff | None, now: datetime, error: str, limits: Limits) -> Backoff:
    """One more failure: wait base * 2^(failures-1), capped."""
    failures = (prev.failures if prev else 0) + 1
    return backoff_after(failures=failures, now=now, error=error, limits=limits)


def backoff_after(*, failures: int, now: datetime, error: str, limits: Limits) -> Backoff:
    """The backoff after ``failures`` failures in a row."""
    wait = min(limits.backoff_base_s * (2 ** min(failures - 1, 32)), limits.backoff_max_s)
    return Backoff(
        failures=failures, retry_at=now + timedelta(seconds=wait), last_error=error[:200]
    )
