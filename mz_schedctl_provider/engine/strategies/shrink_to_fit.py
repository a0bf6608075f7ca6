"""shrink_to_fit (priority 1, experimental): find the smallest size that hydrates and holds.

Opt-in: the planner runs it only when called with ``experimental=True``; otherwise a
shrink_to_fit row is reported (finding "experimental_off") and ignored.

Start replicas from the smallest allowed size up to max_replica_size (the max size always
among them, so something fits), drop crash/OOM-looping ones (their size is remembered as
failed for crash_window_s), then keep the smallest healthy hydrated one. Bounded by
max_replicas and max_credits_per_hour. Crash counts come from Signals.crash_window_s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..config import KeySpec, Values
from ..desired import Desired
from ..facts import ClusterContext, free_name, iso, parse_ts, seconds_between
from ..models import DesiredReplica, JsonObject, JsonValue, Size
from .base import StrategyResult, StrategySpec

NAME = "shrink_to_fit"


@dataclass(frozen=True)
class ShrinkParams:
    """Validated shrink_to_fit config."""

    max_replica_size: str
    min_oom_count: int
    min_crash_count: int
    crash_window_s: float
    max_replicas: int
    max_credits_per_hour: float | None


def build(values: Values) -> ShrinkParams:
    return ShrinkParams(
        max_replica_size=values.required_text("max_replica_size"),
        min_oom_count=int(values.required_number("min_oom_count")),
        min_crash_count=int(values.required_number("min_crash_count")),
        crash_window_s=values.required_number("crash_window_s"),
        max_replicas=int(values.required_number("max_replicas")),
        max_credits_per_hour=values.number("max_credits_per_hour"),
    )


def candidate_sizes(*, ctx: ClusterContext, params: ShrinkParams) -> list[Size]:
    """Allowed sizes no bigger than the max, cheapest first."""
    top = ctx.sizes[params.max_replica_size]
    fits = [s for s in ctx.sizes.values() if s.allowed and s.memory_bytes <= top.memory_bytes]
    return sorted(fits, key=lambda s: (s.credits_per_hour, s.memory_bytes, s.name))


def looping(*, ctx: ClusterContext, params: ShrinkParams, name: str) -> str | None:
    """Why this replica counts as crash/OOM-looping, or None."""
    replica = ctx.cluster.replica(name)
    if replica is None:
        return None
    if replica.oom_count >= params.min_oom_count:
        return f"{replica.oom_count} OOM kill(s)"
    if replica.crash_count >= params.min_crash_count:
        return f"{replica.crash_count} crash(es)"
    return None


def run(
    *,
    params: ShrinkParams,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    failed_raw = state.get("failed_sizes")
    failed: dict[str, datetime] = {}
    if isinstance(failed_raw, dict):
        for size, at_raw in failed_raw.items():
            at = parse_ts(at_raw)
            if at is not None and seconds_between(at, now) < params.crash_window_s:
                failed[size] = at
    out = desired
    reasons: list[str] = []
    for r in desired.replicas:
        why = looping(ctx=ctx, params=params, name=r.name)
        if why is not None:
            out = out.remove(
                r.name, strategy=NAME, reason=f"crash-looping: {why}", code="crash_looping"
            )
            failed[r.size] = now
            reasons.append(f"drop {r.name!r} ({r.size}): {why}")
    healthy = [r for r in out.replicas if ctx.hydrated(r.name)]
    if healthy:
        best = min(healthy, key=lambda r: (ctx.credits(r.size), r.name))
        for r in out.replicas:
            if r.name != best.name and ctx.credits(r.size) >= ctx.credits(best.size):
                out = out.remove(
                    r.name,
                    strategy=NAME,
                    reason=f"{best.name!r} ({best.size}) is smaller and hydrated",
                    code="smaller_hydrated",
                )
        reasons.append(f"keep smallest healthy hydrated {best.name!r} ({best.size})")
    else:
        out, started = start_candidates(ctx=ctx, params=params, desired=out, failed=failed)
        reasons.append(f"no healthy hydrated replica: trying {started or 'nothing new'}")
    failed_json: dict[str, JsonValue] = {size: iso(at) for size, at in sorted(failed.items())}
    new_state: JsonObject = {"failed_sizes": failed_json} if failed_json else {}
    return StrategyResult(desired=out, state=new_state, reasons=tuple(reasons))


def start_candidates(
    *, ctx: ClusterContext, params: ShrinkParams, desired: Desired, failed: dict[str, datetime]
) -> tuple[Desired, str]:
    """Add replicas of untried sizes (max size first, then cheapest) within the bounds."""
    sizes = [s for s in candidate_sizes(ctx=ctx, params=params) if s.name not in failed]
    have = {r.size for r in desired.replicas}
    order = [s for s in sizes if s.name == params.max_replica_size] + [
        s for s in sizes if s.name != params.max_replica_size
    ]
    out = desired
    budget = params.max_credits_per_hour
    spent = sum(ctx.credits(r.size) for r in desired.replicas)
    added: list[str] = []
    for size in order:
        if len(out.replicas) >= params.max_replicas:
            break
        if size.name in have:
            continue
        if budget is not None and spent + size.credits_per_hour > budget:
            continue
        name, why = free_name(preferred=f"r_{size.name}", taken=ctx.taken_names() | out.names())
        out = out.add(
            DesiredReplica(
                name=name,
                size=size.name,
                strategy=NAME,
                reason="try a size that may fit" + (f"; {why}" if why else ""),
                name_taken=bool(why),
                until_replaced=True,
                code="try_size",
            )
        )
        spent += size.credits_per_hour
        added.append(size.name)
    return out, ", ".join(added)


NOT_APPLICABLE_TO_MANAGED = (
    "shrink_to_fit is not applicable to a managed cluster: it tries several replica sizes "
    "side by side, and a managed cluster's replicas all have one size; no action"
)


SPEC: StrategySpec[ShrinkParams] = StrategySpec(
    name=NAME,
    priority=1,
    keys={
        "max_replica_size": KeySpec("size", required=True),
        "min_oom_count": KeySpec("count", default=1),
        "min_crash_count": KeySpec("count", default=3),
        "crash_window_s": KeySpec("duration", default=1800),
        "max_replicas": KeySpec("count", default=4),
        "max_credits_per_hour": KeySpec("credits"),
    },
    build=build,
    run=run,
    not_applicable_to_managed=NOT_APPLICABLE_TO_MANAGED,
    experimental=True,
)
