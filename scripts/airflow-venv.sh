#!/usr/bin/env bash
# Make sure the Airflow venv of one version exists and matches the pinned constraints, then
# print its directory. Used by scripts/test-airflow.sh and scripts/demo.sh.
#
#   scripts/airflow-venv.sh 3.3|2.11      -> .venv-airflow3 / .venv-airflow2
#
# The venv installs exactly constraints/airflow-<version>.txt plus this package (editable, with
# its emulator, dev and airflow extras). A stamp of the constraints and pyproject.toml makes a
# second call a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
case "${1:?usage: scripts/airflow-venv.sh 3.3|2.11}" in
    # Only 3.3 serves the browser test of Airflow's UI, so only it carries that extra.
    3|3.3|3.3.*) version=3.3; pin=3.3.2; venv=.venv-airflow3; extras=emulator,dev,airflow,browser ;;
    2|2.11|2.11.*) version=2.11; pin=2.11.2; venv=.venv-airflow2; extras=emulator,dev,airflow ;;
    *) echo "unknown Airflow version $1 (use 3.3 or 2.11)" >&2; exit 2 ;;
esac
constraints=constraints/airflow-$version.txt

stamp="$venv/.mz-schedctl-stamp"
want=$(cat "$constraints" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    start=$(date +%s)
    [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
    # pip's chatter goes to a log, shown only when the install fails.
    if ! "$venv/bin/python" -m pip install -q -c "$constraints" -e ".[$extras]" \
        "apache-airflow==$pin" > "$venv/pip-install.log" 2>&1; then
        tail -n 30 "$venv/pip-install.log" >&2
        echo "installing Airflow $pin into $venv failed (log: $venv/pip-install.log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    echo "installed Airflow $pin into $venv in $(( $(date +%s) - start )) s" >&2
fi

echo "$venv"
