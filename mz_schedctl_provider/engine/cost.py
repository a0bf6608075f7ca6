"""Cost history and savings per cluster: pure arithmetic over what the runtime read.

Inputs: every user replica's lifetime (Materialize's ``mz_internal.mz_cluster_replica_history``:
replicas made by people and by Materialize too), the controller's audit trail (only to
attribute changes to strategies and to date the baseline), the statements that ended in error
on a cluster, and the window. Each idea is defined once, here:

* credits of a replica: its size's ``credits_per_hour`` times the hours it was live;
* a burst replica: one the audit shows the ``burst`` strategy created;
* a refused query: a statement on the cluster that ended in error while the cluster had no
  replica (Materialize refuses it at once: ``CLUSTER "<c>" has no replicas available to
  service request``);
* a cold start: refused queries no more than ``cold_start_gap_s`` apart count once;
* the baseline: the replicas the cluster had just before the controller's first executed
  action on it (the earliest audit row of an action whose outcome was executed), kept on for
  the whole observed window; a cluster the controller never changed has its own history as
  baseline (savings 0).

Time splits into suspended (no replica), bursting (a burst replica live), resizing (a replica
of a new size is up while an older replica of another size, dropped later, still is) and
serving (the rest), in that order of precedence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

from .models import JsonObject
from .strategies.burst import NAME as BURST_STRATEGY

# Outside the controller: a person's DDL, or Materialize's own (ALTER CLUSTER, schedules).
OUTSIDE = "outside the controller"
STATES = ("serving", "suspended", "bursting", "resizing")
DEFAULT_COLD_START_GAP_S = 60.0
# An audit row and the catalog's create/drop of its replica are this close in time.
DEFAULT_ATTRIBUTION_SLACK_S = 120.0
REPLICA_KINDS = ("create_replica", "drop_replica", "alter_cluster")


@dataclass(frozen=True)
class ReplicaSpan:
    """One row of mz_cluster_replica_history (names as of its creation)."""

    replica_id: str
    cluster_id: str
    cluster_name: str
    replica_name: str
    size: str
    created_at: datetime
    dropped_at: datetime | None
    credits_per_hour: float | None


@dataclass(frozen=True)
class AuditRow:
    """One audit row of a replica action (intent or outcome)."""

    action_id: str
    cluster_id: str
    at: datetime
    phase: str
    executed: bool | None
    strategy: str | None
    kind: str
    replica_name: str | None


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass(frozen=True)
class CostRules:
    cold_start_gap_s: float = DEFAULT_COLD_START_GAP_S
    attribution_slack_s: float = DEFAULT_ATTRIBUTION_SLACK_S


@dataclass(frozen=True)
class Segment:
    """A stretch of time with one replica set."""

    start: datetime
    end: datetime
    state: str
    replicas: tuple[tuple[str, int], ...]  # (size, count), largest credits first
    credits_per_hour: float


@dataclass(frozen=True)
class Marker:
    """A suspend or a resume, with who did it."""

    at: datetime
    kind: str
    by: str


@dataclass(frozen=True)
class ColdStart:
    first_at: datetime
    last_at: datetime
    queries: int


@dataclass(frozen=True)
class ClusterCost:
    cluster_id: str
    name: str
    credits: float
    baseline_credits: float
    baseline_credits_per_hour: float
    baseline_at: datetime | None
    baseline_replicas: tuple[tuple[str, int], ...]
    savings: float
    seconds: Mapping[str, float]
    observed_s: float
    credits_by: Mapping[str, float]
    refused_queries: int
    cold_starts: tuple[ColdStart, ...]
    markers: tuple[Marker, ...]
    segments: tuple[Segment, ...]
    replicas: tuple[tuple[ReplicaSpan, str, str | None], ...]  # (span, made by, dropped by)
    reasons: tuple[str, ...] = field(default=())


def credits_per_hour(span: ReplicaSpan, sizes: Mapping[str, float]) -> float:
    """The size's credits per hour: the history row's (Materialize joins the size catalog),
    else the size catalog's, else 0 for a size neither knows (stated in the reasons)."""
    if span.credits_per_hour is not None:
        return span.credits_per_hour
    return sizes.get(span.size, 0.0)


