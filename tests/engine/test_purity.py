"""The engine is pure: no airflow, no database driver, no local clock."""

from __future__ import annotations

import re
from pathlib import Path

import mz_schedctl_provider.engine as engine

ENGINE = Path(engine.__file__).parent


def test_engine_imports_no_airflow_no_driver_and_reads_no_clock() -> None:
    forbidden = re.compile(
        r"^\s*(import|from)\s+(airflow|psycopg|psycopg2|sqlalchemy)\b"
        r"|datetime\.now\(|datetime\.utcnow\(|time\.time\(|date\.today\(",
        re.M,
    )
    for path in ENGINE.rglob("*.py"):
        assert not forbidden.search(path.read_text()), path
