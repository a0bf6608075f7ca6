"""Unmanaged resizes that do not finish: the new replica never hydrates.

converge_to_one keeps the replicas of other sizes (``until_replaced``) until the new one is
hydrated, which is right (no downtime) but, alone, silent forever: both replicas are paid for and
nothing says so. Past ``resize_timeout_s`` from the new replica's creation (a catalog fact:
mz_cluster_replica_history, so it survives a lost state row), the cluster is reported stuck by an
error finding. Nothing is dropped: the old replicas keep serving, and the new one may still
hydrate (then the resize completes on its own and the finding goes away).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from .desired import Desired
from .facts import ClusterContext, iso, replica_hydrated, seconds_between
from .models import Finding


def stuck_resizes(
    *,
    ctx: ClusterContext,
    desired: Desired,
    now: datetime,
    timeout_s: Callable[[str], float],
) -> list[Finding]:
    """One error finding per wanted replica of a resize not hydrated within the timeout of the
    strategy that wants it (``timeout_s(strategy)``); none while nothing waits for it."""
    waiting = [r for r in desired.replicas if r.code == "until_replaced" and ctx.exists(r.name)]
    if not waiting:
        return []  # no resize in progress: a lone unhydrated replica is burst's or nobody's
    serving = ", ".join(f"{r.name!r} ({r.size})" for r in waiting)
    out: list[Finding] = []
    for want in desired.replicas:
        replica = ctx.cluster.replica(want.name)
        if want.code != "wanted_size" or replica is None or replica.created_at is None:
            continue
        hydrated, why = replica_hydrated(cluster=ctx.cluster, replica=replica)
        limit = timeout_s(want.strategy)
        age = seconds_between(replica.created_at, now)
        if hydrated or age <= limit:
            continue
        out.append(
            Finding(
                kind="resize_stuck",
                severity="error",
                strategy=want.strategy,
                code="resize_stuck",
                message=(
                    f"resize to {want.size} stuck: {want.name!r} ({want.size}), created at "
                    f"{iso(replica.created_at)}, is not hydrated after {int(age)}s "
                    f"(resize_timeout_s {int(limit)}; {why}); both are kept, {serving} still "
                    f"serving, nothing is dropped. Check why {want.size} does not hydrate "
                    "(OOM or crash loop: mz_internal.mz_cluster_replica_statuses), raise "
                    "resize_timeout_s if it only needs longer, or set the size back"
                ),
                details={
                    "replica": want.name,
                    "size": want.size,
                    "age_s": int(age),
                    "resize_timeout_s": limit,
                    "waiting": [r.name for r in waiting],
                },
            )
        )
    return out
