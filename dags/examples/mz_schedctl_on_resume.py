"""Airflow DAG (example): run a report whenever mz-schedctl resumed a Materialize cluster.

The cycle DAG's persist task emits one asset event per changed cluster (Airflow 3 only: 2.11
emits none) on ``materialize://<host>/cluster/<cluster id>`` with extras: event (resumed,
suspended, resized, burst_started, burst_ended), name, sizes_added, sizes_dropped, reason,
credits_per_hour_before/after, actions, cycle_id. Ids are stable; find one with
``SELECT id FROM mz_catalog.mz_clusters WHERE name = 'analytics'``. Set the two values below
(or the environment variables) to your Materialize host (the connection's host, with
``:port`` unless it is 6875) and the cluster's id."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Asset, task

HOST = os.environ.get("MZ_SCHEDCTL_EXAMPLE_HOST", "materialize")
CLUSTER_ID = os.environ.get("MZ_SCHEDCTL_EXAMPLE_CLUSTER_ID", "u1")
CLUSTER = Asset(f"materialize://{HOST}/cluster/{CLUSTER_ID}")

with DAG(
    dag_id="mz_schedctl_example_on_resume",
    schedule=[CLUSTER],  # runs after each cycle that changed this cluster
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["materialize", "example"],
):

    @task.short_circuit
    def resumed(**context: Any) -> bool:
        """Go on only when the cluster serves again (not on a suspend or a resize)."""
        events = (
            context["triggering_asset_events"]
            if "triggering_asset_events" in context
            else context["triggering_dataset_events"]
        )
        extras = [e.extra for evs in events.values() for e in evs]
        print(f"cluster events: {extras}")
        return any(x.get("event") == "resumed" for x in extras)

    @task
    def report() -> None:
        print(f"cluster {CLUSTER_ID} serves again: running the report")

    resumed() >> report()
