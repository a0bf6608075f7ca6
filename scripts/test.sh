#!/usr/bin/env bash
# The whole test suite: creates .venv on first use, installs the package with its
# emulator and dev extras, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[emulator,dev]"
exec .venv/bin/python -m pytest "$@"
