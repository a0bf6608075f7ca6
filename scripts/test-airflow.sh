#!/usr/bin/env bash
# Run tests/airflow against a real Airflow (SQLite metadata DB, the Materialize emulator).
#
#   scripts/test-airflow.sh 3.3|2.11 [pytest args...]   build .venv-airflow3 / .venv-airflow2 if
#                                                       missing or stale, then run the tests
#   scripts/test-airflow.sh --refreeze 3.3|2.11         re-resolve that Airflow from PyPI in a
#                                                       clean venv and rewrite its constraints
#
# Each venv installs exactly constraints/airflow-<version>.txt (pip freeze of a clean install),
# so runs are reproducible. A stamp file makes the install step a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

refreeze=0
if [ "${1:-}" = "--refreeze" ]; then refreeze=1; shift; fi
version=${1:?usage: scripts/test-airflow.sh [--refreeze] 3.3|2.11 [pytest args...]}
shift
case "$version" in
    3|3.3|3.3.*) version=3.3; pin=3.3.2; extras=emulator,dev,airflow,browser ;;
    2|2.11|2.11.*) version=2.11; pin=2.11.2; extras=emulator,dev,airflow ;;
    *) echo "unknown Airflow version $version (use 3.3 or 2.11)" >&2; exit 2 ;;
esac
constraints=constraints/airflow-$version.txt

if [ "$refreeze" = 1 ]; then
    tmp=$(mktemp -d)
    "$PY" -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install -q -e ".[$extras]" "apache-airflow==$pin"
    {
        echo "# Airflow $version dependency set for tests/airflow (Python $("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')), from \`pip freeze --exclude-editable\` of a clean venv"
        echo "# after \`pip install -e '.[$extras]' apache-airflow==$pin\`. PyPI only. Regenerate: scripts/test-airflow.sh --refreeze $version"
        "$tmp/venv/bin/pip" freeze --exclude-editable
    } > "$constraints"
    rm -rf "$tmp"
    echo "wrote $constraints"
    exit 0
fi

venv=$(scripts/airflow-venv.sh "$version" | tail -n 1)

export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# Run tests/airflow unless the arguments name test paths of their own.
paths=(tests/airflow)
for arg in "$@"; do
    case "$arg" in tests/*) paths=() ;; esac
done
exec "$venv/bin/python" -m pytest "${paths[@]}" -p no:cacheprovider \
    -W ignore::DeprecationWarning -W ignore::PendingDeprecationWarning "$@"
