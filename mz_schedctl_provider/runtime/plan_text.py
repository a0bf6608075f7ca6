"""The plan (and what apply did with it) for people: one rendering, printed by the CLI and
logged by the Airflow tasks, so both say the same thing in the same words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from mz_schedctl_provider.engine.contract import apply_result_from_json, plan_from_json
from mz_schedctl_provider.engine.models import JsonObject

Level = Literal["info", "warning", "error"]


def plan_lines(
    plan_doc: JsonObject, result_doc: JsonObject | None = None
) -> list[tuple[Level, str]]:
    """(level, line) for the plan: a header; per cluster its cost, notes, findings and errors;
    one greppable line per action with cluster, action, SQL, reasons, cost and (after apply)
    outcome."""
    plan = plan_from_json(plan_doc)
    outcomes: Mapping[str, Any] = {}
    if result_doc is not None:
        outcomes = {r.action_id: r for r in apply_result_from_json(result_doc).results}
    actions = sum(len(cp.actions) for cp in plan.clusters)
    mode = "DRY RUN" if plan.dry_run else "APPLY"
    lines: list[tuple[Level, str]] = [
        (
            "info",
            f"{mode} plan for cycle {plan.cycle_id} at {plan.now.isoformat()}: "
            f"{len(plan.clusters)} cluster(s), {actions} action(s)",
        )
    ]
    for finding in plan.findings:
        lines.append(("warning", f"  {finding.severity}: {finding.message}"))
    if not plan.clusters:
        lines.append(("info", "  no clusters with enabled strategies in scope"))
    for cp in plan.clusters:
        name = cp.cluster_name
        cost = f"{cp.credits_per_hour_before:g} -> {cp.credits_per_hour_after:g} credits/h"
        count = f"{len(cp.actions)} action(s)" if cp.actions else "no actions"
        lines.append(("info", f"- {name} ({cp.cluster_id}): {cost}, {count}"))
        lines += [("info", f"  cluster={name} note: {note}") for note in cp.notes]
        for a in cp.actions:
            outcome = outcomes.get(a.id)
            status = "" if a.status == "planned" else f" ({a.status})"
            tag = f" outcome={outcome.outcome}" if outcome else ""
            delta = a.credits_per_hour_after - a.credits_per_hour_before
            failed = outcome is not None and outcome.outcome == "failed"
            error = f" error={outcome.error}" if outcome and outcome.error else ""
            lines.append(
                (
                    "error" if failed else "info",
                    f"  cluster={name} action={a.kind}{status}{tag} sql={a.sql} "
                    f"reason={'; '.join(a.reasons)} credits/h={delta:+g}{error}",
                )
            )
        for finding in cp.findings:
            level: Level = "warning" if finding.severity in ("warning", "error") else "info"
            lines.append((level, f"  cluster={name} {finding.severity}: {finding.message}"))
        lines += [("error", f"  cluster={name} ERROR: {error}") for error in cp.errors]
    if result_doc is not None and not result_doc.get("executed"):
        lines.append(("warning", f"nothing executed: {result_doc.get('reason')}"))
    return lines
