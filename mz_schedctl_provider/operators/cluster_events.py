"""Persist's cluster events for other DAGs (runtime/cluster_events.py says what changed): one
asset event per changed cluster, on ``materialize://<host>/cluster/<id>``, added through the
alias :data:`CLUSTER_EVENTS_ALIAS` that the cycle DAG's persist task declares as its outlet.

Airflow 3: asset events (``outlet_events[AssetAlias(...)].add(Asset(uri), extra=...)``).
Airflow 2.11: none by default (see :func:`cluster_event_outlets`); a DAG of your own that
declares the alias gets dataset events (DatasetAlias, Dataset) with list extras as
comma-separated text (Airflow 2 freezes them into a set). A DAG scheduled on
``Asset("materialize://<host>/cluster/<id>")`` (Dataset on 2.11) runs after each cycle that
changed that cluster; its ``triggering_asset_events`` carry the extras."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import Asset, AssetAlias

CLUSTER_EVENTS_ALIAS = "mz_schedctl_cluster_events"


def cluster_event_outlets() -> list[Any]:
    """The persist task's outlets: the alias on Airflow 3. None on Airflow 2.11: there a
    dataset alias only works once the DAG processor registered it (``dag.test()`` fails the
    task after it ran: "Can't flush None value found in collection DatasetModel.aliases"), so
    2.11 emits no dataset events; persist's XCom ``cluster_events`` carries the same."""
    from airflow import __version__ as airflow_version

    if int(airflow_version.split(".")[0]) < 3:
        return []
    return [AssetAlias(CLUSTER_EVENTS_ALIAS)]


def declares_alias(outlets: Any) -> bool:
    return any(isinstance(o, AssetAlias) and o.name == CLUSTER_EVENTS_ALIAS for o in outlets or ())


def emit_cluster_events(
    *, outlets: Any, context: Any, plan: dict[str, Any], apply_doc: Any, hook: Any, log: Any
) -> list[dict[str, Any]]:
    """Add the cycle's cluster events to the task's alias outlet; returns them (also when the
    task declares no such outlet: then nothing is emitted)."""
    from mz_schedctl_provider.runtime.cluster_events import cluster_asset_uri, cluster_events

    events = cluster_events(plan, apply_doc if isinstance(apply_doc, dict) else None)
    outlet_events = context.get("outlet_events")
    if not events or outlet_events is None or not declares_alias(outlets):
        return events
    from airflow import __version__ as airflow_version

    # Airflow 2 freezes a dataset alias event's extras into a set: values must be hashable.
    flat = int(airflow_version.split(".")[0]) < 3
    conn = hook.get_connection(hook.materialize_conn_id)
    alias = outlet_events[AssetAlias(CLUSTER_EVENTS_ALIAS)]
    for event in events:
        uri = cluster_asset_uri(conn.host or "localhost", conn.port, str(event["cluster_id"]))
        event["uri"] = uri
        extra = {
            k: ", ".join(map(str, v)) if flat and isinstance(v, list) else v
            for k, v in event.items()
        }
        alias.add(Asset(uri), extra=extra)
        log.info("Cluster event %s: %s (%s)", event["event"], event["name"], uri)
    return events
