"""The DAG factories behind the shipped DAG files (``mz_schedctl_provider/dag_files/``, found by
Airflow 3 through a DAG bundle, copied by ``mz-schedctl airflow-dags --write`` on Airflow 2),
so the DAGs' code is in the installed package and a copied stub never goes stale.

Without arguments the factories take their settings from Airflow's ``[mz_schedctl]`` section
(:mod:`mz_schedctl_provider.settings`: ``schedule``, ``conn_id``, ``retry_delay_s``; the older
``MZ_SCHEDCTL_*`` environment variables as fallbacks), read at parse time without any database
access; arguments override them. Nothing here imports the engine, the hook or a driver: the
operators import those when a task runs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param

from mz_schedctl_provider.operators.cluster_events import cluster_event_outlets
from mz_schedctl_provider.operators.materialize import (
    PAUSED_VARIABLE,
    MaterializeApplyOperator,
    MaterializeDecideOperator,
    MaterializePersistOperator,
    MaterializeSignalsOperator,
    MaterializeWipeStateOperator,
)
from mz_schedctl_provider.settings import SETTINGS, approval_on, approval_settings, setting


class _FromSettings(enum.Enum):
    """Marks an argument left to the ``[mz_schedctl]`` settings (None means "no schedule")."""

    TOKEN = 0


FROM_SETTINGS = _FromSettings.TOKEN
# What DAG(schedule=...) takes, passed through: cron or preset text, a timedelta, a timetable or
# an asset expression (Airflow's own types, so Any here), or None for manual runs only.
Schedule = Any
# A DAG-level callback, or a list of them, as Airflow takes them.
Callback = Callable[..., Any] | Sequence[Callable[..., Any]] | None

CYCLE_DAG_ID = "mz_schedctl_cycle"
PREVIEW_DAG_ID = "mz_schedctl_plan"
WIPE_STATE_DAG_ID = "mz_schedctl_wipe_state"
APPROVAL_DAG_ID = "mz_schedctl_approval"
DEFAULT_SCHEDULE = SETTINGS["schedule"].default
DEFAULT_CONN_ID = SETTINGS["conn_id"].default
DEFAULT_TAGS = ("materialize", "mz-schedctl")
START_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)

_FILTER_DESCRIPTION = (
    "Python regex that the whole cluster name must match (re.fullmatch). "
    "Empty: every cluster with strategy rows."
)

CYCLE_DOC = f"""
# mz-schedctl cycle

Schedules Materialize cluster replicas from the strategy rows in `mz_cluster_strategies`
(`target_size`, `burst`, `idle_suspend`, `schedule`, experimental `shrink_to_fit`).

- **signals** claims the single-writer lease (not in a dry run or while paused), then reads
  the catalog, strategies, state and activity in a constant number of queries.
- **decide** is pure: it builds the plan and logs it as a table, one line per action
  (cluster, action, replica, size, credits/h, status, reason, SQL), folded per cluster.
