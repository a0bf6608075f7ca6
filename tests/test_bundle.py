"""Where the installed package keeps its DAG files and how the CLI hands them to Airflow
(``mz-schedctl airflow-dags``): no Airflow and no database needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mz_schedctl_provider import bundle

ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER_BUNDLE = {
    "name": "dags-folder",
    "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
    "kwargs": {},
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.cli", "airflow-dags", *args],
        capture_output=True,
        text=True,
    )


def test_the_package_ships_its_dag_files() -> None:
    names = [p.name for p in bundle.dag_files()]
    assert names == [
        "mz_schedctl_approval.py",
        "mz_schedctl_cycle.py",
        "mz_schedctl_plan.py",
        "mz_schedctl_wipe_state.py",
    ]
    for path in bundle.dag_files():
        text = path.read_text()
        # Airflow's safe mode parses only files that mention both words.
        assert "airflow" in text.lower() and "dag" in text.lower()
    assert _cli("--path").stdout.strip() == str(bundle.DAG_FOLDER)


def test_bundle_config_appends_to_an_existing_list_and_replaces_its_own_entry() -> None:
    existing = json.dumps([DAGS_FOLDER_BUNDLE, {"name": "mz_schedctl", "kwargs": {"path": "/old"}}])
    done = _cli("--bundle-config", existing)
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert entries == [DAGS_FOLDER_BUNDLE, bundle.bundle_entry()]
    assert entries[1]["kwargs"]["path"] == str(bundle.DAG_FOLDER)
    assert json.loads(_cli("--bundle-config").stdout) == [bundle.bundle_entry()]
    bad = _cli("--bundle-config", '{"name": "x"}')
    assert bad.returncode == 2 and "JSON list" in bad.stderr


def test_write_copies_the_stubs_and_keeps_a_file_that_differs(tmp_path: Path) -> None:
    target = tmp_path / "dags"
    done = _cli("--write", str(target))
    assert done.returncode == 0, done.stderr
    for source in bundle.dag_files():
        assert (target / source.name).read_text() == source.read_text()
    assert _cli("--write", str(target)).returncode == 0  # same content: no-op
    (target / "mz_schedctl_cycle.py").write_text("# my own edits\n")
    refused = _cli("--write", str(target))
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert (target / "mz_schedctl_cycle.py").read_text() == "# my own edits\n"
    assert _cli("--write", str(target), "--overwrite").returncode == 0
    assert (target / "mz_schedctl_cycle.py").read_text() == (
        bundle.DAG_FOLDER / "mz_schedctl_cycle.py"
    ).read_text()


def test_the_wheel_includes_the_dag_files() -> None:
    """pyproject.toml ships dag_files/*.py as package data (the wheel test installs it)."""
    text = (ROOT / "pyproject.toml").read_text()
    assert '"dag_files/*.py"' in text
    assert "Framework :: Apache Airflow :: Provider" in text
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
