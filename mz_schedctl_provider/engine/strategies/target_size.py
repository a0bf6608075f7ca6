"""target_size (priority 0): keep one replica of the target size, resize without downtime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import KeySpec, Values
from ..desired import Desired
from ..facts import ClusterContext, free_name
from ..managed import want_size
from ..models import DesiredReplica, JsonObject
from .base import StrategyResult, StrategySpec

NAME = "target_size"


@dataclass(frozen=True)
class TargetSizeParams:
    """Validated target_size config."""

    target_size: str
    replica_name: str


def build(values: Values) -> TargetSizeParams:
    size = values.required_text("target_size")
    return TargetSizeParams(
        target_size=size, replica_name=values.text("replica_name") or f"r_{size}"
    )


def pick_target(
    *, ctx: ClusterContext, params: TargetSizeParams, candidates: list[DesiredReplica]
) -> DesiredReplica:
    """The target-size replica to keep: hydrated first, then the configured name, then existing."""

    def rank(r: DesiredReplica) -> tuple[bool, bool, bool, str]:
        return (
            not ctx.hydrated(r.name),
            r.name != params.replica_name,
            not ctx.exists(r.name),
            r.name,
        )

    return min(candidates, key=rank)


def run(
    *,
    params: object,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    assert isinstance(params, TargetSizeParams)
    size = params.target_size
    if ctx.cluster.managed:
        # The cluster's SIZE, by a graceful ALTER CLUSTER; its replication factor stays.
        out, what = want_size(
            desired=desired, size=size, strategy=NAME, reason=f"target size {size}"
        )
        return StrategyResult(desired=out, state={}, reasons=(what,))
    # A replica of the target size counts whatever its name (predecessor r_<size> included).
    candidates = [r for r in desired.replicas if r.size == size]
    others = [r for r in desired.replicas if r.size != size]
    out = desired
    reasons: list[str] = []
    if candidates:
        target = pick_target(ctx=ctx, params=params, candidates=candidates)
        out = out.keep(
            target.name,
            strategy=NAME,
            reason=f"replica of target size {size}",
            until_replaced=False,
        )
        for extra in candidates:
            if extra.name != target.name:
                out = out.remove(
                    extra.name,
                    strategy=NAME,
                    reason=f"one {size} replica is enough ({target.name!r} kept)",
                )
        ready = ctx.hydrated(target.name)
    else:
        name, why = free_name(
            preferred=params.replica_name, taken=ctx.taken_names() | desired.names()
        )
        target = DesiredReplica(
            name=name,
            size=size,
            strategy=NAME,
            reason=f"no replica of target size {size}" + (f"; {why}" if why else ""),
        )
        out = out.add(target)
        reasons.append(f"create {name!r} ({size})" + (f": {why}" if why else ""))
        ready = False
    for other in others:
        if ready:
            out = out.remove(
                other.name,
                strategy=NAME,
                reason=f"retire {other.size}: {target.name!r} ({size}) is hydrated",
            )
        else:
            out = out.keep(
                other.name,
                strategy=NAME,
                reason=f"kept until {target.name!r} ({size}) is hydrated",
                until_replaced=True,
            )
    if others:
        verb = "retire" if ready else "keep until the target is hydrated:"
        reasons.append(f"{verb} {', '.join(repr(o.name) for o in others)}")
    if not reasons:
        reasons.append(f"{target.name!r} is the {size} replica; nothing to change")
    return StrategyResult(desired=out, state={}, reasons=tuple(reasons))


SPEC = StrategySpec(
    name=NAME,
    priority=0,
    keys={"target_size": KeySpec("size", required=True), "replica_name": KeySpec("replica_name")},
    build=build,
    run=run,
)
