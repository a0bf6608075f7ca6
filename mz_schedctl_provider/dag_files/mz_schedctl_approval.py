"""Airflow DAG (Airflow 3.1+): approve the actions the mz-schedctl cycle holds back.

Built by :func:`mz_schedctl_provider.dags.approval_dag` when the approval gate is on
(``[mz_schedctl] approve_drops``, ``approve_managed_resizes`` or ``approve_cost_increase_over``);
with the gate off this file defines no DAG. On Airflow 2.11 a gate that is on is an import
error naming the version.
"""

from mz_schedctl_provider.dags import approval_dag

dag = approval_dag()