- **apply** runs the plan's DDL, re-checking the live catalog before every statement and
  auditing intent and outcome; safe to retry. It ends **skipped** when no action ran (dry
  run, kill switch, another cycle's lease, nothing to do), **success** when actions ran,
  **failed** when an action failed: the grid tells the run kinds apart.
- **persist** runs whatever happened upstream: it writes the new state of clusters whose
  actions all succeeded, prunes old rows, releases the lease, and returns the run's
  **summary** (XCom `return_value`: kind, actions run/failed/deferred, credits/h before ->
  after for the fleet and per changed cluster, problems). It **fails the run** on a failed
  action every time, and on a persisting problem (invalid config, stuck cluster) in the first
  run that sees it and then once per re-alert interval (connection extra
  `realert_interval_s`, default 1 h); the runs in between list it in the summary and succeed.

To look without acting, trigger **`{PREVIEW_DAG_ID}`** instead: always a dry run, no lease, it
never queues behind this DAG nor unpauses it.

**Params**: `dry_run` (read and plan only: no DDL, no table, no state, no audit, no lease) and
`filter_clusters` (regex on cluster names).

**Kill switch**: set the Airflow Variable `{PAUSED_VARIABLE}` to `true`: every cycle still plans
and audits each action as held back (`executed = false`), and changes nothing.

**Settings** (Airflow's `[mz_schedctl]` section, read at parse time; the older `MZ_SCHEDCTL_*`
environment variables as fallbacks): `schedule` (default `{DEFAULT_SCHEDULE}`), `conn_id`
(default `{DEFAULT_CONN_ID}`), `retry_delay_s`. The connection's extras set the session cluster,
the schema of the controller's tables, the statement timeout and the lease TTL.

Only one run at a time (`max_active_runs=1`); a lease in Materialize keeps a second Airflow or
the `mz-schedctl` CLI from applying at the same time (it plans and says who holds the lease).

**Events** (Airflow 3, `[mz_schedctl] events`, default on): the DAG runs on its schedule or on
an event of the asset `materialize://<conn_id>/schedctl/cycle-events`, whichever comes first.
Its watcher, a trigger in the triggerer, polls every `event_poll_interval_s` (default 3 s;
five small statements whatever the fleet size) and fires on a refused query on a cluster
idle_suspend suspended, a hydrated base under a burst, a hydrated target_size replica while old
ones remain, or a schedule window's pre-warm opening, each newer than the last cycle's write; at
most one event per `event_min_interval_s` (default 30 s) after the last cycle. An event during a
run queues one run after it. **Airflow 2.11 has no watchers: the schedule only.**
"""

PREVIEW_DOC = f"""
# mz-schedctl plan (preview)

What the next cycle of `{CYCLE_DAG_ID}` would do, now, without doing it: **signals** reads
(no lease claimed), **decide** logs the plan as a table, **summary** returns the run's
summary (XCom `return_value`) with the fleet's credits/h before -> after. Always a dry run:
no DDL, no table, no state, no audit, no lease. Manual trigger only; its own DAG, so looking
never queues behind a running cycle, never starts one, and ticking "unpause on trigger" here
unpauses only this DAG. It fails when a problem alerts, as the cycle would.

**Params**: `filter_clusters` (regex on cluster names).
"""

WIPE_DOC = """
# mz-schedctl wipe state

Deletes the controller's stored state rows (all clusters, or those whose name matches
`filter_clusters`), so the next cycle decides from the catalog alone. Strategy rows and the
audit trail are kept. Manual trigger only.
"""


APPROVAL_DOC = """
# mz-schedctl approval

Started by the cycle DAG when actions wait for a person (the approval gate: Airflow's
`[mz_schedctl]` `approve_drops`, `approve_managed_resizes`, `approve_cost_increase_over`).

- **read_requests** reads the run's requests still pending from `mz_cluster_strategy_approvals`.
- **approve** (human in the loop, Required actions): one option per waiting action, the
  cluster's rendered plan in the body. Unselected actions are rejected; **no answer by the
  timeout (`approval_timeout_s`, default 1 h) means rejected**.
- **record** writes the answer: approved actions run in a later cycle only if that cycle still
  plans them (re-checked like any action), once; rejected and expired ones are audited as not
  executed. An answer after the request's expiry (server time) counts as expired.
"""


def _approval(value: Mapping[str, str] | _FromSettings | None) -> dict[str, str] | None:
    """The approval gate's settings as text, None when off. On an Airflow without
    human-in-the-loop (before 3.1) a gate that is on is an error naming the version."""
    settings = approval_settings() if value is FROM_SETTINGS else dict(value or {})
    if not approval_on(settings):
        return None
    from airflow import __version__ as airflow_version

    major, minor = (int(p) for p in airflow_version.split(".")[:2])
    if (major, minor) < (3, 1):
        raise RuntimeError(
            "the mz-schedctl approval gate (approve_drops, approve_managed_resizes, "
            "approve_cost_increase_over) needs Airflow 3.1+ (human-in-the-loop), this is "
            f"{airflow_version}: turn those settings off"
        )
    return settings


def _schedule(value: Schedule | _FromSettings) -> Schedule:
    if value is not FROM_SETTINGS:
        return value
    text = setting("schedule")
    return None if text.lower() in ("none", "manual", "off") else text


def _cycle_schedule(
    schedule: Schedule | _FromSettings, events: bool | _FromSettings, conn_id: str
) -> Schedule:
    from mz_schedctl_provider.triggers.cycle_schedule import cycle_schedule

    return cycle_schedule(
        _schedule(schedule), conn_id=conn_id, events=None if events is FROM_SETTINGS else events
    )


def _conn_id(value: str | None) -> str:
    return value or setting("conn_id")


def _retry_args(retry_delay: timedelta | None) -> dict[str, Any]:
    if retry_delay is None:
        try:
            retry_delay = timedelta(seconds=float(setting("retry_delay_s")))
        except ValueError:
            retry_delay = timedelta(seconds=float(SETTINGS["retry_delay_s"].default))
    from airflow import __version__ as airflow_version

    # Airflow 3 takes a backoff multiplier, Airflow 2 a flag (which doubles the delay).
    backoff: float | bool = 2.0 if int(airflow_version.split(".")[0]) >= 3 else True
    return {
        "retry_delay": retry_delay,
        "retry_exponential_backoff": backoff,
        "max_retry_delay": timedelta(minutes=2),
    }


def _default_args(
    base: Mapping[str, Any], default_args: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Ours, then the caller's (theirs win); the per-task retry counts and timeouts below are
    task arguments and stay as they are."""
    return {"owner": "mz-schedctl", **base, **(default_args or {})}


