"""The rows and results apply writes: an audit record of an action (intent or outcome, with
the SQL apply renders itself, never the plan's text) and the per-action results."""

from __future__ import annotations

from mz_schedctl_provider.engine.models import (
    Action,
    ActionResult,
    ApplyResult,
    JsonValue,
    Outcome,
    Plan,
)
from mz_schedctl_provider.runtime.ddl import render
from mz_schedctl_provider.runtime.store import AuditRecord


def record(
    plan: Plan,
    action: Action,
    *,
    phase: str,
    executed: bool | None,
    note: str | None = None,
    error: str | None = None,
) -> AuditRecord:
    context: dict[str, JsonValue] = {
        "cycle_id": plan.cycle_id,
        "cluster_name": action.cluster_name,
        "strategy": action.strategy,
        "kind": action.kind,
        "replica": action.replica_name,
        "size": action.size,
        **({"alter": action.alter.describe()} if action.alter is not None else {}),
        "phase": phase,
        "reasons": list(action.reasons),
        "codes": list(action.codes),
        "dry_run": plan.dry_run,
        "credits_per_hour_before": action.credits_per_hour_before,
        "credits_per_hour_after": action.credits_per_hour_after,
    }
    if note:
        context["note"] = note
    return AuditRecord(
        action_id=action.id,
        cluster_id=action.cluster_id,
        # What apply renders, never the plan's own text (which an edited XCom could change).
        action_sql=safe_render(action),
        context=context,
        executed=executed,
        error_message=error,
    )


def safe_render(action: Action) -> str | None:
    try:
        return render(action)
    except ValueError:
        return None


def result(action: Action, outcome: Outcome, error: str | None = None) -> ActionResult:
    return ActionResult(
        action_id=action.id,
        cluster_id=action.cluster_id,
        outcome=outcome,
        error=error if outcome == "failed" else None,
    )


def not_executed(plan: Plan, reason: str) -> ApplyResult:
    return ApplyResult(
        cycle_id=plan.cycle_id,
        executed=False,
        reason=reason,
        results=tuple(result(a, "not_executed") for a in plan.actions()),
    )
