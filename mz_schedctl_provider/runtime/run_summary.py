"""What one cycle did, for people: its kind, the actions run, failed and deferred, the fleet's
credits/h before and after and per changed cluster, and its problems with whether each
alerted. Persist returns it (the run's summary XCom) and logs it; the preview DAG returns the
same for its dry run.

Kinds: ``dry_run``; ``held_back`` (the kill switch); ``lease_held`` (another cycle holds the
lease); ``apply_failed`` (apply did not finish); ``failed_actions`` (an action failed);
``applied`` (at least one action ran); ``nothing_to_do`` (none ran: no action planned, or
every planned one was already true or deferred)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from mz_schedctl_provider.engine.contract import apply_result_from_json, plan_from_json
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime.cycle import HELD_BACK_REASON, LEASE_HELD_PREFIX

SUMMARY_SCHEMA_VERSION = 1

Kind = Literal[
    "dry_run",
    "held_back",
    "lease_held",
    "apply_failed",
    "failed_actions",
    "applied",
    "nothing_to_do",
]
# An action that changed something (already_true: the catalog was already so).
RAN = ("succeeded", "already_true")


def run_kind(plan_doc: JsonObject, apply_doc: JsonObject | None) -> Kind:
    """The cycle's kind from its plan and apply result (None: apply did not finish)."""
    if plan_doc.get("dry_run"):
        return "dry_run"
    if apply_doc is None:
        return "apply_failed"
    if not apply_doc.get("executed"):
        reason = str(apply_doc.get("reason") or "")
        if reason == HELD_BACK_REASON:
            return "held_back"
        if reason.startswith(LEASE_HELD_PREFIX):
            return "lease_held"
        return "apply_failed"
    outcomes = [str(r.get("outcome")) for r in apply_doc.get("results") or []]
    if "failed" in outcomes:
        return "failed_actions"
    if "succeeded" in outcomes:
        return "applied"
    return "nothing_to_do"


def summary(
    plan_doc: JsonObject,
    apply_doc: JsonObject | None,
    outcome_doc: JsonObject | None = None,
) -> JsonObject:
    """The summary document (see the module docstring)."""
    plan = plan_from_json(plan_doc)
    result = apply_result_from_json(apply_doc) if apply_doc is not None else None
    outcomes = {r.action_id: r for r in (result.results if result else ())}
    kind = run_kind(plan_doc, apply_doc)
    counts: Counter[str] = Counter()
    before = after = planned_after = 0.0
    changed: list[JsonObject] = []
    for cp in plan.clusters:
        before += cp.credits_per_hour_before
        planned_after += cp.credits_per_hour_after
        now = cp.credits_per_hour_before
        done: list[str] = []
        ran = False
        for a in cp.actions:
            r = outcomes.get(a.id)
            if a.status != "planned":
                counts[a.status] += 1
                continue
            got = r.outcome if r is not None else "not_executed"
            counts[{"succeeded": "ran"}.get(got, got)] += 1
            if got in RAN:
                ran = True
                now += a.credits_per_hour_after - a.credits_per_hour_before
            if got != "not_executed":
                done.append(f"{a.describe()} {got}")
        after += now
        if done:
            changed.append(
                {
                    "cluster": cp.cluster_name,
                    "cluster_id": cp.cluster_id,
                    "credits_per_hour_before": cp.credits_per_hour_before,
                    "credits_per_hour_after": now,
                    "actions": done,
                    "ran": ran,
                }
            )
    alerts: list[Any] = list((outcome_doc or {}).get("alerts") or [])
    problems = [
        {"message": a["message"], "alerted": bool(a["alert"]), "why": a["why"]} for a in alerts
    ]
    if outcome_doc is not None:
        known = {p["message"] for p in problems}
        problems += [
            {"message": m, "alerted": True, "why": "this run"}
            for m in outcome_doc.get("problems") or []
            if m not in known
        ]
    doc: JsonObject = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "kind": kind,
        "cycle_id": plan.cycle_id,
        "now": plan.now.isoformat(),
        "reason": None if result is None or result.executed else result.reason,
        "actions": {
            "planned": sum(len(cp.actions) for cp in plan.clusters),
            "ran": counts["ran"],
            "already_true": counts["already_true"],
            "failed": counts["failed"],
            "not_executed": counts["not_executed"],
            "deferred": counts["deferred"],
            "shadow": counts["shadow"],
        },
        "credits_per_hour": {
            "before": before,
            "after": after if kind != "dry_run" else before,
            "planned_after": planned_after,
        },
        "changed_clusters": changed,
        "problems": problems,
        "states_written": int((outcome_doc or {}).get("states_written") or 0),
    }
    doc["headline"] = headline(doc)
    return doc


def headline(doc: JsonObject) -> str:
    """One line: kind, action counts, the fleet's credits/h, problems."""
    n: dict[str, int] = doc["actions"]
    cph: dict[str, float] = doc["credits_per_hour"]
    kind = str(doc["kind"])
    if kind == "dry_run":
        text = (
            f"dry run: {n['planned']} action(s) planned, nothing executed; fleet "
            f"{cph['before']:g} -> {cph['planned_after']:g} credits/h if applied"
        )
    elif kind in ("held_back", "lease_held", "apply_failed"):
        text = (
            f"{kind.replace('_', ' ')}: {n['planned']} action(s) planned, nothing executed"
            f" ({doc['reason'] or 'apply did not finish'})"
        )
    else:
        clusters = sum(1 for c in doc["changed_clusters"] if c["ran"])
        text = (
            f"{kind.replace('_', ' ')}: {n['ran']} action(s) ran on {clusters} cluster(s), "
            f"{n['failed']} failed, {n['deferred']} deferred, {n['not_executed']} not executed; "
            f"fleet {cph['before']:g} -> {cph['after']:g} credits/h"
        )
    problems = doc["problems"]
    if problems:
        alerted = sum(1 for p in problems if p["alerted"])
        text += f"; {len(problems)} problem(s), {alerted} alerting this run"
    return text


def summary_lines(doc: JsonObject) -> list[tuple[Literal["info", "warning", "error"], str]]:
    """The summary for a log or a terminal: the headline, the changed clusters, the problems
    (each once, with whether it alerted and why)."""
    lines: list[tuple[Literal["info", "warning", "error"], str]] = [
        ("info", f"Summary: {doc['headline']}")
    ]
    for c in doc["changed_clusters"]:
        lines.append(
            (
                "info",
                f"  {c['cluster']}: {c['credits_per_hour_before']:g} -> "
                f"{c['credits_per_hour_after']:g} credits/h: {'; '.join(c['actions'])}",
            )
        )
    for p in doc["problems"]:
        tag = "ALERT" if p["alerted"] else "still open"
        lines.append(
            ("error" if p["alerted"] else "warning", f"  {tag}: {p['message']} ({p['why']})")
        )
    return lines
