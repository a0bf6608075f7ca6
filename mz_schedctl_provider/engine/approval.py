"""The approval gate, pure: which planned actions wait for a person, and which run by approval.

Off by default. A rule (``ApprovalRule``) names what waits: any drop, any managed resize, an
action whose own cost increase is over N credits/h. Decide asks :func:`needs_approval` for
each planned action; one that waits runs only with an approval of the same action
(:func:`fingerprint`: stable across cycles) that is unexpired at the plan's server ``now``,
else it is ``deferred`` (``awaiting_approval``, or ``approval_rejected`` while a rejection
holds). An approved action stays planned and goes through the executor's re-checks like any.

**Restores service never waits**: an action on a cluster that is not serving now (no hydrated
replica; for a managed cluster also REPLICATION FACTOR 0) that creates a replica or raises the
replication factor (a resume, a restore, a burst while nothing is hydrated). That test comes
first, so no rule can hold a resume back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from .facts import iso, replica_hydrated
from .models import Action, Approval, Cluster, ClusterPlan

DEFAULT_TIMEOUT_S = 3600.0
# Setting names (Airflow's [mz_schedctl] section), in the order the errors name them.
SETTING_KEYS = (
    "approve_drops",
    "approve_managed_resizes",
    "approve_cost_increase_over",
    "approval_timeout_s",
)
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")

# Why an action waits or not (the verdict's code, like the HPA's condition reasons).
VerdictCode = Literal["restores_service", "drop", "managed_resize", "cost_increase", "no_rule"]


class ApprovalRuleError(ValueError):
    """A setting of the approval gate that cannot be read; the message names the setting."""


@dataclass(frozen=True)
class ApprovalRule:
    """What waits for a person. ``cost_increase_over``: credits/h of one action's own increase
    (its ``credits_per_hour_after - credits_per_hour_before``), strictly over which it waits;
    None: cost never makes an action wait. ``timeout_s``: a request expires this long after it
    was asked (server time); no answer by then means rejected."""

    drops: bool = False
    managed_resizes: bool = False
    cost_increase_over: float | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def on(self) -> bool:
        return self.drops or self.managed_resizes or self.cost_increase_over is not None


@dataclass(frozen=True)
class Verdict:
    """Whether one action waits for approval, with a code and a message for people."""

    waits: bool
    code: VerdictCode
    message: str


def _flag(key: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ApprovalRuleError(f"{key}: expected true or false, got {text!r}")


def _number(key: str, text: str, *, positive: bool) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ApprovalRuleError(f"{key}: expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ApprovalRuleError(f"{key}: expected a finite number, got {text!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ApprovalRuleError(f"{key}: expected a number {bound}, got {text!r}")
    return value


def parse_rule(settings: Mapping[str, object]) -> ApprovalRule | None:
    """The rule from its settings as text (``approve_drops``, ``approve_managed_resizes``,
    ``approve_cost_increase_over``, ``approval_timeout_s``; missing or empty: off / default);
    None when nothing is gated. Raises ApprovalRuleError naming the setting at fault."""
    unknown = sorted(set(settings) - set(SETTING_KEYS))
    if unknown:
        raise ApprovalRuleError(f"unknown approval setting(s): {', '.join(unknown)}")

    def text(key: str) -> str:
        value = settings.get(key)
        return "" if value is None else str(value)

    cost = text("approve_cost_increase_over").strip()
    timeout = text("approval_timeout_s").strip()
    rule = ApprovalRule(
        drops=_flag("approve_drops", text("approve_drops")),
        managed_resizes=_flag("approve_managed_resizes", text("approve_managed_resizes")),
        cost_increase_over=(
            _number("approve_cost_increase_over", cost, positive=False) if cost else None
        ),
        timeout_s=(
            _number("approval_timeout_s", timeout, positive=True) if timeout else DEFAULT_TIMEOUT_S
        ),
    )
    return rule if rule.on else None


def fingerprint(action: Action) -> str:
    """The same action across cycles (never the per-cycle action id): cluster, kind, replica
    name and size, the observed replica id of a drop (a recreated namesake is another
    replica), and what an ALTER CLUSTER sets."""
    alter = action.alter
    parts = [
        action.cluster_id,
        action.kind,
        action.replica_name,
        action.size or "",
        (action.replica_id or "") if action.kind == "drop_replica" else "",
        "" if alter is None else f"{alter.size}|{alter.replication_factor}|{alter.wait}",
        "" if alter is None or alter.timeout_s is None else f"{alter.timeout_s:g}",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def serving(cluster: Cluster) -> bool:
    """Whether the cluster serves queries now: a hydrated replica (and, if managed, a factor
    above 0)."""
    if cluster.managed and cluster.current_replication_factor == 0:
        return False
    return any(replica_hydrated(cluster=cluster, replica=r)[0] for r in cluster.replicas)


def restores_service(action: Action, cluster: Cluster) -> bool:
    """A create or a raised replication factor on a cluster that is not serving now."""
    if serving(cluster):
        return False
    if action.kind == "create_replica":
        return True
    alter = action.alter
    return (
        action.kind == "alter_cluster"
        and alter is not None
        and alter.replication_factor is not None
        and alter.replication_factor > cluster.current_replication_factor
    )


def needs_approval(action: Action, *, cluster: Cluster, rule: ApprovalRule) -> Verdict:
    """Whether this (priced) action must wait for a person under ``rule``.

    A drop: ``drop_replica``, or an ALTER CLUSTER that lowers the replication factor (Materialize
    drops replicas). A managed resize: an ALTER CLUSTER that sets another SIZE. A cost increase:
    the action's own credits/h delta, strictly over ``cost_increase_over``."""
    if restores_service(action, cluster):
        return Verdict(False, "restores_service", "restores service: never waits")
    alter = action.alter
    lowers = (
        alter is not None
        and alter.replication_factor is not None
        and alter.replication_factor < cluster.current_replication_factor
    )
    if rule.drops and (action.kind == "drop_replica" or lowers):
        return Verdict(True, "drop", "a drop (approve_drops)")
    resizes = alter is not None and alter.size is not None and alter.size != cluster.size
    if rule.managed_resizes and action.kind == "alter_cluster" and resizes:
        return Verdict(True, "managed_resize", "a managed resize (approve_managed_resizes)")
    delta = action.credits_per_hour_after - action.credits_per_hour_before
    if rule.cost_increase_over is not None and delta > rule.cost_increase_over:
        return Verdict(
            True,
            "cost_increase",
            f"a cost increase of {delta:g} credits/h, over "
            f"{rule.cost_increase_over:g} (approve_cost_increase_over)",
        )
    return Verdict(False, "no_rule", "no approval rule matches")


