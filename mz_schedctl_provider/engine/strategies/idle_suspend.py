"""idle_suspend (priority 3): no replicas after idle_after_s; resume on activity.

Suspended is derived from facts, not a flag: the cluster has none of its (owned) replicas and
the state remembers a replica set. So a suspend or resume whose DDL was deferred or failed is
simply decided again next cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..config import KeySpec, Values
from ..desired import Desired
from ..evidence import AUDIT, DEFAULT_REPLICA_NAME, default_replica
from ..facts import ClusterContext, iso, latest, parse_ts, seconds_between
from ..models import JsonObject
from .base import StrategyResult, StrategySpec
from .remembered import FACTOR_KEY, REMEMBERED_KEY, RememberedReplicas, load_factor

NAME = "idle_suspend"


@dataclass(frozen=True)
class IdleSuspendParams:
    """Validated idle_suspend config."""

    idle_after_s: float
    resume: bool
    allow_with_maintained_objects: bool


def build(values: Values) -> IdleSuspendParams:
    return IdleSuspendParams(
        idle_after_s=values.required_number("idle_after_s"),
        resume=values.flag("resume"),
        allow_with_maintained_objects=values.flag("allow_with_maintained_objects"),
    )


@dataclass(frozen=True)
class IdleState:
    """Own state: the replica set remembered at suspend, and the idle clock's anchors."""

    suspended_at: datetime | None = None
    remembered: RememberedReplicas | None = None
    last_resume_at: datetime | None = None
    first_seen_at: datetime | None = None
    # Managed clusters: the REPLICATION FACTOR at suspend, restored on resume.
    replication_factor: int | None = None

    @classmethod
    def load(cls, raw: JsonObject) -> IdleState:
        return cls(
            suspended_at=parse_ts(raw.get("suspended_at")),
            remembered=RememberedReplicas.load(raw.get(REMEMBERED_KEY)),
            last_resume_at=parse_ts(raw.get("last_resume_at")),
            first_seen_at=parse_ts(raw.get("first_seen_at")),
            replication_factor=load_factor(raw.get(FACTOR_KEY)),
        )

    def dump(self) -> JsonObject:
        out: JsonObject = {}
        if self.suspended_at is not None:
            out["suspended_at"] = iso(self.suspended_at)
        if self.remembered is not None:
            out[REMEMBERED_KEY] = self.remembered.dump()
        if self.last_resume_at is not None:
            out["last_resume_at"] = iso(self.last_resume_at)
        if self.first_seen_at is not None:
            out["first_seen_at"] = iso(self.first_seen_at)
        if self.replication_factor is not None:
            out[FACTOR_KEY] = self.replication_factor
        return out


def suspend_blocker(*, ctx: ClusterContext, params: IdleSuspendParams) -> str | None:
    """Why this cluster must not be suspended now, or None."""
    c = ctx.cluster
    if c.hosts_sources_or_sinks:
        return f"hosts {c.sources} source(s) and {c.sinks} sink(s): suspending would stop them"
    if c.materialized_views and not params.allow_with_maintained_objects:
        return (
            f"hosts {c.materialized_views} materialized view(s) "
            "(set allow_with_maintained_objects to allow)"
        )
    if ctx.controller_cluster is not None and c.name == ctx.controller_cluster:
        return "the controller's own session runs on this cluster"
    if not ctx.logging_visible:
        return "statement logging cannot see activity (statement_logging_max_sample_rate is 0)"
    return None


def idle_clock_start(
    *, ctx: ClusterContext, st: IdleState, row_updated_at: datetime | None
) -> datetime | None:
    """Latest of: last activity, the row's update, the last resume, the newest replica."""
    newest_replica = latest(*(r.created_at for r in ctx.cluster.replicas))
    return latest(
        ctx.cluster.last_activity,
        row_updated_at,
        st.last_resume_at,
        newest_replica,
        st.first_seen_at,
    )


