"""The runtime layer: the only code that talks to Materialize for the cycle (batched reads,
the tables and lease, DDL rendering, the executor) and the cycle's concerns the CLI and the
Airflow tasks share."""
