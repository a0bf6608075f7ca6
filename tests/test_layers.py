"""The layering the guide asks for, enforced: the Airflow shells (operators, sensors, triggers)
and the CLI hold no SQL (every statement lives in the runtime layer or the hook's domain reads),
and the import contracts in pyproject.toml ([tool.importlinter]) hold."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mz_schedctl_provider"
SHELLS = [
    *sorted((PACKAGE / "operators").glob("*.py")),
    *sorted((PACKAGE / "sensors").glob("*.py")),
    *sorted((PACKAGE / "triggers").glob("*.py")),
    *sorted((PACKAGE / "plugins").glob("*.py")),
    PACKAGE / "cli.py",
    PACKAGE / "cli_backtest.py",
]
# Statements as the controller writes them: upper-case keywords followed by their object.
SQL = re.compile(
    r"\b(SELECT\s+\S+[\s\S]*\bFROM\b|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\S+\s+SET|"
    r"(CREATE|DROP|ALTER)\s+(TABLE|CLUSTER|INDEX|VIEW|SCHEMA)|SHOW\s+[a-z_]+|SET\s+[a-z_]+\s*=)"
)


def sql_literals(source: str) -> list[str]:
    """String constants of a module that read like SQL; docstrings do not count."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and id(node) not in docstrings and SQL.search(node.value):
            found.append(node.value)
    return found


def test_the_detector_finds_sql_in_every_form_the_shells_used() -> None:
    """The check can fail: each way SQL stood in the shells before is caught."""
    samples = [
        'rows = db.query("SELECT id, name FROM mz_catalog.mz_clusters")',
        'db.execute("DELETE FROM mz_cluster_strategy_state")',
        'x = f"INSERT INTO {table} (a) VALUES (%s)"',
        'cur.execute("SHOW cluster")',
        'HYDRATION = """\nSELECT r.name\nFROM mz_catalog.mz_cluster_replicas r\n"""',
    ]
    for sample in samples:
        assert sql_literals(sample), sample
    assert not sql_literals('log.info("Deleted %d state row(s) of %s", n, what)')
    assert not sql_literals('def f():\n    """SELECT the best FROM docs is fine here."""\n')


@pytest.mark.parametrize("path", SHELLS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_shells_hold_no_sql(path: Path) -> None:
    assert sql_literals(path.read_text()) == [], (
        f"{path.name} holds SQL: move it to the runtime layer"
    )


def test_import_contracts_hold() -> None:
    local = Path(sys.executable).with_name("lint-imports")
    tool = str(local) if local.exists() else shutil.which("lint-imports")
    assert tool, "import-linter is not installed (pip install -e '.[dev]')"
    done = subprocess.run([tool], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
