"""Whether to start a cycle now, between scheduled runs: cheap necessary conditions, not a
second planner. Each condition is one the last cycle could not have acted on, because it
arose after that cycle (the cursor: the newest controller write's server time):

* ``refused_query``: a statement from another session on a cluster that idle_suspend
  suspended (its state says so, it has no replica) and will resume, newer than the suspend
  and than the cursor (each less the statement log's flush lag);
* ``burst_base_hydrated``: a cluster whose state keeps a burst (the last cycle kept it
  because no base replica was hydrated) now has a hydrated replica that is not the burst;
* ``resize_target_hydrated``: a target_size cluster still has replicas of another size
  while a replica of the target size is hydrated (the last cycle kept the old ones because
  the target was not);
* ``window_opens``: a schedule window's start less its pre-warm fell in (cursor, now].

A false positive costs one no-op cycle; the rate limit (``min_interval_s`` after the cursor)
bounds how often event-started cycles run. The cycle decides everything itself again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pendulum

from .config import Values, row_enabled
from .facts import iso, parse_ts
from .models import JsonObject, StateRow, StrategyRow
from .row_config import newest_rows
from .state import newest_row
from .strategies import burst, idle_suspend, schedule, target_size
from .strategies.schedule_windows import occurrences

WakeReason = Literal[
    "refused_query", "burst_base_hydrated", "resize_target_hydrated", "window_opens"
]
# The trigger's rate limit: no event-started cycle sooner than this after the last one.
DEFAULT_MIN_INTERVAL_S = 30.0


@dataclass(frozen=True)
class ReplicaSeen:
    """One replica of a cluster the conditions look at, as the catalog shows it now."""

    cluster_id: str
    name: str
    size: str | None
    hydrated: bool


@dataclass(frozen=True)
class WakeFacts:
    """What the trigger read in one poll (runtime/event_reads.py)."""

    now: datetime
    # The newest controller write (state, audit or lease row); None before ``init``.
    cursor: datetime | None
    strategies: tuple[StrategyRow, ...]
    states: tuple[StateRow, ...]
    # Per cluster: the newest statement by another session that began after the cursor less
    # the flush lag and a cycle's span (runtime/event_reads.py).
    statements: Mapping[str, datetime]
    # Every replica of the clusters in :func:`watched_clusters`.
    replicas: tuple[ReplicaSeen, ...]
    log_flush_lag_s: float = 5.0


@dataclass(frozen=True)
class Wake:
    cluster_id: str
    reason: WakeReason
    detail: str


@dataclass(frozen=True)
class WakeDecision:
    """Fire (``wake``) or not; the conditions found, and until when the rate limit holds."""

    wake: bool
    reasons: tuple[Wake, ...]
    cursor: datetime | None
    held_until: datetime | None = None

    def to_json(self) -> JsonObject:
        return {
            "wake": self.wake,
            "cursor": None if self.cursor is None else iso(self.cursor),
            "held_until": None if self.held_until is None else iso(self.held_until),
            "reasons": [
                {"cluster_id": w.cluster_id, "reason": w.reason, "detail": w.detail}
                for w in self.reasons
            ],
        }


def watched_clusters(
    strategies: tuple[StrategyRow, ...], states: tuple[StateRow, ...]
) -> list[str]:
    """Clusters whose replicas a condition needs: suspended by idle_suspend, keeping a burst,
    or with a target_size row. The replica read covers only these (small whatever the fleet)."""
    rows = _enabled(strategies)
    out: set[str] = set()
    for cid, kinds in rows.items():
        st = _strategy_state(states, cid)
        if idle_suspend.NAME in kinds and st.get(idle_suspend.NAME, {}).get("suspended_at"):
            out.add(cid)
        if burst.NAME in kinds and st.get(burst.NAME, {}).get("started_at"):
            out.add(cid)
        if target_size.NAME in kinds:
            out.add(cid)
    return sorted(out)


def decide_wake(
    facts: WakeFacts, *, min_interval_s: float = DEFAULT_MIN_INTERVAL_S
) -> WakeDecision:
    """The conditions that hold now, and whether the rate limit lets the trigger fire."""
    if facts.cursor is None:  # no controller tables yet: nothing is scheduled
        return WakeDecision(False, (), None)
    rows = _enabled(facts.strategies)
    replicas: dict[str, list[ReplicaSeen]] = {}
    for r in facts.replicas:
        replicas.setdefault(r.cluster_id, []).append(r)
    found: list[Wake] = []
    for cid, kinds in sorted(rows.items()):
        st = _strategy_state(facts.states, cid)
        mine = replicas.get(cid, [])
        found += _refused(facts, cid, kinds, st, mine)
        found += _hydrated(cid, kinds, st, mine)
        found += _window(facts, cid, kinds)
    if not found:
        return WakeDecision(False, (), facts.cursor)
    held_until = facts.cursor + timedelta(seconds=min_interval_s)
    if facts.now < held_until:
        return WakeDecision(False, tuple(found), facts.cursor, held_until)
    return WakeDecision(True, tuple(found), facts.cursor)


def _enabled(strategies: tuple[StrategyRow, ...]) -> dict[str, dict[str, JsonObject]]:
    """Per cluster, the newest enabled row's config object per strategy type."""
    out: dict[str, dict[str, JsonObject]] = {}
    for cid, rows in newest_rows(strategies).items():
        for row in rows:
            if row_enabled(row) and isinstance(row.config, dict):
                out.setdefault(cid, {})[row.strategy_type] = row.config
    return out


