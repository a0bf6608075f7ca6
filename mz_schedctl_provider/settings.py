"""The provider's settings, each defined once: Airflow's ``[mz_schedctl]`` config section
(``airflow.cfg`` or ``AIRFLOW__MZ_SCHEDCTL__<OPTION>``), then the older ``MZ_SCHEDCTL_<OPTION>``
environment variable, then the built-in default.

The same table feeds the provider info's ``config`` section (so ``airflow config list`` shows
``[mz_schedctl]``) and :func:`setting`, the one reader. The section's declared defaults are
empty on purpose: a non-empty provider default would always win over the old environment
variables, which are kept as fallbacks for existing deployments.

No Airflow import at module level: ``provider_info`` (loaded by every Airflow process) and the
main venv without Airflow import this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

SECTION = "mz_schedctl"


@dataclass(frozen=True)
class Setting:
    """One option of ``[mz_schedctl]``."""

    key: str
    env: str  # the older environment variable, read when the option is empty
    default: str
    type: str  # Airflow's config option type: string, integer, float
    description: str
    example: str


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting(
            key="schedule",
            env="MZ_SCHEDCTL_SCHEDULE",
            default="*/2 * * * *",
            type="string",
            description="Schedule of the mz_schedctl_cycle DAG: a cron expression or preset; "
            "none, manual or off for manual runs only. Read at DAG parse time.",
            example="*/5 * * * *",
        ),
        Setting(
            key="conn_id",
            env="MZ_SCHEDCTL_CONN_ID",
            default="materialize_default",
            type="string",
            description="Airflow connection (type materialize) the shipped DAGs use.",
            example="materialize_prod",
        ),
        Setting(
            key="retry_delay_s",
            env="MZ_SCHEDCTL_RETRY_DELAY_S",
            default="20",
            type="float",
            description="Seconds before a failed cycle task's first retry; the delay doubles "
            "on each retry, at most 2 minutes.",
            example="30",
        ),
        # The approval gate (Airflow 3.1+), off by default: engine/approval.py reads them.
        Setting(
            key="approve_drops",
            env="MZ_SCHEDCTL_APPROVE_DROPS",
            default="false",
            type="boolean",
            description="Approval gate (Airflow 3.1+): any drop (a replica, or a lower "
            "REPLICATION FACTOR) waits for a person's approval in the mz_schedctl_approval DAG. "
            "A resume never waits.",
            example="true",
        ),
        Setting(
            key="approve_managed_resizes",
            env="MZ_SCHEDCTL_APPROVE_MANAGED_RESIZES",
            default="false",
            type="boolean",
            description="Approval gate (Airflow 3.1+): any SIZE change of a managed cluster "
            "waits for approval.",
            example="true",
        ),
        Setting(
            key="approve_cost_increase_over",
            env="MZ_SCHEDCTL_APPROVE_COST_INCREASE_OVER",
            default="",
            type="float",
            description="Approval gate (Airflow 3.1+): an action whose own cost increase is over "
            "this many credits/h waits for approval; empty: off.",
            example="2",
        ),
        Setting(
            key="approval_timeout_s",
            env="MZ_SCHEDCTL_APPROVAL_TIMEOUT_S",
            default="3600",
            type="float",
            description="Approval gate: seconds a request waits (server time); no answer by then "
            "means rejected.",
            example="1800",
        ),
        # Event-driven cycles (Airflow 3 asset watchers; triggers/events.py), on by default.
        Setting(
            key="events",
            env="MZ_SCHEDCTL_EVENTS",
            default="true",
            type="boolean",
            description="Airflow 3: the cycle DAG also runs on events (a refused query on a "
            "suspended cluster, a hydrated base under a burst or resize, a window's pre-warm) "
            "seen by a trigger in the triggerer; false: the schedule only. Airflow 2.11: "
            "ignored (no watchers).",
            example="false",
        ),
        Setting(
            key="event_poll_interval_s",
            env="MZ_SCHEDCTL_EVENT_POLL_INTERVAL_S",
            default="3",
            type="float",
            description="Seconds between two polls of the event trigger (five small "
            "statements each, whatever the fleet size).",
            example="10",
        ),
        Setting(
            key="event_min_interval_s",
            env="MZ_SCHEDCTL_EVENT_MIN_INTERVAL_S",
            default="30",
            type="float",
            description="Rate limit of event-started cycles: no event within this many "
            "seconds of the last cycle's write (server time) or of the last event.",
            example="60",
        ),
    )
}
APPROVAL_KEYS = ("approve_drops", "approve_managed_resizes", "approve_cost_increase_over")


def _airflow_option(key: str) -> str:
    """The option from Airflow's configuration; empty without Airflow (CLI, main venv)."""
    try:
        from airflow.providers.common.compat.sdk import conf
    except ImportError:
        return ""
    return str(conf.get(SECTION, key, fallback="") or "")


def setting(key: str) -> str:
    """The value of one setting: ``[mz_schedctl] <key>``, else ``$MZ_SCHEDCTL_<KEY>``, else the
    default (blank values count as unset at each step)."""
    spec = SETTINGS[key]
    value = _airflow_option(key).strip() or os.environ.get(spec.env, "").strip()
    return value or spec.default


def approval_settings() -> dict[str, str]:
    """The approval gate's four settings as text (validated when a task parses them)."""
    return {k: setting(k) for k in (*APPROVAL_KEYS, "approval_timeout_s")}


def approval_on(settings: dict[str, str]) -> bool:
    """Whether any approval setting turns the gate on (a cheap parse-time test, no engine)."""
    drops, resizes, cost = (str(settings.get(k, "")).strip().lower() for k in APPROVAL_KEYS)
    off = ("", "false", "0", "no", "off")
    return drops not in off or resizes not in off or cost != ""


def config_section() -> dict[str, Any]:
    """The provider info's ``config`` entry (the shape of Airflow's provider_info schema)."""
    return {
        SECTION: {
            "description": "Settings of the mz-schedctl DAGs, read at parse time without any "
            "database access. An empty option falls back to the environment variable named in "
            "its description, then to the default.",
            "options": {
                s.key: {
                    "description": f"{s.description} Empty: ${s.env}, else {s.default}.",
                    "version_added": "0.1.0",
                    "type": s.type,
                    "example": s.example,
                    "default": "",
                }
                for s in SETTINGS.values()
            },
        }
    }
