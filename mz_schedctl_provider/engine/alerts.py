"""One alert per problem: which of a cycle's problems fail its run.

A failed action fails its run every time (it is an event of that run). A persisting condition
(an invalid strategy row, a stuck cluster, a resize that keeps timing out) fails the first run
that sees it, then again only once the re-alert interval has passed since its last alert, on
the server's clock (the plan's ``now``); every run lists it. What was alerted is remembered in
the controller's alerts table (a memory separate from the state rows, so wipe-state or a lost
state row costs no extra alert; a lost alert row costs at most one).

Pure: the problems, what is remembered and ``now`` in; the decisions and the rows to remember
out (``now`` is an argument, as everywhere in the engine).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .facts import iso, seconds_between
from .models import ApplyResult, Plan

REALERT_INTERVAL_S = 3600.0

AlertCode = Literal["failed_action", "first_seen", "realert_due", "alerted_recently"]


@dataclass(frozen=True)
class Problem:
    """Something a human must look at, found by one cycle.

    :param key: the same for the same problem in every cycle (cluster id, what kind, and for
        a config error a digest of its message; never a duration or a count that changes).
    :param cluster_id: the cluster it is about (None: about no single cluster).
    :param message: what to tell a human, prefixed by the cluster name.
    :param every_time: a failed action: alerts in every run it happens in.
    """

    key: str
    cluster_id: str | None
    message: str
    every_time: bool = False


@dataclass(frozen=True)
class AlertMemory:
    """The newest alerts-table row of one problem key."""

    key: str
    cluster_id: str | None
    first_seen: datetime
    last_alerted: datetime
    open: bool  # False: the problem was gone in a later cycle (the next sighting alerts)
    message: str = ""


@dataclass(frozen=True)
class AlertDecision:
    """Whether one problem fails this run, with the reason as a code and a sentence."""

    problem: Problem
    alert: bool
    code: AlertCode
    why: str
    first_seen: datetime
    next_alert_at: datetime | None  # None: alerts every time (a failed action)


def problems(plan: Plan, result: ApplyResult | None) -> list[Problem]:
    """Every problem of the cycle: each cluster's errors (invalid config; error findings such
    as stuck or resize timed out), then each failed action."""
    found: list[Problem] = []
    for cp in plan.clusters:
        coded = {f.message: f for f in cp.findings if f.severity == "error"}
        for error in cp.errors:
            finding = coded.get(error)
            if finding is not None:
                what = f"{finding.code or finding.kind}:{finding.strategy or ''}"
            else:
                # Config errors name cluster, strategy and key in stable words: their text is
                # the identity (a different mistake is a different problem).
                what = "config:" + hashlib.sha256(error.encode()).hexdigest()[:12]
            found.append(
                Problem(f"{cp.cluster_id}:{what}", cp.cluster_id, f"{cp.cluster_name}: {error}")
            )
    if result is not None:
        names = {c.cluster_id: c.cluster_name for c in plan.clusters}
        by_id = {a.id: a for a in plan.actions()}
        for r in result.results:
            if r.outcome != "failed":
                continue
            action = by_id.get(r.action_id)
            what = action.describe() if action else r.action_id
            name = names.get(r.cluster_id, r.cluster_id)
            found.append(
                Problem(
                    key=f"{r.cluster_id}:failed:{r.action_id}",
                    cluster_id=r.cluster_id,
                    message=f"{name}: {what} failed: {r.error}",
                    every_time=True,
                )
            )
    return found


def decide_alert(
    problem: Problem, memory: AlertMemory | None, *, now: datetime, interval_s: float
) -> AlertDecision:
    """One problem: alert now, or say when it was alerted and when it will be again."""
    if problem.every_time:
        return AlertDecision(
            problem, True, "failed_action", "a failed action fails its run", now, None
        )
    if memory is None or not memory.open:
        next_at = now + timedelta(seconds=interval_s)
        why = f"first seen at {iso(now)}; alerted again from {iso(next_at)} while it lasts"
        return AlertDecision(problem, True, "first_seen", why, now, next_at)
    due_at = memory.last_alerted + timedelta(seconds=interval_s)
    if seconds_between(memory.last_alerted, now) >= interval_s:
        next_at = now + timedelta(seconds=interval_s)
        why = (
            f"still there since {iso(memory.first_seen)}; last alerted at "
            f"{iso(memory.last_alerted)}, re-alert interval {interval_s:g}s passed"
        )
        return AlertDecision(problem, True, "realert_due", why, memory.first_seen, next_at)
    why = (
        f"still there since {iso(memory.first_seen)}; alerted at {iso(memory.last_alerted)}, "
        f"next alert at {iso(due_at)} if it lasts"
    )
    return AlertDecision(problem, False, "alerted_recently", why, memory.first_seen, due_at)


def decide_alerts(
    found: Iterable[Problem],
    remembered: Mapping[str, AlertMemory],
    *,
    now: datetime,
    in_scope: Iterable[str] | None,
    interval_s: float = REALERT_INTERVAL_S,
) -> tuple[list[AlertDecision], list[AlertMemory]]:
    """Decisions for every problem, and the alerts-table rows to write: one per alert sent and
    one "closed" row per remembered open problem that this cycle no longer sees, when its
    cluster was in this cycle's scope (``in_scope``: cluster ids; None: every cluster), so the
    next time it happens alerts at once."""
    decisions = [
        decide_alert(p, remembered.get(p.key), now=now, interval_s=interval_s) for p in found
    ]
    rows = [
        AlertMemory(d.problem.key, d.problem.cluster_id, d.first_seen, now, True, d.problem.message)
        for d in decisions
        if d.alert and not d.problem.every_time
    ]
    seen = {d.problem.key for d in decisions}
    scope = None if in_scope is None else set(in_scope)
    for key, memory in sorted(remembered.items()):
        if not memory.open or key in seen:
            continue
        if scope is not None and (memory.cluster_id is None or memory.cluster_id not in scope):
            continue
        rows.append(
            AlertMemory(
                key,
                memory.cluster_id,
                memory.first_seen,
                memory.last_alerted,
                False,
                memory.message,
            )
        )
    return decisions, rows


def newest_memories(
    rows: Iterable[AlertMemory], recorded: Iterable[datetime]
) -> dict[str, AlertMemory]:
    """The newest row per key (rows are appended, never updated: Materialize's tables take one
    write statement per transaction, so a key's history is its rows in recording order)."""
    newest: dict[str, tuple[datetime, AlertMemory]] = {}
    for row, at in zip(rows, recorded, strict=True):
        kept = newest.get(row.key)
        if kept is None or at >= kept[0]:
            newest[row.key] = (at, row)
    return {k: v[1] for k, v in newest.items()}
