"""Operators of the approval gate (Airflow 3.1+ human-in-the-loop), around the runtime's
:mod:`mz_schedctl_provider.runtime.approvals`:

* in the cycle DAG, :class:`MaterializeTriggerApprovalOperator` starts one run of the approval
  DAG when persist wrote new requests (skipped when none) and never waits for it, so the cycle
  finishes and its lease is released;
* in the approval DAG, :class:`MaterializeApprovalRequestsOperator` reads the requests still
  pending, the HITL task (:mod:`.approval_hitl`) asks a person, and
  :class:`MaterializeRecordApprovalOperator` records the answer (no answer: rejected).

No Airflow 3-only import here, so the module loads on 2.11 too (where the gate is refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowSkipException, TriggerRule
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from mz_schedctl_provider.operators.materialize import _MaterializeOperator

APPROVAL_DAG_ID = "mz_schedctl_approval"
REQUESTS_TASK_ID = "read_requests"
HITL_TASK_ID = "approve"
# The HITL option that approves nothing (also the default when nobody answers in time).
REJECT_ALL = "none: reject all"
NO_ANSWER = "nobody (no answer by the timeout)"


class MaterializeTriggerApprovalOperator(TriggerDagRunOperator):
    """Start the approval DAG for the requests the persist task wrote; skipped when there are
    none. Never waits for the run (``wait_for_completion`` is off): the cycle ends, its lease
    is released, later cycles keep running.

    :param persist_task_id: the task whose XCom ``outcome`` lists ``approval_requests``.
    :param trigger_dag_id: the approval DAG (default ``mz_schedctl_approval``).
    """

    def __init__(
        self,
        *,
        persist_task_id: str = "persist",
        trigger_dag_id: str = APPROVAL_DAG_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)  # persist fails on problems
        super().__init__(trigger_dag_id=trigger_dag_id, wait_for_completion=False, **kwargs)
        self.persist_task_id = persist_task_id

    def execute(self, context: Any) -> Any:
        outcome = context["ti"].xcom_pull(task_ids=self.persist_task_id, key="outcome") or {}
        ids = list(outcome.get("approval_requests") or [])
        if not ids:
            raise AirflowSkipException("No new approval request in this cycle")
        self.conf = {"request_ids": ids}
        self.log.info("Asking for approval of %d action(s): %s", len(ids), ids)
        return super().execute(context)


def request_ids(context: Any) -> list[str]:
    """The request ids of this approval DAG run (its conf)."""
    dag_run = context["dag_run"]
    conf = getattr(dag_run, "conf", None) or {}
    return [str(i) for i in conf.get("request_ids") or []]


class MaterializeApprovalRequestsOperator(_MaterializeOperator):
    """Read the run's requests that are still pending: what the HITL task shows (XCom: the
    requests, the options, the Markdown body)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.runtime import approvals
        from mz_schedctl_provider.runtime.store import Store

        hook = self.get_hook()
        db = hook.get_database()
        try:
            rows = approvals.pending(
                Store(db, schema=hook.cycle_settings().schema), request_ids(context)
            )
        finally:
            db.close()
        if not rows:
            raise AirflowSkipException("No pending approval request (decided or expired already)")
        options = {approvals.option_label(i, r): r.request_id for i, r in enumerate(rows, 1)}
        for label in options:
            self.log.info("Waiting for approval: %s", label)
        return {
            "requests": [r.to_json() for r in rows],
            "options": options,
            "body": approvals.markdown(rows),
        }


class MaterializeRecordApprovalOperator(_MaterializeOperator):
    """Record the person's answer: chosen requests approved, every other one rejected (audited
    as not executed), any answered at or after its expiry (server time) expired. Runs whatever
    the HITL task did (``all_done``): no answer means rejected.

    :param requests: the read task's XCom (its ``options`` map labels to request ids).
    :param answer: the HITL task's XCom (``chosen_options``, ``responded_by_user``).
    """

    template_fields: Sequence[str] = ("materialize_conn_id", "requests", "answer")

    def __init__(self, *, requests: Any, answer: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.requests = requests
        self.answer = answer

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.runtime import approvals
        from mz_schedctl_provider.runtime.store import Store

        if not isinstance(self.requests, dict):
            raise AirflowSkipException("Nothing was asked")
        options: dict[str, str] = dict(self.requests.get("options") or {})
        answer = self.answer if isinstance(self.answer, dict) else {}
        chosen = [str(o) for o in answer.get("chosen_options") or []]
        user = answer.get("responded_by_user")
        by = str(user.get("name") or user.get("id")) if isinstance(user, dict) else NO_ANSWER
        approved = [options[o] for o in chosen if o in options]
        hook = self.get_hook()
        db = hook.get_database()
        try:
            store = Store(db, schema=hook.cycle_settings().schema)
            recorded = approvals.record_answer(
                store,
                list(options.values()),
                approved=approved,
                by=by,
                answered=isinstance(user, dict),  # the timeout's defaults have no responder
            )
        finally:
            db.close()
        doc: dict[str, Any] = recorded.to_json()
        self.log.info(
            "Answer of %s: approved %s, rejected %s, expired %s",
            by,
            doc["approved"],
            doc["rejected"],
            doc["expired"],
        )
        return doc