def _callbacks(on_success_callback: Callback, on_failure_callback: Callback) -> dict[str, Any]:
    # Passed only when given: DAG() keeps its own defaults otherwise.
    found = {
        "on_success_callback": on_success_callback,
        "on_failure_callback": on_failure_callback,
    }
    return {k: v for k, v in found.items() if v is not None}


def cycle_dag(
    dag_id: str = CYCLE_DAG_ID,
    *,
    schedule: Schedule | _FromSettings = FROM_SETTINGS,
    conn_id: str | None = None,
    default_args: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    on_success_callback: Callback = None,
    on_failure_callback: Callback = None,
    retry_delay: timedelta | None = None,
    approval: Mapping[str, str] | _FromSettings | None = FROM_SETTINGS,
    events: bool | _FromSettings = FROM_SETTINGS,
) -> DAG:
    """The scheduling cycle: signals -> decide -> apply -> persist (-> ask for approval).

    :param dag_id: the DAG id (default ``mz_schedctl_cycle``).
    :param schedule: anything ``DAG(schedule=...)`` takes (cron, preset, timedelta, timetable);
        None for manual runs only; left out: ``[mz_schedctl] schedule``.
    :param conn_id: the Materialize connection id (may be a Jinja template); None:
        ``[mz_schedctl] conn_id``.
    :param default_args: merged over the DAG's own (owner, retry delay and backoff); the
        tasks' retry counts and execution timeouts are set per task and stay.
    :param tags: the DAG's tags (default ``materialize``, ``mz-schedctl``).
    :param on_success_callback: DAG-level callback(s) when a run succeeds.
    :param on_failure_callback: DAG-level callback(s) or notifier(s) (e.g. a Slack or SMTP
        notifier) when a run fails: persist fails the run on a failed action, and on a
        persisting problem once per re-alert interval, so this fires once per problem, not
        every two minutes.
    :param retry_delay: first retry delay of a failed task (doubles per retry, at most 2
        minutes); None: ``[mz_schedctl] retry_delay_s``.
    :param approval: the approval gate's settings as text (``approve_drops``,
        ``approve_managed_resizes``, ``approve_cost_increase_over``, ``approval_timeout_s``);
        None or all off: no gate; left out: ``[mz_schedctl]``. Needs Airflow 3.1+.
    :param events: Airflow 3: run on the event trigger's events too (a cron schedule or an
        event, whichever comes first); left out: ``[mz_schedctl] events`` (default on).
        Airflow 2.11: the schedule only.
    """
    conn_id = _conn_id(conn_id)
    gate = _approval(approval)
    with DAG(
        dag_id=dag_id,
        description="Schedule Materialize cluster replicas (mz-schedctl)",
        schedule=_cycle_schedule(schedule, events, conn_id),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        # A run stuck past the lease TTL (default 15 min) would apply nothing anyway.
        dagrun_timeout=timedelta(minutes=14),
        doc_md=CYCLE_DOC,
        tags=list(DEFAULT_TAGS if tags is None else tags),
        params={
            "dry_run": Param(
                False,
                type="boolean",
                description="Read and plan only: no DDL and no writes at all (no state, no "
                "audit, no lease).",
            ),
            "filter_clusters": Param("", type=["null", "string"], description=_FILTER_DESCRIPTION),
        },
        default_args=_default_args(_retry_args(retry_delay), default_args),
        **_callbacks(on_success_callback, on_failure_callback),
    ) as dag:
        signals = MaterializeSignalsOperator(
            task_id="signals",
            materialize_conn_id=conn_id,
            retries=3,
            execution_timeout=timedelta(minutes=3),
            doc_md="Claim the lease, then read every signal decide needs.",
        )
        decide = MaterializeDecideOperator(
            task_id="decide",
            materialize_conn_id=conn_id,
            approval=gate,
            retries=2,
            execution_timeout=timedelta(minutes=2),
            doc_md="Pure planning; the log shows every action with its SQL and reasons.",
        )
        # Retrying apply is safe: it re-checks the live catalog before each statement and
        # completes the audit of an interrupted attempt (intent without outcome).
        apply = MaterializeApplyOperator(
            task_id="apply",
            materialize_conn_id=conn_id,
            retries=2,
            execution_timeout=timedelta(minutes=8),
            doc_md="Carry out the plan unless dry run, kill switch or another cycle's lease; "
            "skipped when no action ran.",
        )
        # all_done: runs even when apply failed, so the lease is always released and the run
        # ends red (persist fails whenever anything upstream did not succeed).
        persist = MaterializePersistOperator(
            task_id="persist",
            materialize_conn_id=conn_id,
            trigger_rule="all_done",
            approval=gate,
            # Airflow 3: one asset event per changed cluster, through an alias.
            outlets=cluster_event_outlets(),
            retries=2,
            execution_timeout=timedelta(minutes=2),
            doc_md="Write state, prune, release the lease; the run's summary; fail when a "
            "problem alerts.",
        )
        # The XComs are read by task id inside each task (no plan copy in Rendered Templates).
        signals >> decide >> apply >> persist
        if gate is not None:
            from mz_schedctl_provider.operators.approval import (
                MaterializeTriggerApprovalOperator,
            )

            # Starts the approval DAG and never waits for it: the lease is released already.
            persist >> MaterializeTriggerApprovalOperator(
                task_id="ask_approval",
                persist_task_id="persist",
                retries=2,
                doc_md="Start one mz_schedctl_approval run for the new requests (skipped: none).",
            )
    return dag


