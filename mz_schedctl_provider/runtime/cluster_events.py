"""Cluster events for other DAGs: what one applied cycle changed, one event per cluster whose
actions ran, with the asset URI it is emitted on (persist emits them; Airflow 3 asset events,
Airflow 2.11 dataset events, through the alias :data:`CLUSTER_EVENTS_ALIAS`).

URI: ``materialize://<host>[:<port>]/cluster/<cluster id>``; the port only when it is not
Materialize's 6875. Ids are stable (a rename keeps them); the name is in the extras, and a
cluster's id is ``SELECT id FROM mz_catalog.mz_clusters WHERE name = '<name>'``.

Event (the first that applies): ``resumed`` (no credits/h before, some after), ``suspended``
(some before, none after), ``burst_started`` / ``burst_ended`` (a burst replica created or
dropped), else ``resized``. Pure: from the plan and apply documents only."""

from __future__ import annotations

from mz_schedctl_provider.engine.contract import apply_result_from_json, plan_from_json
from mz_schedctl_provider.engine.models import Action, JsonObject

CLUSTER_EVENTS_ALIAS = "mz_schedctl_cluster_events"
DEFAULT_PORT = 6875
# What ran (already_true: the catalog was already so; it changed nothing this cycle).
_RAN = ("succeeded",)


def cluster_asset_uri(host: str, port: int | None, cluster_id: str) -> str:
    netloc = host if port in (None, DEFAULT_PORT) else f"{host}:{port}"
    return f"materialize://{netloc}/cluster/{cluster_id}"


def cluster_events(plan_doc: JsonObject, apply_doc: JsonObject | None) -> list[JsonObject]:
    """One event per cluster with at least one action that ran (none in a dry run)."""
    plan = plan_from_json(plan_doc)
    if plan.dry_run or apply_doc is None:
        return []
    result = apply_result_from_json(apply_doc)
    outcomes = {r.action_id: r.outcome for r in result.results}
    events: list[JsonObject] = []
    for cp in plan.clusters:
        ran = [a for a in cp.actions if a.status == "planned" and outcomes.get(a.id) in _RAN]
        if not ran:
            continue
        after = cp.credits_per_hour_before + sum(
            a.credits_per_hour_after - a.credits_per_hour_before for a in ran
        )
        events.append(
            {
                "event": _kind(ran, before=cp.credits_per_hour_before, after=after),
                "cluster_id": cp.cluster_id,
                "name": cp.cluster_name,
                "sizes_added": sorted({s for a in ran if (s := _added(a)) is not None}),
                "sizes_dropped": sorted(
                    {a.size for a in ran if a.kind == "drop_replica" and a.size is not None}
                ),
                "reason": ran[0].reasons[0] if ran[0].reasons else "",
                "credits_per_hour_before": cp.credits_per_hour_before,
                "credits_per_hour_after": round(after, 6),
                "actions": [a.describe() for a in ran],
                "cycle_id": plan.cycle_id,
                "at": plan.now.isoformat(),
            }
        )
    return events


def _added(action: Action) -> str | None:
    if action.kind == "create_replica":
        return action.size
    if action.kind == "alter_cluster" and action.alter is not None:
        return action.alter.size
    return None


def _kind(ran: list[Action], *, before: float, after: float) -> str:
    if before <= 0 < after:
        return "resumed"
    if after <= 0 < before:
        return "suspended"
    if any(a.strategy == "burst" and a.kind == "create_replica" for a in ran):
        return "burst_started"
    if any(a.strategy == "burst" and a.kind == "drop_replica" for a in ran):
        return "burst_ended"
    return "resized"