def executed_actions(rows: Iterable[AuditRow]) -> dict[str, tuple[AuditRow, datetime]]:
    """Executed actions by id: (their executed outcome row, their earliest row's time, which
    is the intent written before the DDL when there is one)."""
    rows = list(rows)
    outcomes = {r.action_id: r for r in rows if r.phase == "outcome" and r.executed}
    first: dict[str, datetime] = {}
    for r in rows:
        if r.action_id in outcomes and (r.action_id not in first or r.at < first[r.action_id]):
            first[r.action_id] = r.at
    return {aid: (row, first[aid]) for aid, row in outcomes.items()}


def _attribute(
    span: ReplicaSpan,
    at: datetime | None,
    kind: str,
    actions: Sequence[tuple[AuditRow, datetime]],
    slack_s: float,
) -> str | None:
    """The strategy whose executed action made this create (or drop), nearest in time."""
    if at is None:
        return None
    best: tuple[float, str] | None = None
    for row, first_at in actions:
        same_name = row.kind == kind and row.replica_name == span.replica_name
        if not (same_name or row.kind == "alter_cluster"):
            continue
        if row.cluster_id != span.cluster_id:
            continue
        lo, hi = first_at.timestamp() - slack_s, row.at.timestamp() + slack_s
        t = at.timestamp()
        if lo <= t <= hi:
            distance = abs(t - first_at.timestamp())
            if best is None or distance < best[0]:
                best = (distance, row.strategy or OUTSIDE)
    return None if best is None else best[1]


def _live(spans: Sequence[ReplicaSpan], t: datetime) -> list[ReplicaSpan]:
    return [s for s in spans if s.created_at <= t and (s.dropped_at is None or s.dropped_at > t)]


def _state(live: Sequence[ReplicaSpan], bursts: set[str]) -> str:
    if not live:
        return "suspended"
    if any(s.replica_id in bursts for s in live):
        return "bursting"
    for new in live:
        for old in live:
            if (
                old.size != new.size
                and old.created_at < new.created_at
                and old.dropped_at is not None
            ):
                return "resizing"
    return "serving"


def _by_size(
    live: Sequence[ReplicaSpan], sizes: Mapping[str, float]
) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for s in live:
        counts[s.size] = counts.get(s.size, 0) + 1
    order = {s.size: credits_per_hour(s, sizes) for s in live}
    return tuple(sorted(counts.items(), key=lambda kv: (-order[kv[0]], kv[0])))


