"""burst (priority 2): a big replica while nothing else desired is hydrated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import KeySpec, Values
from ..desired import Desired
from ..facts import (
    PREDECESSOR_BURST_SUFFIX,
    ClusterContext,
    free_name,
    iso,
    parse_ts,
    seconds_between,
)
from ..models import DesiredReplica, Finding, JsonObject
from .base import NameClaim, SizeClaim, StrategyResult, StrategySpec

NAME = "burst"


@dataclass(frozen=True)
class BurstParams:
    """Validated burst config."""

    burst_replica_size: str
    replica_name: str
    max_burst_s: float


def build(values: Values) -> BurstParams:
    return BurstParams(
        burst_replica_size=values.required_text("burst_replica_size"),
        replica_name=values.text("replica_name") or "burst",
        max_burst_s=values.required_number("max_burst_s"),
    )


def burst_names(*, ctx: ClusterContext, params: BurstParams, state: JsonObject) -> frozenset[str]:
    """Names recognised as a burst: configured, the predecessor's, and the one we created."""
    names = {params.replica_name, f"{ctx.cluster.name}{PREDECESSOR_BURST_SUFFIX}"}
    created = state.get("replica_name")
    if isinstance(created, str):
        names.add(created)
    return frozenset(names)


def no_burst_reason(*, ctx: ClusterContext, base: list[DesiredReplica]) -> str | None:
    """Why no burst is wanted now, or None when one is."""
    cluster = ctx.cluster
    if cluster.hosts_sources_or_sinks:
        return "impossible: the cluster hosts sources or sinks (no second replica allowed)"
    if not cluster.replicas:
        return "the cluster is suspended (no replicas)"
    if not base:
        return "no base replica is desired"
    hydrated = [r.name for r in base if ctx.hydrated(r.name)]
    if hydrated:
        return f"{hydrated[0]!r} is hydrated"
    return None


def stuck_finding(
    *, ctx: ClusterContext, base: list[DesiredReplica], waited_s: float, params: BurstParams
) -> Finding:
    """The base did not hydrate within max_burst_s: a human must resize (OOM count shown)."""
    replicas = [r for r in ctx.cluster.replicas if r.name in {b.name for b in base}]
    ooms = sum(r.oom_count for r in replicas)
    crashes = sum(r.crash_count for r in replicas)
    # crash_count counts every offline event, OOM kills included (shrink_to_fit's threshold
    # wants them all): the message names the OOMs once and the rest as other crashes.
    others = max(0, crashes - ooms)
    names = ", ".join(repr(b.name) for b in base)
    return Finding(
        kind="stuck",
        severity="error",
        strategy=NAME,
        message=(
            f"stuck: base replica(s) {names} not hydrated after {int(waited_s)}s "
            f"(max_burst_s {int(params.max_burst_s)}), {ooms} OOM kill(s) and {others} other "
            "crash(es) in the window; the burst replica is kept (it may be the only one serving); "
            "resize the cluster by hand"
        ),
        details={"oom_count": ooms, "crash_count": crashes, "waited_s": int(waited_s)},
        code="stuck",
    )


def run(
    *,
    params: BurstParams,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    names = burst_names(ctx=ctx, params=params, state=state)
    bursts = [r for r in desired.replicas if r.name in names]
    base = [r for r in desired.replicas if r.name not in names]
    why_not = no_burst_reason(ctx=ctx, base=base)
    out = desired
    if why_not is not None:
        for b in bursts:
            out = out.remove(
                b.name,
                strategy=NAME,
                reason=f"burst no longer needed: {why_not}",
                code="burst_done",
            )
        verb = "drop burst" if bursts else "no burst"
        # Remember a burst we named ourselves until it is really gone (a drop may be deferred).
        created = state.get("replica_name")
        kept: JsonObject = (
            {"replica_name": created} if isinstance(created, str) and ctx.exists(created) else {}
        )
        return StrategyResult(desired=out, state=kept, reasons=(f"{verb}: {why_not}",))

    started = parse_ts(state.get("started_at")) or now
    if bursts:
        keep = sorted(bursts, key=lambda r: (not ctx.exists(r.name), r.name))[0]
        for extra in bursts:
            if extra.name != keep.name:
                out = out.remove(
                    extra.name,
                    strategy=NAME,
                    reason="one burst replica is enough",
                    code="burst_duplicate",
                )
        name = keep.name
        out = out.keep(
            name,
            strategy=NAME,
            reason="burst while the base hydrates",
            until_replaced=True,
            code="burst",
        )
        reason = f"keep burst {name!r}: no base replica hydrated yet"
    else:
        name, why = free_name(
            preferred=params.replica_name, taken=ctx.taken_names() | desired.names()
        )
        reason = f"add burst {name!r} ({params.burst_replica_size}): no base replica hydrated yet"
        out = out.add(
            DesiredReplica(
                name=name,
                size=params.burst_replica_size,
                strategy=NAME,
                reason="burst while the base hydrates" + (f"; {why}" if why else ""),
                name_taken=bool(why),
                until_replaced=True,
                code="burst",
            )
        )
    waited = seconds_between(started, now)
    findings: tuple[Finding, ...] = ()
    if waited > params.max_burst_s:
        findings = (stuck_finding(ctx=ctx, base=base, waited_s=waited, params=params),)
    new_state: JsonObject = {"started_at": iso(started), "replica_name": name}
    return StrategyResult(desired=out, state=new_state, reasons=(reason,), findings=findings)


def size_claims(params: BurstParams) -> tuple[SizeClaim, ...]:
    """The burst replica is transient: one of a size another row keeps for good would be
    taken for that row's replica and kept forever."""
    return (
        SizeClaim(
            key="burst_replica_size", size=params.burst_replica_size, steady=False, what="a burst"
        ),
    )


def name_claims(params: BurstParams) -> tuple[NameClaim, ...]:
    """The burst's name (configured or "burst") is transient: it is dropped once the base is
    hydrated, so another row's kept replica must not carry it."""
    return (NameClaim(key="replica_name", name=params.replica_name, steady=False, what="a burst"),)


NOT_APPLICABLE_TO_MANAGED = (
    "burst is not applicable to a managed cluster: its replicas all have the cluster's "
    "size, and a resize by ALTER CLUSTER is a graceful reconfiguration that already keeps "
    "the old replicas serving until the new ones are hydrated (Materialize's AUTO SCALING "
    "STRATEGY is the in-database burst); no action"
)


SPEC: StrategySpec[BurstParams] = StrategySpec(
    name=NAME,
    priority=2,
    keys={
        "burst_replica_size": KeySpec("size", required=True),
        "replica_name": KeySpec("replica_name"),
        "max_burst_s": KeySpec("duration", default=3600),
    },
    build=build,
    run=run,
    not_applicable_to_managed=NOT_APPLICABLE_TO_MANAGED,
    size_claims=size_claims,
    name_claims=name_claims,
)
