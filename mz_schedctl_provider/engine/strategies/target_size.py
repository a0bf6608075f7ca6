"""target_size (priority 0): keep one replica of the target size, resize without downtime."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import KeySpec, Values
from ..desired import Desired
from ..facts import ClusterContext
from ..managed import want_size
from ..models import JsonObject
from .base import NameClaim, SizeClaim, StrategyResult, StrategySpec
from .converge import converge_to_one

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


def run(
    *,
    params: TargetSizeParams,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    size = params.target_size
    if ctx.cluster.managed:
        # The cluster's SIZE, by a graceful ALTER CLUSTER; its replication factor stays.
        out, what = want_size(
            desired=desired, size=size, strategy=NAME, reason=f"target size {size}"
        )
        return StrategyResult(desired=out, state={}, reasons=(what,))
    done = converge_to_one(
        ctx=ctx,
        desired=desired,
        size=size,
        strategy=NAME,
        preferred=params.replica_name,
        prefer_name=True,
        prefix="",
        kept_reason=f"replica of target size {size}",
        created_reason=f"no replica of target size {size}",
        dropped_reason=f"not created: target size {size} wins",
        retake_reason=None,
    )
    reasons: list[str] = []
    if done.created:
        why = done.why_name
        reasons.append(f"create {done.target!r} ({size})" + (f": {why}" if why else ""))
    others = [*done.retired, *done.waiting]
    if others:
        verb = "retire" if done.ready else "keep until the target is hydrated:"
        reasons.append(f"{verb} {', '.join(others)}")
    if not reasons:
        reasons.append(f"{done.target!r} is the {size} replica; nothing to change")
    return StrategyResult(desired=done.desired, state={}, reasons=tuple(reasons))


def size_claims(params: TargetSizeParams) -> tuple[SizeClaim, ...]:
    """The target replica is kept for good: a transient replica of its size would be taken
    for it."""
    return (SizeClaim(key="target_size", size=params.target_size, steady=True),)


def name_claims(params: TargetSizeParams) -> tuple[NameClaim, ...]:
    """The target replica's name (configured or r_<size>) is kept for good."""
    return (
        NameClaim(
            key="replica_name", name=params.replica_name, steady=True, what="the target replica"
        ),
    )


SPEC: StrategySpec[TargetSizeParams] = StrategySpec(
    name=NAME,
    priority=0,
    keys={"target_size": KeySpec("size", required=True), "replica_name": KeySpec("replica_name")},
    build=build,
    run=run,
    size_claims=size_claims,
    name_claims=name_claims,
)