def preview_dag(
    dag_id: str = PREVIEW_DAG_ID,
    *,
    conn_id: str | None = None,
    approval: Mapping[str, str] | _FromSettings | None = FROM_SETTINGS,
    default_args: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    on_success_callback: Callback = None,
    on_failure_callback: Callback = None,
) -> DAG:
    """Manual trigger only: the cycle's dry run in a DAG of its own (signals -> decide ->
    summary), claiming no lease and writing nothing.

    :param dag_id: the DAG id (default ``mz_schedctl_plan``).
    :param conn_id: the Materialize connection id (may be a Jinja template); None:
        ``[mz_schedctl] conn_id``.
    :param approval: as for :func:`cycle_dag`, so the preview shows which actions would wait.
    :param default_args: merged over the DAG's own (owner).
    :param tags: the DAG's tags (default ``materialize``, ``mz-schedctl``).
    :param on_success_callback: DAG-level callback(s) when a run succeeds.
    :param on_failure_callback: DAG-level callback(s) or notifier(s) when a run fails.
    """
    conn_id = _conn_id(conn_id)
    with DAG(
        dag_id=dag_id,
        description="Preview mz-schedctl's next cycle: a dry run (manual)",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        # Each look is independent and writes nothing: several may run at once.
        max_active_runs=4,
        dagrun_timeout=timedelta(minutes=10),
        doc_md=PREVIEW_DOC,
        tags=list(DEFAULT_TAGS if tags is None else tags),
        params={
            "filter_clusters": Param("", type=["null", "string"], description=_FILTER_DESCRIPTION)
        },
        default_args=_default_args({}, default_args),
        **_callbacks(on_success_callback, on_failure_callback),
    ) as dag:
        signals = MaterializeSignalsOperator(
            task_id="signals",
            materialize_conn_id=conn_id,
            dry_run=True,
            retries=1,
            execution_timeout=timedelta(minutes=3),
            doc_md="Read every signal decide needs; no lease.",
        )
        decide = MaterializeDecideOperator(
            task_id="decide",
            materialize_conn_id=conn_id,
            dry_run=True,
            approval=_approval(approval),
            execution_timeout=timedelta(minutes=2),
            doc_md="Pure planning; the log shows the plan as a table.",
        )
        summary = MaterializePersistOperator(
            task_id="summary",
            materialize_conn_id=conn_id,
            apply_task_id=None,
            dry_run=True,
            trigger_rule="all_success",
            execution_timeout=timedelta(minutes=2),
            doc_md="The run's summary (a dry run: nothing is written).",
        )
        signals >> decide >> summary
    return dag