def cluster_cost(
    *,
    cluster_id: str,
    name: str,
    spans: Sequence[ReplicaSpan],
    audit: Sequence[AuditRow],
    errors: Sequence[datetime],
    sizes: Mapping[str, float],
    window: Window,
    exists: bool = True,
    rules: CostRules = CostRules(),
) -> ClusterCost:
    """The cost figures of one cluster over the window; ``errors``: when its statements that
    ended in error began. ``exists``: the cluster is still in the catalog (else its observed
    time ends at its last replica's drop)."""
    spans = sorted(spans, key=lambda s: (s.created_at, s.replica_id))
    actions = list(executed_actions(a for a in audit if a.kind in REPLICA_KINDS).values())
    made = {
        s.replica_id: _attribute(
            s, s.created_at, "create_replica", actions, rules.attribution_slack_s
        )
        or OUTSIDE
        for s in spans
    }
    dropped = {
        s.replica_id: None
        if s.dropped_at is None
        else _attribute(s, s.dropped_at, "drop_replica", actions, rules.attribution_slack_s)
        or OUTSIDE
        for s in spans
    }
    bursts = {rid for rid, by in made.items() if by == BURST_STRATEGY}
    reasons: list[str] = []
    unknown = sorted({s.size for s in spans if s.credits_per_hour is None and s.size not in sizes})
    if unknown:
        reasons.append(f"sizes with no credits_per_hour counted as 0: {', '.join(unknown)}")

    # Observed: from the first replica (or the window start) to the window end, or to the last
    # drop of a cluster that no longer exists.
    start = max([window.start, *([spans[0].created_at] if spans else [])])
    end = window.end
    if not exists and spans and all(s.dropped_at is not None for s in spans):
        end = min(end, max(s.dropped_at for s in spans if s.dropped_at is not None))
    points = {start, end}
    for s in spans:
        for t in (s.created_at, s.dropped_at):
            if t is not None and start < t < end:
                points.add(t)
    ordered = sorted(points)
    segments: list[Segment] = []
    for a, b in pairwise(ordered):
        live = _live(spans, a)
        cph = sum(credits_per_hour(s, sizes) for s in live)
        seg = Segment(a, b, _state(live, bursts), _by_size(live, sizes), cph)
        if segments and (segments[-1].replicas, segments[-1].state) == (seg.replicas, seg.state):
            prev = segments.pop()
            seg = Segment(prev.start, b, seg.state, seg.replicas, seg.credits_per_hour)
        segments.append(seg)
    seconds = {k: 0.0 for k in STATES}
    for seg in segments:
        seconds[seg.state] += (seg.end - seg.start).total_seconds()
    observed = sum(seconds.values())

    credits = 0.0
    credits_by: dict[str, float] = {}
    for s in spans:
        lo = max(s.created_at, start)
        hi = min(s.dropped_at or end, end)
        if hi <= lo:
            continue
        c = credits_per_hour(s, sizes) * (hi - lo).total_seconds() / 3600.0
        credits += c
        credits_by[made[s.replica_id]] = credits_by.get(made[s.replica_id], 0.0) + c

    markers = _markers(segments, spans, made, dropped, start)
    refused = sorted(
        t for t in errors if start <= t < end and not _live(spans, t) and _seen(spans, t)
    )
    cold = _cold_starts(refused, rules.cold_start_gap_s)

    baseline_at = min((first for _row, first in actions), default=None)
    if baseline_at is None:
        base_live: list[ReplicaSpan] = []
        baseline_cph = credits * 3600.0 / observed if observed else 0.0
        baseline = credits
        reasons.append("the controller never changed it: its baseline is its own history")
    else:
        base_live = [
            s
            for s in spans
            if s.created_at < baseline_at and (s.dropped_at is None or s.dropped_at >= baseline_at)
        ]
        baseline_cph = sum(credits_per_hour(s, sizes) for s in base_live)
        baseline = baseline_cph * observed / 3600.0
        shown = " + ".join(f"{n}x{size}" for size, n in _by_size(base_live, sizes)) or "none"
        reasons.append(
            f"baseline: {shown} ({baseline_cph:g} credits/h) before the controller's first "
            f"executed action at {baseline_at.isoformat()}, kept on for {observed / 3600.0:g} h"
        )
    savings = baseline - credits
    reasons.append(
        f"{credits:.4f} credits used vs {baseline:.4f} at the baseline: "
        + (f"{savings:.4f} saved" if savings >= 0 else f"{-savings:.4f} more")
    )
    if refused:
        reasons.append(
            f"{len(refused)} refused quer{'y' if len(refused) == 1 else 'ies'} in {len(cold)} "
            f"cold start(s) (refusals no more than {rules.cold_start_gap_s:g} s apart count once)"
        )
    return ClusterCost(
        cluster_id=cluster_id,
        name=name,
        credits=credits,
        baseline_credits=baseline,
        baseline_credits_per_hour=baseline_cph,
        baseline_at=baseline_at,
        baseline_replicas=_by_size(base_live, sizes),
        savings=savings,
        seconds=seconds,
        observed_s=observed,
        credits_by=credits_by,
        refused_queries=len(refused),
        cold_starts=tuple(cold),
        markers=tuple(markers),
        segments=tuple(segments),
        replicas=tuple((s, made[s.replica_id], dropped[s.replica_id]) for s in spans),
        reasons=tuple(reasons),
    )


def _seen(spans: Sequence[ReplicaSpan], t: datetime) -> bool:
    """The cluster had a replica before t (an error before its first replica is not a
    refusal we can date to a suspension)."""
    return any(s.created_at <= t for s in spans) or not spans


def _markers(
    segments: Sequence[Segment],
    spans: Sequence[ReplicaSpan],
    made: Mapping[str, str],
    dropped: Mapping[str, str | None],
    start: datetime,
) -> list[Marker]:
    """A suspend where the replica set goes to none, a resume where it comes back; by the
    strategy that dropped (created) the replica doing it, else outside the controller."""
    out: list[Marker] = []
    for prev, seg in pairwise(segments):
        if prev.state != "suspended" and seg.state == "suspended":
            gone = [s for s in spans if s.dropped_at == seg.start]
            by = next(
                (dropped[s.replica_id] for s in gone if dropped[s.replica_id] != OUTSIDE), None
            )
            out.append(Marker(seg.start, "suspend", by or OUTSIDE))
        elif prev.state == "suspended" and seg.state != "suspended" and seg.start > start:
            new = [s for s in spans if s.created_at == seg.start]
            by = next((made[s.replica_id] for s in new if made[s.replica_id] != OUTSIDE), None)
            out.append(Marker(seg.start, "resume", by or OUTSIDE))
    return out


