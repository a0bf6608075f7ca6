"""Airflow DAG: the mz-schedctl cycle for Materialize clusters (signals, decide, apply, persist).

Built by :func:`mz_schedctl_provider.dags.cycle_dag`; settings come from environment variables
read at parse time (no database access while parsing):

- ``MZ_SCHEDCTL_SCHEDULE``: cron expression or preset (default ``*/2 * * * *``; ``none`` for
  manual runs only)
- ``MZ_SCHEDCTL_CONN_ID``: the Materialize connection (default ``materialize_default``)
- ``MZ_SCHEDCTL_RETRY_DELAY_S``: first retry delay of a failed task (default 20)
"""

from mz_schedctl_provider.dags import cycle_dag

dag = cycle_dag()
