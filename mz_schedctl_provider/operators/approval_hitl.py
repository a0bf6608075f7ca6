"""The approval gate's human-in-the-loop task (Airflow 3.1+ only: importing this module on an
older Airflow raises the standard provider's own error, so only the approval DAG imports it).

One option per waiting action (``multiple=True``) plus "none: reject all", which is also the
default: no answer by ``response_timeout`` approves nothing (rejected). The options and the
body (the rendered plan as a Markdown table) are only known when the run starts, from the
read task's XCom; they are set in ``execute`` and again in ``execute_complete`` (a resumed
task is a freshly parsed one).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator

from mz_schedctl_provider.operators.approval import REJECT_ALL, REQUESTS_TASK_ID


class MaterializeApprovalHITLOperator(HITLOperator):
    """Ask a person which of the run's waiting actions may run.

    :param requests_task_id: the task whose XCom holds ``options`` and ``body``.
    """

    def __init__(self, *, requests_task_id: str = REQUESTS_TASK_ID, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "mz-schedctl: approve planned actions")
        super().__init__(options=[REJECT_ALL], defaults=[REJECT_ALL], multiple=True, **kwargs)
        self.requests_task_id = requests_task_id

    def _load(self, context: Any) -> None:
        doc = context["ti"].xcom_pull(task_ids=self.requests_task_id) or {}
        self.options = [REJECT_ALL, *list(doc.get("options") or {})]
        self.body = str(doc.get("body") or "")

    def execute(self, context: Any) -> Any:
        self._load(context)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        self._load(context)
        return super().execute_complete(context, event)
