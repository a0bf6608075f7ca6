"""Backtest figures per cluster, from the replays (backtest.py): pure arithmetic.

* credits recorded: the recorded replicas (mz_cluster_replica_history) in the window, each its
  size's credits_per_hour times its hours live (engine/cost.py's rule);
* credits simulated: the same over the simulated replicas;
* a suspend: the simulated replica set goes to none; a resume: it comes back;
* a flap: a resume no more than ``flap_window_s`` after the suspend before it;
* a cold start: recorded statements (a recorded refusal too: the query would have run) that
  began while the simulated cluster had no replica, no more than ``cold_start_gap_s`` apart
  counted once (cost.py's rule); it waits until the next simulated replica is hydrated
  (its creation plus the hydration estimate);
* deferred: actions the rails deferred (rate limit, last hydrated replica, single replica).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from .backtest import (
    DEFAULT_RULES,
    BacktestRules,
    ClusterHistory,
    Replay,
    SimReplica,
    replay_cluster,
)
from .cost import Window, credits_per_hour
from .models import JsonObject, Size, StrategyRow

CANNOT_REPLAY = (
    "OOM kills and crashes: replicas are online all the time (shrink_to_fit sees none)",
    "hydration of a size the cluster never recorded: the stated default",
    "queries the real controller's suspensions got refused: each recorded refusal is demand "
    "(the query would have run), never a sign the cluster was unwanted",
    "replica changes made in the window by people, Materialize or the real controller: the "
    "simulation starts from the replicas live at the window start and only the replayed "
    "strategies change them",
    "managed clusters' graceful reconfiguration: ALTER CLUSTER takes effect at once; their "
    "SIZE and REPLICATION FACTOR at the window start are taken as the catalog shows them now",
    "hosted objects (sources, sinks, indexes, materialized views) as the catalog shows them "
    "now, for the whole window",
    "failed DDL and the backoff: every planned action succeeds",
    "the audit trail's evidence of past replicas (the simulated state is never lost)",
)


@dataclass(frozen=True)
class SimColdStart:
    first_at: datetime
    last_at: datetime
    queries: int
    served_at: datetime | None  # None: no replica would have come back in the window

    @property
    def wait_s(self) -> float | None:
        if self.served_at is None:
            return None
        return (self.served_at - self.first_at).total_seconds()


@dataclass(frozen=True)
class ClusterBacktest:
    replay: Replay
    strategies: tuple[str, ...]
    recorded_credits: float
    simulated_credits: float
    suspends: tuple[datetime, ...]
    resumes: tuple[datetime, ...]
    flaps: int
    deferred: int
    cold_starts: tuple[SimColdStart, ...]
    recorded_refusals: int
    recorded: tuple[SimReplica, ...] = ()

    @property
    def saved(self) -> float:
        return self.recorded_credits - self.simulated_credits


def _cph(size: str, sizes: Mapping[str, float]) -> float:
    return sizes.get(size, 0.0)


def _credits(replicas: Sequence[SimReplica], sizes: Mapping[str, float], window: Window) -> float:
    total = 0.0
    for r in replicas:
        lo = max(r.created_at, window.start)
        hi = min(r.dropped_at or window.end, window.end)
        if hi > lo:
            total += _cph(r.size, sizes) * (hi - lo).total_seconds() / 3600.0
    return total


def _alive(replicas: Sequence[SimReplica], t: datetime) -> list[SimReplica]:
    return [r for r in replicas if r.created_at <= t and (r.dropped_at is None or r.dropped_at > t)]


def _transitions(
    replicas: Sequence[SimReplica], window: Window
) -> tuple[list[datetime], list[datetime]]:
    """Suspends and resumes of the simulated set inside the window."""
    points = sorted(
        {t for r in replicas for t in (r.created_at, r.dropped_at) if t is not None}
        | {window.start}
    )
    suspends: list[datetime] = []
    resumes: list[datetime] = []
    was = bool(_alive(replicas, window.start))
    for t in points:
        if t <= window.start or t > window.end:
            continue
        now = bool(_alive(replicas, t))
        if was and not now:
            suspends.append(t)
        elif now and not was:
            resumes.append(t)
        was = now
    return suspends, resumes


def _cold_starts(
    history: ClusterHistory, replicas: Sequence[SimReplica], window: Window, gap_s: float
) -> list[SimColdStart]:
    refused = sorted(
        s.began_at
        for s in history.statements
        if window.start <= s.began_at < window.end and not _alive(replicas, s.began_at)
    )
    out: list[SimColdStart] = []
    for t in refused:
        if out and (t - out[-1].last_at).total_seconds() <= gap_s:
            last = out.pop()
            out.append(SimColdStart(last.first_at, t, last.queries + 1, last.served_at))
            continue
        later = [r for r in replicas if r.created_at > t]
        first = min((r.created_at for r in later), default=None)
        served = min((r.hydrated_at for r in later if r.created_at == first), default=None)
        out.append(
            SimColdStart(t, t, 1, served if served is None or served <= window.end else None)
        )
    return out


def backtest(
    *,
    histories: Sequence[ClusterHistory],
    rows: Sequence[StrategyRow],
    sizes: Sequence[Size],
    window: Window,
    rules: BacktestRules = DEFAULT_RULES,
) -> list[ClusterBacktest]:
    """Every cluster that has strategy rows, replayed and summed up."""
    # A row is replayed as if in place from the window start (its recorded updated_at may be
    # later: the idle clock would start in the replay's future).
    rows = [replace(r, updated_at=window.start) for r in rows]
    credits = {s.name: s.credits_per_hour for s in sizes}
    for h in histories:
        for span in h.spans:
            credits.setdefault(span.size, credits_per_hour(span, {}))
    out: list[ClusterBacktest] = []
    for h in histories:
        mine = [r for r in rows if r.cluster_id == h.cluster.id]
        if not mine:
            continue
        replay = replay_cluster(history=h, rows=mine, sizes=sizes, window=window, rules=rules)
        sims = replay.replicas
        suspends, resumes = _transitions(sims, window)
        flaps = sum(
            1
            for r in resumes
            if any(0 < (r - s).total_seconds() <= rules.flap_window_s for s in suspends)
        )
        recorded = [
            SimReplica(
                s.replica_id, s.replica_name, s.size, s.created_at, s.created_at, s.dropped_at
            )
            for s in h.spans
        ]
        out.append(
            ClusterBacktest(
                replay=replay,
                strategies=tuple(sorted({r.strategy_type for r in mine})),
                recorded_credits=_credits(recorded, credits, window),
                simulated_credits=_credits(sims, credits, window),
                suspends=tuple(suspends),
                resumes=tuple(resumes),
                flaps=flaps,
                deferred=sum(1 for a in replay.actions if a.status == "deferred"),
                cold_starts=tuple(_cold_starts(h, sims, window, rules.cold_start_gap_s)),
                recorded=tuple(recorded),
                recorded_refusals=sum(
                    1 for s in h.statements if s.refused and window.start <= s.began_at < window.end
                ),
            )
        )
    return out


def definitions(rules: BacktestRules) -> dict[str, str]:
    """The rules behind the figures, word for word in the JSON, the table and the HTML."""
    return {
        "cycles": f"the planner runs every {rules.cycle_s:g} s (multiples of it since the "
        "epoch, as cron runs the DAG) inside the window, with now = the cycle time, on the "
        "Signals the runtime would have read then; each row as if in place from the window "
        "start",
        "credits": "a replica's size credits_per_hour times the hours it was live in the "
        "window; recorded: the replicas Materialize recorded; simulated: the replayed ones",
        "activity": f"recorded statements begun by now - {rules.log_flush_lag_s:g} s (the "
        "statement log's flush lag); an end not flushed yet counts as running",
        "suspend": "the simulated replica set goes to none; resume: it comes back",
        "flap": f"a resume no more than {rules.flap_window_s:g} s after the suspend before it",
        "cold_start": "recorded statements that began while the simulated cluster had no "
        f"replica, no more than {rules.cold_start_gap_s:g} s apart counted once; wait: until "
        "the next simulated replica is hydrated (its creation plus the hydration estimate)",
        "hydration": "the cluster's recorded hydration time of the size "
        "(mz_compute_hydration_statuses), else "
        f"{rules.default_hydration_s:g} s; a cluster with nothing to hydrate: at once",
        "refusals": "a refusal in the recorded log (often caused by the real controller's "
        "suspend) is demand: the query would have run, and resumes the simulated cluster",
        "deferred": "actions the rails deferred (rate limit, last hydrated replica, single "
        "replica); they change nothing and are decided again next cycle",
        "skipping": "a cycle that planned nothing, kept the state and saw the inputs of the "
        "cycle before is followed by a jump to the next cycle at which an input can change "
        "(a statement becoming visible, a hydration, a state or activity time plus a "
        "configured duration); never for schedule rows",
    }


def report_json(
    results: Sequence[ClusterBacktest], window: Window, rules: BacktestRules
) -> JsonObject:
    return {
        "kind": "mz_schedctl_backtest",
        "version": 1,
        "window": {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "hours": round(window.seconds / 3600.0, 6),
        },
        "definitions": dict(definitions(rules)),
        "cannot_replay": list(CANNOT_REPLAY),
        "totals": {
            "recorded_credits": _r(sum(c.recorded_credits for c in results)),
            "simulated_credits": _r(sum(c.simulated_credits for c in results)),
            "saved": _r(sum(c.saved for c in results)),
            "suspends": sum(len(c.suspends) for c in results),
            "resumes": sum(len(c.resumes) for c in results),
            "cold_starts": sum(len(c.cold_starts) for c in results),
            "flaps": sum(c.flaps for c in results),
            "deferred": sum(c.deferred for c in results),
        },
        "clusters": [_cluster_json(c) for c in results],
    }


def _r(x: float) -> float:
    return round(x, 6)


def _cluster_json(c: ClusterBacktest) -> JsonObject:
    rp = c.replay
    return {
        "cluster_id": rp.cluster_id,
        "name": rp.name,
        "strategies": list(c.strategies),
        "recorded_credits": _r(c.recorded_credits),
        "simulated_credits": _r(c.simulated_credits),
        "saved": _r(c.saved),
        "suspends": [t.isoformat() for t in c.suspends],
        "resumes": [t.isoformat() for t in c.resumes],
        "flaps": c.flaps,
        "deferred": c.deferred,
        "cold_starts": [
            {"first_at": s.first_at.isoformat(), "last_at": s.last_at.isoformat(),
             "queries": s.queries,
             "served_at": None if s.served_at is None else s.served_at.isoformat(),
             "wait_s": None if s.wait_s is None else _r(s.wait_s)}
            for s in c.cold_starts
        ],
        "recorded_refusals": c.recorded_refusals,
        "cycles_run": rp.cycles_run,
        "cycles_skipped": rp.cycles_skipped,
        "errors": list(rp.errors),
        "replicas": [
            {"name": r.name, "size": r.size, "created_at": r.created_at.isoformat(),
             "hydrated_at": r.hydrated_at.isoformat(),
             "dropped_at": None if r.dropped_at is None else r.dropped_at.isoformat()}
            for r in rp.replicas
        ],
        "recorded_replicas": [
            {"name": r.name, "size": r.size, "created_at": r.created_at.isoformat(),
             "dropped_at": None if r.dropped_at is None else r.dropped_at.isoformat()}
            for r in c.recorded
        ],
        "actions": [
            {"at": a.at.isoformat(), "kind": a.kind, "replica": a.replica_name, "size": a.size,
             "strategy": a.strategy, "status": a.status}
            for a in rp.actions
        ],
    }  # fmt: skip
