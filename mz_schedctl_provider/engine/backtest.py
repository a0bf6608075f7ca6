"""Backtest: replay recorded history through the real planner, cycle by cycle, writing nothing.

Pure (no I/O, no clock). For each cluster and each cycle time ``t`` (every multiple of
``cycle_s`` since the epoch inside the window, as cron's ``*/2`` runs on even minutes) it
builds the Signals the runtime would have read at ``t`` and calls ``planner.decide`` with
``now = t``:

* replicas: the simulated set (at the window start: the recorded replicas live then), each
  hydrated once its hydration estimate has passed since its creation;
* activity: the recorded statements visible at ``t`` (begun by ``t - log_flush_lag_s``; an end
  not flushed yet counts as running, i.e. activity at ``t``, as signals.py reads it), inside
  the same read window as signals.py; a recorded refusal is demand like any statement;
* strategy rows: the current rows or a proposed set; the state: the previous simulated cycle's
  (planner.next_states as if every planned action succeeded); the rate limit's recent actions:
  the simulated ones.

The plan's planned actions change the simulated set as the executor would (create adds an
unhydrated replica, drop removes it, ALTER CLUSTER replaces a managed cluster's replicas at
once); deferred and shadow actions change nothing (deferred ones are counted).

Skipping (``skip_unchanged``): after a cycle that planned no action (deferred ones included),
left the state as it was, and saw the same inputs as the cycle before (replicas, hydration,
activity, state), the next cycles are skipped up to the first cycle at or after the next time
an input can change: a statement becoming visible, a replica hydrating, or a timer (every
timestamp of the inputs plus every duration of the rows' config, defaults included, and the
rate-limit window). Clusters with a ``schedule`` row are never skipped (their window
boundaries are not such timers). Equality with and without skipping is tested.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .config import COMMON_KEYS, config_object
from .cost import DEFAULT_COLD_START_GAP_S, ReplicaSpan, Window
from .lookback import activity_lookback_s, activity_window_s
from .models import (
    ActionResult,
    ApplyResult,
    Cluster,
    JsonValue,
    Plan,
    RecentAction,
    Replica,
    Signals,
    Size,
    StateRow,
    StrategyRow,
)
from .planner import decide, next_states
from .safety import DEFAULT_LIMITS, Limits
from .state import state_to_payload
from .strategies import REGISTRY
from .strategies.schedule import NAME as SCHEDULE_STRATEGY

DEFAULT_CYCLE_S = 120.0
# Hydration of a size the cluster never recorded: stated in the output.
DEFAULT_HYDRATION_S = 60.0


@dataclass(frozen=True)
class Statement:
    """A recorded statement on the cluster (any outcome: a refusal is demand too)."""

    began_at: datetime
    finished_at: datetime | None
    refused: bool = False


@dataclass(frozen=True)
class ClusterHistory:
    """What was recorded about one cluster. ``cluster`` gives its kind and hosted objects
    (its replicas are ignored: the simulation starts from ``spans`` live at the window start)."""

    cluster: Cluster
    spans: tuple[ReplicaSpan, ...]
    statements: tuple[Statement, ...]
    # Recorded hydration times (seconds) by replica size, on this cluster.
    hydration_s: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestRules:
    cycle_s: float = DEFAULT_CYCLE_S
    log_flush_lag_s: float = 5.0
    default_hydration_s: float = DEFAULT_HYDRATION_S
    skip_unchanged: bool = True
    # A resume no more than this long after the suspend before it is a flap.
    flap_window_s: float = 900.0
    cold_start_gap_s: float = DEFAULT_COLD_START_GAP_S
    logging_visible: bool = True
    controller_cluster: str | None = None
    limits: Limits = DEFAULT_LIMITS


DEFAULT_RULES = BacktestRules()


@dataclass(frozen=True)
class SimReplica:
    id: str
    name: str
    size: str
    created_at: datetime
    hydrated_at: datetime
    dropped_at: datetime | None = None


@dataclass(frozen=True)
class SimAction:
    """A planned (executed in the simulation) or deferred action of one cycle."""

    at: datetime
    kind: str
    replica_name: str
    size: str | None
    strategy: str
    status: str


@dataclass(frozen=True)
class Replay:
    """One cluster's simulated week: every replica it would have had, and what was done."""

    cluster_id: str
    name: str
    replicas: tuple[SimReplica, ...]
    actions: tuple[SimAction, ...]
    cycles_run: int
    cycles_skipped: int
    errors: tuple[str, ...]


def hydration_estimate(history: ClusterHistory, size: str, rules: BacktestRules) -> float:
    """The recorded hydration time of that size on this cluster, else the stated default;
    a cluster with nothing to hydrate is hydrated at once."""
    if history.cluster.objects_to_hydrate == 0:
        return 0.0
    return history.hydration_s.get(size, rules.default_hydration_s)


