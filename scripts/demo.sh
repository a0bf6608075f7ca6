#!/usr/bin/env bash
# The README's first command: the Materialize emulator and real cycles of the DAG through
# Airflow 3.3 (dry run, then apply, then the clock moves on). Builds .venv-airflow3 on first
# use (about a minute). `--ui` keeps Airflow's UI running afterwards on http://localhost:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "Preparing the Airflow 3.3 environment (.venv-airflow3; first run takes about a minute)..."
venv=$(scripts/airflow-venv.sh 3.3 | tail -n 1)
exec "$venv/bin/python" scripts/demo.py "$@"
