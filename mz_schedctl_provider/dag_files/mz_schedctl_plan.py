"""Airflow DAG, manually triggered: preview mz-schedctl's next cycle (a dry run: signals,
decide, summary; no lease, nothing written), in a DAG of its own so looking never queues
behind the cycle nor starts one.

Built by :func:`mz_schedctl_provider.dags.preview_dag`; ``[mz_schedctl] conn_id`` selects
the Materialize connection (default ``materialize_default``).
"""

from mz_schedctl_provider.dags import preview_dag

dag = preview_dag()