class _Activity:
    """Recorded statements ordered by start, with the running maximum of their ends."""

    def __init__(self, statements: Sequence[Statement]) -> None:
        ordered = sorted(statements, key=lambda s: s.began_at)
        self.began = [s.began_at for s in ordered]
        self.max_end: list[datetime | None] = []
        top: datetime | None = None
        running = False
        for s in ordered:
            running = running or s.finished_at is None
            if not running and s.finished_at is not None and (top is None or s.finished_at > top):
                top = s.finished_at
            self.max_end.append(None if running else top)

    def last_activity(self, t: datetime, lag: timedelta, window_s: float) -> datetime | None:
        """As signals.py reads it at t: max(coalesce(visible end, now())) over the rows
        visible (begun by t - lag) that began inside the read window."""
        i = bisect.bisect_right(self.began, t - lag)
        if i == 0 or self.began[i - 1] <= t - timedelta(seconds=window_s):
            return None
        end = self.max_end[i - 1]
        if end is None or end > t - lag:
            return t  # an end not flushed yet: still running, activity now
        return end

    def next_visible(self, t: datetime, lag: timedelta) -> datetime | None:
        """When the next statement not visible at t becomes visible."""
        i = bisect.bisect_right(self.began, t - lag)
        return self.began[i] + lag if i < len(self.began) else None


