"""Converge to one replica of size S, without downtime: shared by target_size and schedule.

Keep (or create) one replica of the size; the other replicas stay, marked ``until_replaced``,
until it is hydrated, then go. Wishes of other sizes that do not exist yet are dropped (there
is nothing to bridge with). The caller gives the texts; the arithmetic is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..desired import Desired
from ..facts import ClusterContext, free_name
from ..models import DesiredReplica
from ..reasons import ReasonCode


@dataclass(frozen=True)
class Converged:
    """The desired set after converging, and what happened, for the caller's summary."""

    desired: Desired
    target: str
    # The target replica is created now; why_name: said when its preferred name was taken.
    created: bool
    why_name: str
    ready: bool
    # Existing replicas of other sizes (repr'd names): retired (the target is hydrated), or
    # kept until it is.
    retired: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()


def converge_to_one(
    *,
    ctx: ClusterContext,
    desired: Desired,
    size: str,
    strategy: str,
    preferred: str,
    prefer_name: bool,
    prefix: str,
    kept_reason: str,
    created_reason: str,
    dropped_reason: str,
    retake_reason: str | None,
) -> Converged:
    """One replica of ``size``; the others go once it is hydrated (zero downtime).

    ``preferred``: the name for a new replica (and, with ``prefer_name``, the one kept among
    equally ready ones). ``prefix`` starts the reasons this function words itself.
    ``retake_reason``: take back an owned replica of ``size`` an earlier strategy retired,
    rather than create another (no churn between strategies wanting the same size).
    """
    out = desired
    if retake_reason is not None:
        for r in ctx.owned_replicas():
            if r.size == size and out.get(r.name) is None:
                out = out.add(
                    DesiredReplica(
                        name=r.name,
                        size=size,
                        strategy=strategy,
                        reason=retake_reason,
                        code="wanted_size",
                    )
                )
    # A replica of the size counts whatever its name (predecessor r_<size> included).
    candidates = [r for r in out.replicas if r.size == size]
    created, why_name = False, ""
    if candidates:

        def rank(r: DesiredReplica) -> tuple[bool, bool, bool, bool, str]:
            # Hydrated first, then meant to stay, then the configured name, then existing.
            return (
                not ctx.hydrated(r.name),
                r.until_replaced,
                prefer_name and r.name != preferred,
                not ctx.exists(r.name),
                r.name,
            )

        target = min(candidates, key=rank).name
        out = out.keep(
            target,
            strategy=strategy,
            reason=kept_reason,
            until_replaced=False,
            code="wanted_size",
        )
        for extra in candidates:
            if extra.name != target:
                out = out.remove(
                    extra.name,
                    strategy=strategy,
                    reason=f"{prefix}one {size} replica is enough ({target!r} kept)",
                    code="duplicate_size",
                )
        ready = ctx.hydrated(target)
    else:
        target, why_name = free_name(preferred=preferred, taken=ctx.taken_names() | out.names())
        reason = created_reason + (f"; {why_name}" if why_name else "")
        out = out.add(
            DesiredReplica(
                name=target,
                size=size,
                strategy=strategy,
                reason=reason,
                code="wanted_size",
                name_taken=bool(why_name),
            )
        )
        created, ready = True, False
    retired: list[str] = []
    waiting: list[str] = []
    for other in [r for r in out.replicas if r.size != size]:
        if ready or not ctx.exists(other.name):
            # A wish of another size that does not exist yet bridges nothing: dropped.
            why = (
                f"{prefix}retire {other.size}: {target!r} ({size}) is hydrated"
                if ready
                else dropped_reason
            )
            code: ReasonCode = "replaced" if ready else "not_created"
            out = out.remove(other.name, strategy=strategy, reason=why, code=code)
            if ctx.exists(other.name):
                retired.append(repr(other.name))
        else:
            out = out.keep(
                other.name,
                strategy=strategy,
                reason=f"{prefix}kept until {target!r} ({size}) is hydrated",
                until_replaced=True,
                code="until_replaced",
            )
            waiting.append(repr(other.name))
    return Converged(
        desired=out,
        target=target,
        created=created,
        why_name=why_name,
        ready=ready,
        retired=tuple(retired),
        waiting=tuple(waiting),
    )
