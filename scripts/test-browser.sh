#!/usr/bin/env bash
# The browser test (tests/browser): Airflow 3.3's web UI in headless Chromium, driven through
# ChromeDriver by Selenium, against a real `airflow standalone` and the Materialize emulator;
# then Airflow 2.11's connection form (its `airflow webserver` from .venv-airflow2, the same
# browser and Selenium), about a minute more.
#
#   scripts/test-browser.sh [pytest args...]
#
# 1. Installs Debian's chromium and chromium-driver when /usr/bin/chromium or
#    /usr/bin/chromedriver is missing (needs root; one `apt-get update` first).
# 2. Builds or refreshes .venv-airflow3 the way scripts/test-airflow.sh does (it owns that venv),
#    then installs Selenium into it (the `browser` extra; constrained by
#    constraints/airflow-3.3.txt) when it is not importable; and .venv-airflow2 for the 2.11
#    webserver.
# 3. Runs tests/browser with that venv's python. MZ_SCHEDCTL_BROWSER_REQUIRED=1 turns every
#    "cannot run here" into a failure, so this script never passes on a skipped test.
# Screenshots go to artifacts/browser/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
start=$(date +%s)

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "Chromium/ChromeDriver missing and not root: apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
    echo "installing Debian's chromium and chromium-driver ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# Debian builds both from one source package: their versions must match.
browser_version=$(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}')
driver_version=$(/usr/bin/chromedriver --version | awk '{print $2}')
echo "Chromium $browser_version, ChromeDriver $driver_version"
if [ "${browser_version%%.*}" != "${driver_version%%.*}" ]; then
    echo "Chromium and ChromeDriver major versions differ" >&2
    exit 1
fi

# The Airflow 3.3 venv carries the browser extra (selenium, pinned in the constraints); the
# 2.11 venv only serves its webserver to tests/browser/test_connection_form_airflow2.py.
venv=$(scripts/airflow-venv.sh 3.3 | tail -n 1)
scripts/airflow-venv.sh 2.11 > /dev/null

echo "setup took $(( $(date +%s) - start )) s"
export MZ_SCHEDCTL_BROWSER_REQUIRED=1
exec "$venv/bin/python" -m pytest tests/browser -p no:cacheprovider \
    -W ignore::DeprecationWarning -W ignore::PendingDeprecationWarning "$@"
