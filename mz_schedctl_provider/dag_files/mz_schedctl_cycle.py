"""Airflow DAG: the mz-schedctl cycle for Materialize clusters (signals, decide, apply, persist).

Built by :func:`mz_schedctl_provider.dags.cycle_dag`; its settings come from Airflow's
``[mz_schedctl]`` section (schedule, conn_id, retry_delay_s), read at parse time without any
database access. To change more, write your own file calling the factory with arguments.
"""

from mz_schedctl_provider.dags import cycle_dag

dag = cycle_dag()
