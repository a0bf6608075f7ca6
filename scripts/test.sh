#!/usr/bin/env bash
# The whole test suite (the README's second command).
#
#   scripts/test.sh                 everything: the main venv (.venv: unit, emulator, CLI,
#                                   demo, static checks), then tests/airflow on Airflow 3.3 and
#                                   2.11, then the browser test against Airflow 3.3's UI
#   scripts/test.sh PYTEST_ARGS...  only the main venv, with these pytest arguments
#
# Each venv is created on first use and reinstalled only when pyproject.toml or the pinned
# constraints change. pytest's "no tests ran" (exit 5) fails the run like any other failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

stamp=.venv/.mz-schedctl-stamp
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    [ -x .venv/bin/python ] || "$PY" -m venv .venv
    if ! .venv/bin/python -m pip install -q -e ".[emulator,dev,report]" > .venv/pip-install.log 2>&1; then
        tail -n 30 .venv/pip-install.log >&2
        echo "installing into .venv failed (log: .venv/pip-install.log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

if [ $# -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest --ignore=tests/airflow --ignore=tests/browser
for version in ${MZ_SCHEDCTL_AIRFLOW_VERSIONS-3.3 2.11}; do
    scripts/test-airflow.sh "$version"
done
scripts/test-browser.sh
