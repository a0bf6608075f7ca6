"""Managed clusters: the strategies' wish becomes one ALTER CLUSTER.

Materialize runs a managed cluster's replicas itself (``r1``..``rN``, all of the cluster's
SIZE, N = REPLICATION FACTOR) and refuses replica DDL on it. The strategies run on a managed
cluster as on any other, on the replica-set model; this module turns their final wish into at
most one ``alter_cluster`` action per cycle:

- nothing wanted, on purpose (idle_suspend, a schedule's off time):
  ``SET (REPLICATION FACTOR = 0)``; the suspending strategy remembers the factor in its state;
- factor 0 and replicas wanted (a resume): ``SET (REPLICATION FACTOR = n)``, n the remembered
  factor, with ``SIZE`` when another size is wanted (nothing serves yet, so nothing to wait for);
- another size wanted while it runs (target_size, a schedule window's size):
  ``SET (SIZE = ...) WITH (WAIT UNTIL READY (TIMEOUT = ..., ON TIMEOUT = 'ROLLBACK'))``,
  Materialize's graceful reconfiguration (v26.35+: in the background, progress in
  mz_cluster_reconfigurations): the old replicas keep serving until the new ones are hydrated,
  and it is rolled back if they are not by the timeout. While one is in progress nothing more
  is planned for the cluster; one that timed out is a finding and a failure backoff (each
  counted once), never a loop;
- otherwise the replication factor is the user's: never changed while the cluster runs.

Not applicable to managed clusters: ``burst`` (its replicas all have the cluster's size, and a
graceful reconfiguration already keeps the old replicas serving until the new ones are
hydrated; Materialize's own AUTO SCALING STRATEGY is the in-database burst) and
``shrink_to_fit`` (it tries several sizes side by side). Their rows get a warning, no action.

Clusters hosting sources or sinks take a single replica: a graceful resize needs the new
replicas next to the old ones and Materialize refuses it (``cannot create more than one
replica of a cluster containing sources or sinks``), so the plan says so; with
``allow_downtime`` a plain ``SET (SIZE = ...)`` replaces the replica with downtime. A resume
there is capped at factor 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from .desired import Desired
from .facts import ClusterContext, free_name, iso
from .models import (
    Action,
    ActionStatus,
    Alter,
    Cluster,
    ClusterState,
    DesiredReplica,
    FailedResize,
    Finding,
)
from .reasons import ReasonCode
from .safety import Limits, backoff_after

DEFAULT_RESIZE_TIMEOUT_S = 3600.0


def not_applicable(*, strategy: str, why: str | None) -> Finding | None:
    """A warning for a strategy row that cannot act on a managed cluster (the strategy
    declares why: StrategySpec.not_applicable_to_managed), or None."""
    if why is None:
        return None
    return Finding(
        kind="not_applicable",
        severity="warning",
        strategy=strategy,
        message=why,
        code="not_applicable",
    )


def busy_reason(cluster: Cluster) -> str | None:
    """Why nothing may be planned now: a graceful reconfiguration is in progress."""
    rc = cluster.reconfiguration
    if rc is None or not rc.in_progress:
        return None
    target = rc.target_size or "another configuration"
    deadline = (
        f" (deadline {iso(rc.deadline)}, then {rc.on_timeout or 'its ON TIMEOUT'})"
        if rc.deadline is not None
        else ""
    )
    return (
        f"graceful reconfiguration to {target} in progress{deadline}: nothing more is planned "
        "for this cluster until Materialize finishes it"
    )


# --- what strategies call ------------------------------------------------------------------


def want_size(*, desired: Desired, size: str, strategy: str, reason: str) -> tuple[Desired, str]:
    """A strategy wants the managed cluster to run at ``size``: (desired, what it means).

    The replicas of other sizes stay wanted until the resize is done (``until_replaced``):
    Materialize retires them itself once the new ones are hydrated.
    """
    out = desired
    mine = [r for r in desired.replicas if r.size == size]
    others = [r for r in desired.replicas if r.size != size]
    for r in mine:
        out = out.keep(
            r.name, strategy=strategy, reason=reason, until_replaced=False, code="wanted_size"
        )
    for r in others:
        out = out.keep(
            r.name,
            strategy=strategy,
            reason=f"kept until the cluster runs at {size}",
            until_replaced=True,
            code="until_replaced",
        )
    if mine and not others:
        return out, f"the cluster's SIZE is {size}; nothing to change"
    if not mine:
        name, _ = free_name(preferred=f"r_{size}", taken=desired.names())
        out = out.add(
            DesiredReplica(
                name=name, size=size, strategy=strategy, reason=reason, code="wanted_size"
            )
        )
    if not others:
        return out, f"no replicas: SIZE {size} when it runs"
    old = ", ".join(sorted({str(r.size) for r in others}))
    return out, f"resize {old} -> {size} by ALTER CLUSTER (graceful reconfiguration)"


# --- from the desired set to ALTER CLUSTER -------------------------------------------------


def stable(desired: Desired) -> list[DesiredReplica]:
    """The replicas meant to stay (not kept only until a replacement is ready)."""
    return [r for r in desired.replicas if not r.until_replaced] or list(desired.replicas)


def wanted(desired: Desired, *, current: str | None) -> DesiredReplica | None:
    """The replica wish that sets the size: another size than the current one wins (the
    latest strategy's if several), else any; None when nothing is wanted."""
    keep = stable(desired)
    if not keep:
        return None
    other = [r for r in keep if r.size != current]
    return other[-1] if other else keep[-1]


def plan_alter(
    *,
    ctx: ClusterContext,
    desired: Desired,
    allow_downtime: bool,
    timeout_s: Callable[[str], float],
) -> tuple[list[Action], list[Finding]]:
    """(actions, findings): at most one ALTER CLUSTER carrying out the desired set."""
    c = ctx.cluster
    factor = c.current_replication_factor
    if not desired.replicas:
        if not desired.empty_on_purpose or factor == 0:
            return [], []
        removal = desired.removed[0] if desired.removed else None
        strategy = removal.strategy if removal else "safety"
        why = removal.reason if removal else "suspend"
        note = f"suspend: REPLICATION FACTOR {factor} -> 0 (the factor is remembered)"
        codes: tuple[ReasonCode, ...] = (
            (removal.code, "managed_suspend") if removal else ("managed_suspend",)
        )
        return [_alter(ctx, Alter(replication_factor=0), strategy, (why, note), codes)], []
    want = wanted(desired, current=c.size)
    assert want is not None
    if factor == 0:
        return _resume(ctx=ctx, desired=desired, want=want)
    if want.size == c.size:
        return [], []
    return _resize(ctx=ctx, want=want, allow_downtime=allow_downtime, timeout_s=timeout_s)


def _resume(
    *, ctx: ClusterContext, desired: Desired, want: DesiredReplica
) -> tuple[list[Action], list[Finding]]:
    c = ctx.cluster
    n = desired.replication_factor or len(stable(desired)) or 1
    reasons = [want.reason, f"resume: REPLICATION FACTOR 0 -> {n}"]
    codes: list[ReasonCode] = [want.code, "managed_resume"]
    if n > 1 and c.hosts_sources_or_sinks:
        codes.append("resume_capped")
        reasons.append(
            f"capped at 1 (remembered {n}): the cluster hosts sources or sinks, which take "
            "a single replica"
        )
        n = 1
        reasons[1] = "resume: REPLICATION FACTOR 0 -> 1"
    size = want.size if want.size != c.size else None
    if size is not None:
        reasons.append(f"at SIZE {size} (was {c.size}; nothing serves, so no wait)")
    action = _alter(
        ctx, Alter(size=size, replication_factor=n), want.strategy, tuple(reasons), tuple(codes)
    )
    return [action], []


def _resize(
    *,
    ctx: ClusterContext,
    want: DesiredReplica,
    allow_downtime: bool,
    timeout_s: Callable[[str], float],
) -> tuple[list[Action], list[Finding]]:
    c = ctx.cluster
    change = f"SIZE {c.size} -> {want.size}"
    if not c.hosts_sources_or_sinks:
        timeout = timeout_s(want.strategy)
        reason = (
            f"{change}: graceful reconfiguration (the old replicas serve until the new ones "
            f"are hydrated; rolled back after {int(timeout)}s)"
        )
        alter = Alter(size=want.size, wait=True, timeout_s=timeout)
        codes: tuple[ReasonCode, ...] = (want.code, "graceful_resize")
        return [_alter(ctx, alter, want.strategy, (want.reason, reason), codes)], []
    what = f"hosts {c.sources} source(s) and {c.sinks} sink(s)"
    if allow_downtime:
        reason = (
            f"{change} with downtime (allow_downtime): the cluster {what}, so Materialize "
            "refuses the extra replicas of a graceful reconfiguration; its replicas are replaced"
        )
        finding = Finding(
            kind="downtime", severity="warning", message=f"resize with {reason}", code="downtime"
        )
        action = _alter(
            ctx,
            Alter(size=want.size),
            want.strategy,
            (want.reason, reason),
            (want.code, "downtime"),
        )
        return [action], [finding]
    reason = (
        f"impossible without downtime: the cluster {what}, and Materialize refuses the extra "
        "replicas a graceful reconfiguration needs; set allow_downtime: true to resize with "
        "downtime"
    )
    action = _alter(
        ctx,
        Alter(size=want.size, wait=True, timeout_s=timeout_s(want.strategy)),
        want.strategy,
        (want.reason, reason),
        (want.code, "single_replica"),
        status="skipped",
    )
    finding = Finding(kind="impossible", severity="warning", message=reason, code="single_replica")
    return [action], [finding]


def _alter(
    ctx: ClusterContext,
    alter: Alter,
    strategy: str,
    reasons: tuple[str, ...],
    codes: tuple[ReasonCode, ...],
    *,
    status: ActionStatus = "planned",
) -> Action:
    # Ids are given by the planner once the cluster's actions are final.
    return Action(
        id="",
        cluster_id=ctx.cluster.id,
        cluster_name=ctx.cluster.name,
        kind="alter_cluster",
        replica_name="",
        size=alter.size,
        strategy=strategy,
        reasons=reasons,
        status=status,
        alter=alter,
        codes=codes,
    )


def credits_after(
    *, alter: Alter, cluster: Cluster, credits: Callable[[str | None], float]
) -> float:
    """Credits per hour of the cluster once the change is done."""
    size = alter.size if alter.size is not None else cluster.size
    factor = (
        alter.replication_factor
        if alter.replication_factor is not None
        else cluster.current_replication_factor
    )
    return credits(size) * factor


# --- graceful reconfigurations that did not happen ------------------------------------------


def account_failed_resize(
    *,
    cluster: Cluster,
    state: ClusterState,
    wanted_size: str | None,
    now: datetime,
    limits: Limits,
) -> tuple[ClusterState, Finding | None]:
    """A graceful resize to the size still wanted timed out: a finding, and a backoff that
    grows with each one in a row (each reconfiguration counted once), so a size that cannot
    hydrate within the timeout is retried ever more rarely instead of every cycle."""
    record = state.failed_resize
    if record is not None and (
        cluster.size == record.size or wanted_size not in (None, cluster.size, record.size)
    ):
        # It went through after all, or another size is wanted now.
        state, record = replace(state, failed_resize=None), None
    rc = cluster.reconfiguration
    if rc is None or not rc.failed or rc.target_size is None or rc.target_size == cluster.size:
        return state, None
    if wanted_size != rc.target_size:
        return state, None  # nobody here wants that size (again): not ours to retry
    what = (
        f"graceful resize to {rc.target_size} {rc.status.replace('-', ' ')}"
        + (f" at {iso(rc.deadline)}" if rc.deadline is not None else "")
        + (f" (ON TIMEOUT {rc.on_timeout})" if rc.on_timeout else "")
        + ": the new replicas were not hydrated in time and the cluster stays at "
        + f"{cluster.size}"
    )
    if record is not None and record.key == rc.key:
        retry = state.backoff.retry_at if state.backoff is not None else None
        when = f"; retry at {iso(retry)}" if retry is not None and retry > now else ""
        message = f"{what} ({record.failures} in a row{when})"
        return state, Finding(
            kind="resize_timed_out", severity="warning", message=message, code="resize_timed_out"
        )
    failures = record.failures + 1 if record is not None and record.size == rc.target_size else 1
    backoff = backoff_after(failures=failures, now=now, error=what, limits=limits)
    state = replace(
        state,
        backoff=backoff,
        failed_resize=FailedResize(key=rc.key, size=rc.target_size, failures=failures),
    )
    message = (
        f"{what}; retried after a backoff ({failures} in a row, next attempt at "
        f"{iso(backoff.retry_at)}): check why {rc.target_size} does not hydrate (OOM?) or "
        "raise resize_timeout_s"
    )
    return state, Finding(
        kind="resize_timed_out",
        severity="error",
        message=message,
        details={"failures": failures, "target_size": rc.target_size, "status": rc.status},
        code="resize_timed_out",
    )
