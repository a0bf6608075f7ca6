"""The two DAGs shipped in ``dags/`` (which only call these factories), so their code is in the
installed package: Airflow 3 does not put the DAGs folder on ``sys.path`` for every parser.

Parse-time settings are environment variables, read without any database access:

- ``MZ_SCHEDCTL_SCHEDULE``: cron expression or preset of the cycle (default every 2 minutes;
  ``none`` = manual runs only);
- ``MZ_SCHEDCTL_CONN_ID``: the Materialize connection id (default ``materialize_default``);
- ``MZ_SCHEDCTL_RETRY_DELAY_S``: delay before a failed task's first retry (default 20 s;
  doubles on each retry, at most 2 minutes).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, XComArg

from mz_schedctl_provider.operators.materialize import (
    PAUSED_VARIABLE,
    MaterializeApplyOperator,
    MaterializeDecideOperator,
    MaterializePersistOperator,
    MaterializeSignalsOperator,
    MaterializeWipeStateOperator,
)
from mz_schedctl_provider.runtime.plan_seal import SEAL_XCOM_KEY

CYCLE_DAG_ID = "mz_schedctl_cycle"
WIPE_STATE_DAG_ID = "mz_schedctl_wipe_state"
DEFAULT_SCHEDULE = "*/2 * * * *"
DEFAULT_CONN_ID = "materialize_default"
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
- **decide** is pure: it builds the plan and logs one line per action (cluster, action, SQL,
  reason).
- **apply** runs the plan's DDL, re-checking the live catalog before every statement and
  auditing intent and outcome; safe to retry.
- **persist** runs whatever happened upstream: it writes the new state of clusters whose
  actions all succeeded, prunes old rows, releases the lease, then **fails the run** listing
  every problem (invalid config, failed action, stuck cluster).

**Params**: `dry_run` (read and plan only: no DDL, no table, no state, no audit, no lease) and
`filter_clusters` (regex on cluster names).

**Kill switch**: set the Airflow Variable `{PAUSED_VARIABLE}` to `true`: every cycle still plans
and audits each action as held back (`executed = false`), and changes nothing.

**Settings** (environment, read at parse time): `MZ_SCHEDCTL_SCHEDULE` (default
`{DEFAULT_SCHEDULE}`), `MZ_SCHEDCTL_CONN_ID` (default `{DEFAULT_CONN_ID}`),
`MZ_SCHEDCTL_RETRY_DELAY_S`. The connection's extras set the session cluster, the schema of the
controller's tables, the statement timeout and the lease TTL.

Only one run at a time (`max_active_runs=1`); a lease in Materialize keeps a second Airflow or
the `mz-schedctl` CLI from applying at the same time (it plans and says who holds the lease).
"""

WIPE_DOC = """
# mz-schedctl wipe state

Deletes the controller's stored state rows (all clusters, or those whose name matches
`filter_clusters`), so the next cycle decides from the catalog alone. Strategy rows and the
audit trail are kept. Manual trigger only.
"""


def _schedule() -> str | None:
    value = os.environ.get("MZ_SCHEDCTL_SCHEDULE", "").strip() or DEFAULT_SCHEDULE
    return None if value.lower() in ("none", "manual", "off") else value


def _conn_id() -> str:
    return os.environ.get("MZ_SCHEDCTL_CONN_ID", "").strip() or DEFAULT_CONN_ID


def _retry_args() -> dict[str, Any]:
    try:
        delay = float(os.environ.get("MZ_SCHEDCTL_RETRY_DELAY_S", "") or 20)
    except ValueError:
        delay = 20.0
    from airflow import __version__ as airflow_version

    # Airflow 3 takes a backoff multiplier, Airflow 2 a flag (which doubles the delay).
    backoff: float | bool = 2.0 if int(airflow_version.split(".")[0]) >= 3 else True
    return {
        "retry_delay": timedelta(seconds=delay),
        "retry_exponential_backoff": backoff,
        "max_retry_delay": timedelta(minutes=2),
    }


def cycle_dag(dag_id: str = CYCLE_DAG_ID) -> DAG:
    """The scheduling cycle: signals -> decide -> apply -> persist."""
    conn_id = _conn_id()
    retry = _retry_args()
    with DAG(
        dag_id=dag_id,
        description="Schedule Materialize cluster replicas (mz-schedctl)",
        schedule=_schedule(),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        # A run stuck past the lease TTL (default 15 min) would apply nothing anyway.
        dagrun_timeout=timedelta(minutes=14),
        doc_md=CYCLE_DOC,
        tags=["materialize", "mz-schedctl"],
        params={
            "dry_run": Param(
                False,
                type="boolean",
                description="Read and plan only: no DDL and no writes at all (no state, no "
                "audit, no lease).",
            ),
            "filter_clusters": Param("", type=["null", "string"], description=_FILTER_DESCRIPTION),
        },
        default_args={"owner": "mz-schedctl"},
    ) as dag:
        signals = MaterializeSignalsOperator(
            task_id="signals",
            materialize_conn_id=conn_id,
            retries=3,
            execution_timeout=timedelta(minutes=3),
            doc_md="Claim the lease, then read every signal decide needs.",
            **retry,
        )
        decide = MaterializeDecideOperator(
            task_id="decide",
            materialize_conn_id=conn_id,
            signals=signals.output,
            retries=2,
            execution_timeout=timedelta(minutes=2),
            doc_md="Pure planning; the log shows every action with its SQL and reasons.",
            **retry,
        )
        # Retrying apply is safe: it re-checks the live catalog before each statement and
        # completes the audit of an interrupted attempt (intent without outcome).
        apply = MaterializeApplyOperator(
            task_id="apply",
            materialize_conn_id=conn_id,
            plan=decide.output,
            plan_seal=XComArg(decide, key=SEAL_XCOM_KEY),
            retries=2,
            execution_timeout=timedelta(minutes=8),
            doc_md="Carry out the plan unless dry run, kill switch or another cycle's lease.",
            **retry,
        )
        # all_done: runs even when apply failed, so the lease is always released and the run
        # ends red (persist fails whenever anything upstream did not succeed).
        persist = MaterializePersistOperator(
            task_id="persist",
            materialize_conn_id=conn_id,
            plan=decide.output,
            apply_result=apply.output,
            plan_seal=XComArg(decide, key=SEAL_XCOM_KEY),
            trigger_rule="all_done",
            retries=2,
            execution_timeout=timedelta(minutes=2),
            doc_md="Write state, prune, release the lease; fail listing every problem.",
            **retry,
        )
        apply >> persist
    return dag


def wipe_state_dag(dag_id: str = WIPE_STATE_DAG_ID) -> DAG:
    """Manual trigger only: delete stored state (all clusters or a filter)."""
    with DAG(
        dag_id=dag_id,
        description="Delete mz-schedctl's stored state (manual)",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        doc_md=WIPE_DOC,
        tags=["materialize", "mz-schedctl"],
        params={
            "filter_clusters": Param("", type=["null", "string"], description=_FILTER_DESCRIPTION)
        },
        default_args={"owner": "mz-schedctl"},
    ) as dag:
        MaterializeWipeStateOperator(task_id="wipe_state", materialize_conn_id=_conn_id())
    return dag