def first_cycle(window: Window, cycle_s: float) -> datetime:
    """The first cycle in the window on the schedule's grid (multiples of cycle_s since the
    epoch, as cron's */2 runs on even minutes)."""
    epoch = datetime(1970, 1, 1, tzinfo=window.start.tzinfo)
    k = -(-(window.start - epoch).total_seconds() // cycle_s)
    return epoch + timedelta(seconds=k * cycle_s)


def _cycles(start: datetime, end: datetime, cycle_s: float) -> Iterator[datetime]:
    k = 0
    while True:
        t = start + timedelta(seconds=cycle_s * k)
        if t > end:
            return
        yield t
        k += 1


def _durations(rows: Sequence[StrategyRow]) -> list[float]:
    """Every duration a row declares (its value, else the key's default)."""
    out: set[float] = set()
    for row in rows:
        spec = REGISTRY.get(row.strategy_type)
        obj, _ = config_object(row.config)
        keys = {**COMMON_KEYS, **(spec.keys if spec is not None else {})}
        for key, ks in keys.items():
            if ks.kind != "duration":
                continue
            value: JsonValue = (obj or {}).get(key, ks.default)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.add(float(value))
    return sorted(out)


def _timestamps(value: JsonValue) -> Iterator[datetime]:
    """Every ISO timestamp inside a state payload."""
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return
        if ts.tzinfo is not None:
            yield ts
    elif isinstance(value, dict):
        for v in value.values():
            yield from _timestamps(v)
    elif isinstance(value, list):
        for v in value:
            yield from _timestamps(v)


def replay_cluster(
    *,
    history: ClusterHistory,
    rows: Sequence[StrategyRow],
    sizes: Sequence[Size],
    window: Window,
    rules: BacktestRules = DEFAULT_RULES,
) -> Replay:
    """Replay one cluster over the window (see the module docstring)."""
    base = history.cluster
    lag = timedelta(seconds=rules.log_flush_lag_s)
    # The same read window as the signals stage's.
    window_s = activity_window_s(activity_lookback_s(rows, sizes={s.name: s for s in sizes}))
    activity = _Activity(history.statements)
    live: list[SimReplica] = [
        SimReplica(
            id=s.replica_id,
            name=s.replica_name,
            size=s.size,
            created_at=s.created_at,
            hydrated_at=s.created_at
            + timedelta(seconds=hydration_estimate(history, s.size, rules)),
        )
        for s in sorted(history.spans, key=lambda s: (s.created_at, s.replica_id))
        if s.created_at <= window.start and (s.dropped_at is None or s.dropped_at > window.start)
    ]
    done: list[SimReplica] = []
    actions: list[SimAction] = []
    errors: list[str] = []
    recent: list[RecentAction] = []
    state: StateRow | None = None
    size = base.size
    factor = base.replication_factor
    durations = [0.0, *_durations(rows), rules.limits.rate_window_s]
    skippable = rules.skip_unchanged and all(r.strategy_type != SCHEDULE_STRATEGY for r in rows)
    row_times = [r.updated_at for r in rows if r.updated_at is not None]
    prev_digest: object = None
    run = skipped = 0
    serial = 0
    resume_at: datetime | None = None
    origin = first_cycle(window, rules.cycle_s)
    for t in _cycles(origin, window.end, rules.cycle_s):
        if resume_at is not None and t < resume_at:
            skipped += 1
            continue
        resume_at = None
        recent = [a for a in recent if (t - a.at).total_seconds() < rules.limits.rate_window_s]
        last = activity.last_activity(t, lag, window_s)
        cluster = replace(
            base,
            size=size,
            replication_factor=factor,
            replicas=tuple(
                sorted(
                    (
                        Replica(
                            id=r.id,
                            name=r.name,
                            size=r.size,
                            created_at=r.created_at,
                            status="online",
                            hydrated_objects=base.objects_to_hydrate if r.hydrated_at <= t else 0,
                        )
                        for r in live
                    ),
                    key=lambda r: r.name,
                )
            ),
            last_activity=last,
        )
        signals = Signals(
            now=t,
            logging_visible=rules.logging_visible,
            controller_cluster=rules.controller_cluster,
            sizes=tuple(sizes),
            clusters=(cluster,),
            strategies=tuple(rows),
            states=(state,) if state is not None else (),
            recent_actions=tuple(recent),
            log_flush_lag_s=rules.log_flush_lag_s,
        )
        plan = decide(signals, cycle_id=f"backtest/{run}", dry_run=False, limits=rules.limits)
        run += 1
        cp = plan.clusters[0] if plan.clusters else None
        if cp is not None:
            errors.extend(e for e in cp.errors if e not in errors)
        planned = [a for a in cp.actions if a.status == "planned"] if cp is not None else []
        for a in cp.actions if cp is not None else ():
            if a.status in ("planned", "deferred"):
                actions.append(SimAction(t, a.kind, a.replica_name, a.size, a.strategy, a.status))
        for a in planned:
            serial += 1
            recent.append(RecentAction(cluster_id=base.id, at=t, strategy=a.strategy))
            if a.kind == "create_replica" and a.size is not None:
                est = timedelta(seconds=hydration_estimate(history, a.size, rules))
                live.append(SimReplica(f"sim{serial}", a.replica_name, a.size, t, t + est))
            elif a.kind == "drop_replica":
                for r in [r for r in live if r.name == a.replica_name]:
                    live.remove(r)
                    done.append(replace(r, dropped_at=t))
            elif a.kind == "alter_cluster" and a.alter is not None:
                size = a.alter.size or size
                factor = (
                    a.alter.replication_factor if a.alter.replication_factor is not None else factor
                )
                for r in live:
                    done.append(replace(r, dropped_at=t))
                est = timedelta(seconds=hydration_estimate(history, size or "", rules))
                live = [
                    SimReplica(f"sim{serial}.{i}", f"r{i + 1}", size or "", t, t + est)
                    for i in range(factor or 0)
                ]
        new_state = _next_state(plan, state, t)
        digest = (cluster.replicas, last, state.payload if state is not None else None)
        quiet = not (cp.actions if cp is not None else ()) and new_state == state
        if skippable and quiet and digest == prev_digest:
            resume_at = _next_change(
                t=t,
                activity=activity,
                lag=lag,
                live=live,
                stamps=[
                    *(r.created_at for r in live),
                    *row_times,
                    *([last] if last is not None else []),
                    *(a.at for a in recent),
                    *(_timestamps(state.payload) if state is not None else ()),
                ],
                durations=durations,
                cycle_s=rules.cycle_s,
                start=origin,
            )
        prev_digest = digest
        state = new_state
    return Replay(
        cluster_id=base.id,
        name=base.name,
        replicas=tuple(sorted([*done, *live], key=lambda r: (r.created_at, r.id))),
        actions=tuple(actions),
        cycles_run=run,
        cycles_skipped=skipped,
        errors=tuple(errors),
    )


def _next_state(plan: Plan, prev: StateRow | None, t: datetime) -> StateRow | None:
    """The state persist would write after every planned action succeeded."""
    result = ApplyResult(
        cycle_id=plan.cycle_id,
        executed=True,
        results=tuple(
            ActionResult(action_id=a.id, cluster_id=a.cluster_id, outcome="succeeded")
            for a in plan.actions()
            if a.status == "planned"
        ),
    )
    states = next_states(plan, result)
    if not states:
        return prev
    (cid, st), *_ = states.items()
    version = prev.state_version if prev is not None else 2
    return StateRow(
        cluster_id=cid, state_version=version, payload=state_to_payload(st), updated_at=t
    )


def _next_change(
    *,
    t: datetime,
    activity: _Activity,
    lag: timedelta,
    live: Sequence[SimReplica],
    stamps: Sequence[datetime],
    durations: Sequence[float],
    cycle_s: float,
    start: datetime,
) -> datetime:
    """The first cycle at or after the earliest instant after t when an input may change."""
    candidates = [r.hydrated_at for r in live if r.hydrated_at > t]
    nxt = activity.next_visible(t, lag)
    if nxt is not None:
        candidates.append(nxt)
    for ts in stamps:
        for d in durations:
            for extra in (timedelta(0), lag):
                at = ts + timedelta(seconds=d) + extra
                if at > t:
                    candidates.append(at)
    if not candidates:
        return datetime.max.replace(tzinfo=t.tzinfo)
    soonest = min(candidates)
    k = -(-(soonest - start).total_seconds() // cycle_s)  # ceiling: the next cycle on the grid
    return max(start + timedelta(seconds=k * cycle_s), t + timedelta(seconds=cycle_s))
