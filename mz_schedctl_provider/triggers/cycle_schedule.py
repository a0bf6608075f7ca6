"""The cycle DAG's schedule: its cron, or on Airflow 3 "cron or event, whichever comes first"
(an AssetOrTimeSchedule whose asset has the event trigger as its watcher). Airflow 2.11 has no
asset watchers: the cron schedule only.

The watched asset is ``materialize://<conn_id>/schedctl/cycle-events``: one per connection,
events only (nothing writes it). No engine and no driver imported: this runs at DAG parse."""

from __future__ import annotations

from typing import Any

from mz_schedctl_provider.settings import setting
from mz_schedctl_provider.triggers.events import MaterializeCycleEventTrigger

EVENTS_ASSET_NAME = "mz_schedctl_cycle_events"


def airflow_major() -> int:
    from airflow import __version__

    return int(__version__.split(".")[0])


def events_asset_uri(conn_id: str) -> str:
    return f"materialize://{conn_id}/schedctl/cycle-events"


def cycle_schedule(cron: Any, *, conn_id: str, events: bool | None = None) -> Any:
    """``cron`` (text, or anything DAG(schedule=) takes) or, with events on Airflow 3 and a
    cron text, the cron or the event trigger's asset, whichever comes first. None stays None
    (manual runs only: events do not start a DAG nobody scheduled). ``events`` None, and the
    trigger's intervals: Airflow's ``[mz_schedctl]`` settings."""
    if events is None:
        events = setting("events").strip().lower() in ("true", "1", "yes", "on")
    if not events or cron is None or not isinstance(cron, str) or airflow_major() < 3:
        return cron
    if "{{" in conn_id:  # a templated connection id cannot be resolved in the triggerer
        return cron
    from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher, CronTriggerTimetable

    trigger = MaterializeCycleEventTrigger(
        materialize_conn_id=conn_id,
        poll_interval=float(setting("event_poll_interval_s")),
        min_interval_s=float(setting("event_min_interval_s")),
    )
    asset = Asset(
        name=EVENTS_ASSET_NAME
        if conn_id == "materialize_default"
        else f"{EVENTS_ASSET_NAME}_{conn_id}",
        uri=events_asset_uri(conn_id),
        watchers=[AssetWatcher(name="mz_schedctl_cycle_events", trigger=trigger)],
    )
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=asset)