def approval_dag(
    dag_id: str = APPROVAL_DAG_ID,
    *,
    conn_id: str | None = None,
    approval: Mapping[str, str] | _FromSettings | None = FROM_SETTINGS,
    default_args: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
) -> DAG | None:
    """The approval gate's DAG (Airflow 3.1+), started by the cycle DAG: read the pending
    requests -> ask a person (human in the loop) -> record the answer. None when the gate is
    off (the shipped file then defines no DAG, on any Airflow).

    :param dag_id: the DAG id (default ``mz_schedctl_approval``).
    :param conn_id: the Materialize connection id; None: ``[mz_schedctl] conn_id``.
    :param approval: as for :func:`cycle_dag`; its ``approval_timeout_s`` is the response
        timeout.
    :param default_args: merged over the DAG's own (owner).
    :param tags: the DAG's tags (default ``materialize``, ``mz-schedctl``).
    """
    gate = _approval(approval)
    if gate is None:
        return None
    from mz_schedctl_provider.operators.approval import (
        HITL_TASK_ID,
        REQUESTS_TASK_ID,
        MaterializeApprovalRequestsOperator,
        MaterializeRecordApprovalOperator,
    )
    from mz_schedctl_provider.operators.approval_hitl import MaterializeApprovalHITLOperator

    try:
        timeout_s = float(gate.get("approval_timeout_s") or SETTINGS["approval_timeout_s"].default)
    except ValueError:
        timeout_s = float(SETTINGS["approval_timeout_s"].default)  # decide names the bad value
    conn_id = _conn_id(conn_id)
    with DAG(
        dag_id=dag_id,
        description="Approve actions the mz-schedctl cycle holds back (human in the loop)",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        # One run per cycle that asked; none may hold another back.
        max_active_runs=1_000,
        doc_md=APPROVAL_DOC,
        tags=list(DEFAULT_TAGS if tags is None else tags),
        default_args=_default_args({}, default_args),
    ) as dag:
        requests = MaterializeApprovalRequestsOperator(
            task_id=REQUESTS_TASK_ID, materialize_conn_id=conn_id, retries=2
        )
        answer = MaterializeApprovalHITLOperator(
            task_id=HITL_TASK_ID,
            requests_task_id=REQUESTS_TASK_ID,
            response_timeout=timedelta(seconds=max(timeout_s, 1.0)),
        )
        record = MaterializeRecordApprovalOperator(
            task_id="record",
            materialize_conn_id=conn_id,
            requests=requests.output,
            answer=answer.output,
            retries=2,
        )
        requests >> answer >> record
    return dag


def wipe_state_dag(
    dag_id: str = WIPE_STATE_DAG_ID,
    *,
    conn_id: str | None = None,
    default_args: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    on_success_callback: Callback = None,
    on_failure_callback: Callback = None,
) -> DAG:
    """Manual trigger only: delete stored state (all clusters or a filter).

    :param dag_id: the DAG id (default ``mz_schedctl_wipe_state``).
    :param conn_id: the Materialize connection id (may be a Jinja template); None:
        ``[mz_schedctl] conn_id``.
    :param default_args: merged over the DAG's own (owner).
    :param tags: the DAG's tags (default ``materialize``, ``mz-schedctl``).
    :param on_success_callback: DAG-level callback(s) when a run succeeds.
    :param on_failure_callback: DAG-level callback(s) when a run fails.
    """
    with DAG(
        dag_id=dag_id,
        description="Delete mz-schedctl's stored state (manual)",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        doc_md=WIPE_DOC,
        tags=list(DEFAULT_TAGS if tags is None else tags),
        params={
            "filter_clusters": Param("", type=["null", "string"], description=_FILTER_DESCRIPTION)
        },
        default_args=_default_args({}, default_args),
        **_callbacks(on_success_callback, on_failure_callback),
    ) as dag:
        MaterializeWipeStateOperator(task_id="wipe_state", materialize_conn_id=_conn_id(conn_id))
    return dag