def _strategy_state(states: tuple[StateRow, ...], cid: str) -> dict[str, JsonObject]:
    row = newest_row(states, cid)
    payload = row.payload if row is not None else None
    raw = payload.get("strategies") if isinstance(payload, dict) else None
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(v, dict)}


def _refused(
    facts: WakeFacts,
    cid: str,
    kinds: dict[str, JsonObject],
    st: dict[str, JsonObject],
    replicas: list[ReplicaSeen],
) -> list[Wake]:
    config = kinds.get(idle_suspend.NAME)
    # resume defaults to on (idle_suspend's KeySpec); only an explicit false turns it off.
    if config is None or config.get("resume", True) is False or replicas:
        return []
    suspended_at = parse_ts(st.get(idle_suspend.NAME, {}).get("suspended_at"))
    at = facts.statements.get(cid)
    if suspended_at is None or at is None:
        return []
    # A row that began up to the flush lag before the suspend was not in the log when the
    # suspending cycle read it: the cycle resumes on it too (the late-row rule).
    if at <= suspended_at - timedelta(seconds=facts.log_flush_lag_s):
        return []
    return [Wake(cid, "refused_query", f"a statement at {iso(at)} on the suspended cluster")]


def _hydrated(
    cid: str, kinds: dict[str, JsonObject], st: dict[str, JsonObject], replicas: list[ReplicaSeen]
) -> list[Wake]:
    out: list[Wake] = []
    kept = st.get(burst.NAME, {})
    if burst.NAME in kinds and kept.get("started_at"):
        base = [r for r in replicas if r.name != kept.get("replica_name") and r.hydrated]
        if base:
            out.append(Wake(cid, "burst_base_hydrated", f"base replica {base[0].name!r} hydrated"))
    config = kinds.get(target_size.NAME)
    if config is not None:
        size = config.get("target_size")
        targets = [r for r in replicas if r.size == size and r.hydrated]
        others = [r for r in replicas if r.size != size]
        if targets and others:
            out.append(
                Wake(
                    cid,
                    "resize_target_hydrated",
                    f"replica {targets[0].name!r} of size {size} hydrated, "
                    f"{len(others)} of another size left",
                )
            )
    return out


def _window(facts: WakeFacts, cid: str, kinds: dict[str, JsonObject]) -> list[Wake]:
    config = kinds.get(schedule.NAME)
    cursor = facts.cursor
    if config is None or cursor is None:
        return []
    try:
        params = schedule.build(Values(config))
    except (KeyError, TypeError, ValueError):
        return []  # an invalid row: the cycle reports it, the trigger ignores it
    now = pendulum.instance(facts.now).in_tz("UTC")
    for occ in occurrences(params, now.in_tz(params.tz).date()):
        if occ.window.mode == "on" and cursor < occ.begins <= now:
            return [Wake(cid, "window_opens", f"window {occ.window.describe()} begins")]
    return []
