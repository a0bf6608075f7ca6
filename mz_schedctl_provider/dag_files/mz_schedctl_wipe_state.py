"""Airflow DAG, manually triggered: delete mz-schedctl's stored state (all clusters, or a filter).

Built by :func:`mz_schedctl_provider.dags.wipe_state_dag`; ``[mz_schedctl] conn_id`` selects
the Materialize connection (default ``materialize_default``).
"""

from mz_schedctl_provider.dags import wipe_state_dag

dag = wipe_state_dag()
