"""The plan (and what apply did with it) for people: one rendering, printed by the CLI and
logged by the Airflow tasks, so both say the same thing in the same words.

A header line with the fleet's cost; per cluster with something to say, a heading and a
compact table, one line per action (cluster, action, replica, size, credits/h, status, reason,
SQL), then its notes, findings and errors; a cluster with nothing to do in one line. In
Airflow's log the clusters fold (``::group::``/``::endgroup::`` markers, which Airflow 2.9+
and 3 render as collapsible sections)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mz_schedctl_provider.engine.contract import apply_result_from_json, plan_from_json
from mz_schedctl_provider.engine.models import ClusterPlan, JsonObject

Level = Literal["info", "warning", "error"]
COLUMNS = ("cluster", "action", "replica", "size", "credits/h", "status", "reason", "sql")


def plan_lines(
    plan_doc: JsonObject, result_doc: JsonObject | None = None, *, fold: bool = False
) -> list[tuple[Level, str]]:
    """(level, line) for the plan; ``fold`` adds Airflow's log-group markers per cluster."""
    plan = plan_from_json(plan_doc)
    outcomes: Mapping[str, Any] = {}
    if result_doc is not None:
        outcomes = {r.action_id: r for r in apply_result_from_json(result_doc).results}
    actions = sum(len(cp.actions) for cp in plan.clusters)
    before = sum(cp.credits_per_hour_before for cp in plan.clusters)
    after = sum(cp.credits_per_hour_after for cp in plan.clusters)
    mode = "DRY RUN" if plan.dry_run else "APPLY"
    lines: list[tuple[Level, str]] = [
        (
            "info",
            f"{mode} plan for cycle {plan.cycle_id} at {plan.now.isoformat()}: "
            f"{len(plan.clusters)} cluster(s), {actions} action(s), "
            f"fleet {before:g} -> {after:g} credits/h",
        )
    ]
    for finding in plan.findings:
        lines.append(("warning", f"  {finding.severity}: {finding.message}"))
    if not plan.clusters:
        lines.append(("info", "  no clusters with enabled strategies in scope"))
    elif actions == 0 and not any(cp.errors for cp in plan.clusters):
        lines.append(("info", "  nothing to do"))
    for cp in plan.clusters:
        heading = (
            f"{cp.cluster_name} ({cp.cluster_id}): {cp.credits_per_hour_before:g} -> "
            f"{cp.credits_per_hour_after:g} credits/h, "
            + (f"{len(cp.actions)} action(s)" if cp.actions else "nothing to do")
            + (f", {len(cp.errors)} problem(s)" if cp.errors else "")
        )
        body = _cluster_lines(cp, outcomes)
        if fold:
            lines += [("info", f"::group::{heading}"), *body, ("info", "::endgroup::")]
        elif _quiet(cp):
            # Nothing to do and nothing to warn about: one line, its notes after it.
            lines.append(
                ("info", f"- {heading}: " + " | ".join(cp.notes) if cp.notes else f"- {heading}")
            )
        else:
            lines += [("info", f"- {heading}"), *body]
    if result_doc is not None and not result_doc.get("executed"):
        lines.append(("warning", f"nothing executed: {result_doc.get('reason')}"))
    return lines


def _quiet(cp: ClusterPlan) -> bool:
    return not cp.actions and not cp.errors and all(f.severity == "info" for f in cp.findings)


def _cluster_lines(cp: ClusterPlan, outcomes: Mapping[str, Any]) -> list[tuple[Level, str]]:
    rows: list[tuple[Level, Sequence[str]]] = []
    for a in cp.actions:
        outcome = outcomes.get(a.id)
        # A deferred, shadow or skipped action keeps its status (apply only says not_executed).
        status = a.status if outcome is None or a.status != "planned" else outcome.outcome
        if outcome is not None and outcome.error:
            status += f" ({outcome.error})"
        delta = a.credits_per_hour_after - a.credits_per_hour_before
        what = a.replica_name or (a.alter.describe() if a.alter else "")
        size = a.size or ""
        level: Level = "error" if outcome is not None and outcome.outcome == "failed" else "info"
        rows.append(
            (
                level,
                (
                    cp.cluster_name,
                    a.kind,
                    what,
                    size,
                    f"{delta:+g}",
                    status,
                    "; ".join(a.reasons),
                    a.sql or "",
                ),
            )
        )
    lines: list[tuple[Level, str]] = []
    if rows:
        lines += [(lvl, "  " + text) for lvl, text in table(COLUMNS, rows)]
    lines += [("info", f"  note: {note}") for note in cp.notes]
    for finding in cp.findings:
        flevel: Level = "warning" if finding.severity in ("warning", "error") else "info"
        lines.append((flevel, f"  {finding.severity}: {finding.message}"))
    lines += [("error", f"  PROBLEM: {error}") for error in cp.errors]
    return lines


def table(
    header: Sequence[str], rows: Sequence[tuple[Level, Sequence[str]]]
) -> list[tuple[Level, str]]:
    """Aligned columns (the last one unpadded, it may be long): the header, then each row."""
    widths = [max(len(header[i]), *(len(r[i]) for _l, r in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return [("info", line(header)), *((lvl, line(cells)) for lvl, cells in rows)]
