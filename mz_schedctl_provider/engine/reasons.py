"""Reason codes: the closed set of why-codes carried beside the prose.

Every Action carries ``codes`` (one per cause, in the order they were added: the strategy's
first, then the rails'), every Finding one ``code``. The prose (``reasons``, ``message``) is
for humans and may be reworded; the codes are the contract (plan documents since
schema_version 2, the audit's ``decision_ctx.codes``) and what tests assert. Like the
Kubernetes HPA's condition reasons: small, stable, documented here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

ReasonCode = Literal[
    # What strategies want (desired replicas and removals).
    "exists",
    "not_wanted",
    "wanted_size",
    "duplicate_size",
    "replaced",
    "until_replaced",
    "not_created",
    "burst",
    "burst_done",
    "burst_duplicate",
    "idle",
    "suspended",
    "resume_remembered",
    "schedule_off",
    "schedule_on",
    "crash_looping",
    "smaller_hydrated",
    "try_size",
    # Rails (safety.py) and managed clusters (managed.py).
    "name_taken",
    "last_hydrated",
    "downtime",
    "single_replica",
    "backoff",
    "rate_limit",
    "managed_suspend",
    "managed_resume",
    "resume_capped",
    "graceful_resize",
    # The approval gate (approval.py).
    "awaiting_approval",
    "approval_rejected",
    "approved",
    # Findings only.
    "system_cluster",
    "materialize_schedule",
    "materialize_auto_scaling",
    "experimental_off",
    "not_applicable",
    "stuck",
    "resize_timed_out",
    "resize_stuck",
    "state_reset",
    "schedule_refused",
    "schedule_unresolved",
    "unknown_cluster",
]

REASON_CODES: Mapping[ReasonCode, str] = {
    "exists": "an owned replica kept as it is (no strategy changed it)",
    "not_wanted": "no strategy wants this replica",
    "wanted_size": "a replica of the size a strategy wants (target_size, a schedule window)",
    "duplicate_size": "another replica of the wanted size: one is enough",
    "replaced": "retired: its replacement of the wanted size is hydrated",
    "until_replaced": "kept until its replacement of the wanted size is hydrated",
    "not_created": "a wish of another size, dropped before it was created",
    "burst": "a burst replica while no base replica is hydrated",
    "burst_done": "the burst is no longer needed (a base replica is hydrated, or none can be)",
    "burst_duplicate": "another burst replica: one is enough",
    "idle": "idle for idle_after_s: suspend",
    "suspended": "suspended, and no activity (or resume is off): stays suspended",
    "resume_remembered": "resume: a replica remembered at suspend",
    "schedule_off": "schedule: a force-off window or outside the windows: suspend",
    "schedule_on": "schedule: an on window (or its pre-warm): replicas, resumed if suspended",
    "crash_looping": "shrink_to_fit: the replica is OOM or crash looping",
    "smaller_hydrated": "shrink_to_fit: a smaller replica is hydrated",
    "try_size": "shrink_to_fit: try a size that may fit",
    "name_taken": "the wanted name is held by a replica of another size: a free name is used",
    "last_hydrated": "kept: the last hydrated replica, nothing else hydrated yet",
    "downtime": "allow_downtime: sources or sinks take one replica, replaced with downtime",
    "single_replica": "impossible without downtime: sources or sinks take one replica",
    "backoff": "deferred: backoff after a failure",
    "rate_limit": "deferred: the rate limit of actions per window is reached",
    "managed_suspend": "managed cluster: REPLICATION FACTOR -> 0 (remembered)",
    "managed_resume": "managed cluster: REPLICATION FACTOR 0 -> the remembered factor",
    "resume_capped": "managed resume capped at 1: sources or sinks take one replica",
    "graceful_resize": "managed cluster: SIZE by a graceful reconfiguration (WAIT UNTIL READY)",
    "awaiting_approval": "deferred: the approval rule holds it until a person approves it",
    "approval_rejected": "deferred: rejected; not asked again until the rejection expires",
    "approved": "approved by a person (unexpired, not used yet): runs like any action",
    "system_cluster": "a system cluster: never touched",
    "materialize_schedule": "left alone: Materialize schedules the cluster (SCHEDULE ...)",
    "materialize_auto_scaling": "left alone: Materialize's AUTO SCALING STRATEGY drives it",
    "experimental_off": "an experimental strategy, ignored without experimental=True",
    "not_applicable": "the strategy cannot act on a managed cluster",
    "stuck": "burst: the base replica did not hydrate within max_burst_s",
    "resize_timed_out": "a graceful resize timed out: backoff before it is retried",
    "resize_stuck": (
        "an unmanaged resize: the new replica is not hydrated within resize_timeout_s (both kept)"
    ),
    "state_reset": "a state row of another version: started from a fresh state",
    "schedule_refused": "schedule: not suspended (the controller's own cluster)",
    "schedule_unresolved": "schedule: the window wants replicas but none is known",
    "unknown_cluster": "a strategy row whose cluster_id is no cluster's id: ignored (a warning)",
}

ALL_CODES: tuple[ReasonCode, ...] = get_args(ReasonCode)