def live(approval: Approval, now: datetime) -> bool:
    """Counts at ``now`` (server time): before its expires_at, exactly then it has expired."""
    return approval.status in ("pending", "approved", "rejected") and now < approval.expires_at


def _who(approval: Approval) -> str:
    at = f" at {iso(approval.decided_at)}" if approval.decided_at is not None else ""
    return f"{approval.decided_by or 'someone'}{at}"


def gate_action(
    action: Action, *, verdict: Verdict, approvals: Iterable[Approval], now: datetime
) -> Action:
    """The action after the gate: as it is when it does not wait; planned with its approval
    (who, when) when approved; else deferred, naming the request it waits on (if asked)."""
    if not verdict.waits:
        return action
    mine = [a for a in approvals if live(a, now)]
    by_status = {a.status: a for a in sorted(mine, key=lambda a: a.expires_at)}
    approved = by_status.get("approved")
    if approved is not None:
        return replace(
            action,
            reasons=(*action.reasons, f"approved by {_who(approved)} ({approved.request_id})"),
            codes=(*action.codes, "approved"),
            approval_id=approved.request_id,
        )
    rejected = by_status.get("rejected")
    if rejected is not None:
        return replace(
            action,
            status="deferred",
            reasons=(
                *action.reasons,
                f"rejected by {_who(rejected)}: not asked again until {iso(rejected.expires_at)}",
            ),
            codes=(*action.codes, "approval_rejected"),
            approval_id=rejected.request_id,
        )
    pending = by_status.get("pending")
    asked = f" (request {pending.request_id})" if pending is not None else ""
    # Its cost once approved (a deferred action is priced at nothing): what the person weighs.
    delta = action.credits_per_hour_after - action.credits_per_hour_before
    return replace(
        action,
        status="deferred",
        reasons=(
            *action.reasons,
            f"awaiting approval: {verdict.message}{asked}; if approved: {delta:+g} credits/h",
        ),
        codes=(*action.codes, "awaiting_approval"),
        approval_id=pending.request_id if pending is not None else None,
    )


def gate_plan(
    plan: ClusterPlan,
    *,
    cluster: Cluster,
    rule: ApprovalRule,
    approvals: Iterable[Approval],
    now: datetime,
    reprice: Callable[..., list[Action]],
) -> ClusterPlan:
    """One cluster's plan through the gate; ``reprice`` recomputes the running credits/h once
    an action waits (a deferred action costs nothing)."""
    mine = [a for a in approvals if a.cluster_id == plan.cluster_id]
    out: list[Action] = []
    notes: list[str] = []
    for action in plan.actions:
        if action.status != "planned":
            out.append(action)
            continue
        verdict = needs_approval(action, cluster=cluster, rule=rule)
        key = fingerprint(action)
        gated = gate_action(
            action, verdict=verdict, approvals=[a for a in mine if a.fingerprint == key], now=now
        )
        if gated.status != action.status:
            notes.append(f"approval: {action.describe()} waits: {gated.reasons[-1]}")
        elif "approved" in gated.codes and "approved" not in action.codes:
            notes.append(f"approval: {action.describe()} runs: {gated.reasons[-1]}")
        out.append(gated)
    if not notes:
        return plan
    priced = reprice(actions=out)
    after = priced[-1].credits_per_hour_after if priced else plan.credits_per_hour_before
    return replace(
        plan,
        actions=tuple(priced),
        credits_per_hour_after=after,
        notes=(*plan.notes, *notes),
    )