def _cold_starts(refused: Sequence[datetime], gap_s: float) -> list[ColdStart]:
    out: list[ColdStart] = []
    for t in refused:
        if out and (t - out[-1].last_at).total_seconds() <= gap_s:
            last = out.pop()
            out.append(ColdStart(last.first_at, t, last.queries + 1))
        else:
            out.append(ColdStart(t, t, 1))
    return out


def definitions(rules: CostRules) -> dict[str, str]:
    """The rules behind the figures, word for word in the JSON, the HTML and the README."""
    return {
        "credits": "a replica's size credits_per_hour (mz_cluster_replica_history) times the "
        "hours it was live in the window, for every replica, made by people, Materialize or "
        "the controller",
        "baseline": "the replicas the cluster had just before the controller's first executed "
        "action on it (the earliest audit row of an action whose outcome was executed), kept "
        "on for the whole observed window; a cluster the controller never changed: its own "
        "history (savings 0)",
        "savings": "baseline credits minus credits (negative: the controller spent more)",
        "observed": "from the window start, or the cluster's first replica if later, to the "
        "window end, or to its last replica's drop if the cluster is gone",
        "time": "suspended: no replica; bursting: a replica the burst strategy created is "
        "live; resizing: a replica of a new size is up while an older replica of another "
        "size, dropped later, still is; serving: the rest",
        "refused_query": "a statement on the cluster that ended in error while the cluster "
        'had no replica (CLUSTER "<c>" has no replicas available to service request)',
        "cold_start": f"refused queries on a cluster no more than {rules.cold_start_gap_s:g} s "
        "apart count once",
        "attribution": "a replica's create or drop is the strategy's whose executed audit "
        f"action lies within {rules.attribution_slack_s:g} s of it; else outside the "
        "controller",
    }


def report_json(clusters: Sequence[ClusterCost], window: Window, rules: CostRules) -> JsonObject:
    """The report as one JSON document (times ISO 8601, credits rounded to 6 places)."""
    doc: JsonObject = {
        "kind": "mz_schedctl_cost_report",
        "version": 1,
        "window": {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "hours": round(window.seconds / 3600.0, 6),
        },
        "definitions": dict(definitions(rules)),
        "totals": {
            "credits": _r(sum(c.credits for c in clusters)),
            "baseline_credits": _r(sum(c.baseline_credits for c in clusters)),
            "savings": _r(sum(c.savings for c in clusters)),
            "cold_starts": sum(len(c.cold_starts) for c in clusters),
            "refused_queries": sum(c.refused_queries for c in clusters),
        },
        "clusters": [_cluster_json(c) for c in clusters],
    }
    return doc


def _r(x: float) -> float:
    return round(x, 6)


def _sizes_json(pairs: Sequence[tuple[str, int]]) -> JsonObject:
    return {size: n for size, n in pairs}


def _cluster_json(c: ClusterCost) -> JsonObject:
    return {
        "cluster_id": c.cluster_id,
        "name": c.name,
        "credits": _r(c.credits),
        "baseline": {
            "at": None if c.baseline_at is None else c.baseline_at.isoformat(),
            "replicas": _sizes_json(c.baseline_replicas),
            "credits_per_hour": _r(c.baseline_credits_per_hour),
            "credits": _r(c.baseline_credits),
        },
        "savings": _r(c.savings),
        "observed_s": _r(c.observed_s),
        "seconds": {k: _r(v) for k, v in c.seconds.items()},
        "credits_by": {k: _r(v) for k, v in sorted(c.credits_by.items())},
        "refused_queries": c.refused_queries,
        "cold_starts": [
            {"first_at": s.first_at.isoformat(), "last_at": s.last_at.isoformat(),
             "queries": s.queries}
            for s in c.cold_starts
        ],
        "markers": [{"at": m.at.isoformat(), "kind": m.kind, "by": m.by} for m in c.markers],
        "segments": [
            {"start": s.start.isoformat(), "end": s.end.isoformat(), "state": s.state,
             "replicas": _sizes_json(s.replicas), "credits_per_hour": _r(s.credits_per_hour)}
            for s in c.segments
        ],
        "replicas": [
            {"replica_id": s.replica_id, "name": s.replica_name, "size": s.size,
             "created_at": s.created_at.isoformat(),
             "dropped_at": None if s.dropped_at is None else s.dropped_at.isoformat(),
             "made_by": made, "dropped_by": gone}
            for s, made, gone in c.replicas
        ],
        "reasons": list(c.reasons),
    }  # fmt: skip