def resume_set(*, ctx: ClusterContext, st: IdleState, desired: Desired) -> tuple[Desired, str]:
    """Earlier strategies' wishes win; otherwise the replica set remembered at suspend.
    A managed cluster gets its remembered replication factor back either way."""
    if st.replication_factor is not None:
        desired = replace(desired, replication_factor=st.replication_factor)
    factor = (
        f" (REPLICATION FACTOR {st.replication_factor})"
        if st.replication_factor is not None
        else ""
    )
    if desired.replicas:
        names = ", ".join(repr(r.name) for r in desired.replicas)
        return desired, f"resume with the replicas other strategies want ({names}){factor}"
    remembered = st.remembered or RememberedReplicas()
    out, restored = remembered.restore(
        ctx=ctx, desired=desired, strategy=NAME, reason="resume the replica remembered at suspend"
    )
    return out, f"resume the remembered replica set: {', '.join(restored) or 'nothing'}{factor}"


def run(
    *,
    params: IdleSuspendParams,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    st = IdleState.load(state)
    note = ""
    if not ctx.cluster.replicas and (st.remembered is None or st.suspended_at is None):
        # A cluster with no replica and no remembered set (state lost, or a predecessor's
        # suspend): what to resume comes from the evidence, else it would never serve again.
        st, note = from_evidence(params=params, ctx=ctx, st=st, now=now, desired=desired)
    result = decide(params=params, ctx=ctx, st=st, now=now, desired=desired, updated=row_updated_at)
    if not note:
        return result
    return replace(result, reasons=tuple(f"{r} ({note})" for r in result.reasons))


def from_evidence(
    *,
    params: IdleSuspendParams,
    ctx: ClusterContext,
    st: IdleState,
    now: datetime,
    desired: Desired,
) -> tuple[IdleState, str]:
    """A suspended state rebuilt from the best evidence, and a note saying which: the newest
    suspend's drops in the audit trail, else Materialize's replica history, else the replicas
    the strategy rows want (earlier strategies' wishes), else the documented default (one
    replica 'r1' of the cheapest allowed size; a managed cluster: replication factor 1)."""
    found = ctx.suspend_evidence
    managed = ctx.cluster.managed
    if found is not None and (found.replicas or found.replication_factor):
        pairs, at, factor = found.replicas, found.at, found.replication_factor
        source = f"no remembered set in state: replica set from {found.source}"
    elif desired.replicas:
        pairs, at, factor = (), None, None
        source = "no remembered set in state: replica set from the strategy rows"
    else:
        fallback = default_replica(ctx.sizes)
        if managed and ctx.cluster.size is not None:
            fallback = (DEFAULT_REPLICA_NAME, ctx.cluster.size)  # a managed cluster keeps its size
        pairs = () if fallback is None else (fallback,)
        at, factor = None, 1 if managed else None
        source = "no remembered set in state nor evidence: replica set from the default"
    # Without a known suspend time, activity inside idle_after_s is activity after it.
    began = at if at is not None else now - timedelta(seconds=params.idle_after_s)
    rebuilt = replace(
        st,
        suspended_at=began,
        remembered=RememberedReplicas(pairs),
        replication_factor=factor if managed else st.replication_factor,
    )
    return rebuilt, source


def decide(
    *,
    params: IdleSuspendParams,
    ctx: ClusterContext,
    st: IdleState,
    now: datetime,
    desired: Desired,
    updated: datetime | None,
) -> StrategyResult:
    row_updated_at = updated
    suspended = (
        not ctx.owned_replicas() and st.remembered is not None and st.suspended_at is not None
    )
    if suspended:
        return while_suspended(params=params, ctx=ctx, st=st, now=now, desired=desired)
    if st.remembered is not None:
        # Replicas are back (our resume ran, or a human added some): forget the suspend.
        st = IdleState(last_resume_at=st.last_resume_at, first_seen_at=st.first_seen_at)
    blocker = suspend_blocker(ctx=ctx, params=params)
    if blocker is not None:
        return StrategyResult(
            desired=desired, state=st.dump(), reasons=(f"never suspend: {blocker}",)
        )
    start = idle_clock_start(ctx=ctx, st=st, row_updated_at=row_updated_at)
    if start is None:
        # No history at all: start the clock now rather than suspend on the first cycle.
        st = IdleState(first_seen_at=now)
        return StrategyResult(
            desired=desired,
            state=st.dump(),
            reasons=("no activity history yet: idle clock starts now",),
        )
    # Idle only as far as the statement log can tell: its last log_flush_lag_s are not written
    # yet, so a query just before now may be invisible (measured to now - lag, not to now).
    lag = timedelta(seconds=ctx.log_flush_lag_s)
    idle_s = max(0.0, seconds_between(start, now - lag))
    if idle_s < params.idle_after_s:
        at = start + timedelta(seconds=params.idle_after_s) + lag
        return StrategyResult(
            desired=desired,
            state=st.dump(),
            reasons=(
                f"idle for {int(idle_s)}s of {int(params.idle_after_s)}s: "
                f"would suspend at {iso(at)}",
            ),
        )
    # Earlier strategies may have emptied the wish list while replicas still run (a burst
    # whose base a user dropped: burst lets it go, the last-hydrated rail keeps it): an idle
    # cluster must still be suspended, else it pays for them forever. Remember those.
    running = tuple((r.name, r.size) for r in ctx.owned_replicas() if r.size is not None)
    if not desired.replicas and not running:
        return StrategyResult(
            desired=desired, state=st.dump(), reasons=("idle, but no replica to suspend",)
        )
    wanted = RememberedReplicas.of(desired)
    remembered = wanted if wanted.replicas else RememberedReplicas(running)
    remembered = with_interrupted(remembered, ctx=ctx)
    reason = f"idle for {int(idle_s)}s (idle_after_s {int(params.idle_after_s)}): suspend"
    out = desired.emptied(strategy=NAME, reason=reason, code="idle")
    factor = ctx.cluster.current_replication_factor if ctx.cluster.managed else None
    new = IdleState(
        suspended_at=now,
        remembered=remembered,
        last_resume_at=st.last_resume_at,
        replication_factor=factor or None,
    )
    return StrategyResult(desired=out, state=new.dump(), reasons=(reason,))


def with_interrupted(remembered: RememberedReplicas, *, ctx: ClusterContext) -> RememberedReplicas:
    """The union of what an interrupted suspend already removed (its executed drops in the
    audit trail since the last create: a drop failed, or the rate limit deferred some) and
    what is left: a suspend that only partly ran must not shrink the cluster for good."""
    found = ctx.suspend_evidence
    if found is None or found.source != AUDIT:
        return remembered
    names = {n for n, _ in remembered.replicas}
    extra = tuple((n, s) for n, s in found.replicas if n not in names and not ctx.exists(n))
    return RememberedReplicas(remembered.replicas + extra) if extra else remembered


def while_suspended(
    *,
    params: IdleSuspendParams,
    ctx: ClusterContext,
    st: IdleState,
    now: datetime,
    desired: Desired,
) -> StrategyResult:
    """Stay suspended, or resume on activity (a failed query on the suspended cluster counts)."""
    assert st.suspended_at is not None
    activity = ctx.cluster.last_activity
    if params.resume and not ctx.logging_visible:
        # Activity is invisible: a suspended cluster could never wake up, so wake it now.
        out, why = resume_set(ctx=ctx, st=st, desired=desired)
        new = replace(st, last_resume_at=now)
        return StrategyResult(
            desired=out,
            state=new.dump(),
            reasons=(f"statement logging cannot see activity: {why}",),
        )
    # A row flushed after the suspend may be of a query just before it (invisible then): what
    # began within the flush lag before suspended_at is activity the suspend did not see.
    seen_until = st.suspended_at - timedelta(seconds=ctx.log_flush_lag_s)
    if params.resume and activity is not None and activity > seen_until:
        out, why = resume_set(ctx=ctx, st=st, desired=desired)
        new = replace(st, last_resume_at=now)
        return StrategyResult(
            desired=out,
            state=new.dump(),
            reasons=(f"activity at {iso(activity)} after suspend: {why}",),
        )
    reason = (
        "suspended; resume is off"
        if not params.resume
        else f"suspended since {iso(st.suspended_at)}; no activity since"
    )
    out = desired.emptied(strategy=NAME, reason=reason, code="suspended")
    return StrategyResult(desired=out, state=st.dump(), reasons=(reason,))


def activity_lookback(params: IdleSuspendParams) -> float:
    """Idleness is judged over idle_after_s: the signals must see activity that far back."""
    return params.idle_after_s


SPEC: StrategySpec[IdleSuspendParams] = StrategySpec(
    name=NAME,
    priority=3,
    keys={
        "idle_after_s": KeySpec("duration", required=True),
        "resume": KeySpec("flag", default=True),
        "allow_with_maintained_objects": KeySpec("flag", default=False),
    },
    build=build,
    run=run,
    suspends_on_purpose=True,
    activity_lookback=activity_lookback,
)
