"""The built wheel, installed the way a user installs it, carries the DAGs (issue 18).

A wheel is built from a copy of the package sources (pyproject.toml, README.md, LICENSE,
mz_schedctl_provider/), then installed with this Airflow's pinned constraints
(constraints/airflow-<version>.txt) into a FRESH venv, with AIRFLOW_HOME a new temp dir and the
working directory outside the repository. Airflow then finds mz_schedctl_cycle and
mz_schedctl_wipe_state only through what the README documents:

- Airflow 3.3: ``dag_bundle_config_list`` from ``mz-schedctl airflow-dags --bundle-config``, a
  LocalDagBundle inside the installed package;
- Airflow 2.11: ``mz-schedctl airflow-dags --write "$AIRFLOW_HOME/dags"``.

Nothing is copied from the repository: the DAG files Airflow parses are under the fresh venv's
site-packages (3.3) or written there by the venv's own ``mz-schedctl`` (2.11), and
``mz_schedctl_provider`` imports from the venv, never from this checkout.

Cost: the install resolves nothing (every version is pinned) and pip takes the wheels from its
cache, filled when the test venvs were built, so it takes about a minute; the metadata database
is the session's, already migrated by the same Airflow version (a new SQLite file would add
another `airflow db migrate`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import REPO, airflow_major, json_output

pytestmark = pytest.mark.timeout(900)

DAG_IDS = {"mz_schedctl_cycle", "mz_schedctl_wipe_state"}
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "mz_schedctl_provider")


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: int = 600) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def fresh_install(airflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Build the wheel, install it into a new venv with the pinned constraints."""
    from airflow import __version__ as airflow_version

    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / name)
    base_env = {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
    }
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), "."],
        env=base_env,
        cwd=src,
    )
    (wheel,) = (work / "dist").glob("mz_schedctl_provider-*.whl")
    target = work / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    version = "3.3" if airflow_major() >= 3 else "2.11"
    constraints = REPO / "constraints" / f"airflow-{version}.txt"
    _run(
        [
            str(python), "-m", "pip", "install", "-q", "-c", str(constraints),
            f"mz-schedctl-provider[airflow] @ {wheel.as_uri()}",
            f"apache-airflow=={airflow_version}",
        ],
        env=base_env,
        cwd=work,
        timeout=900,
    )  # fmt: skip
    home = work / "airflow-home"
    home.mkdir()
    env = {
        **base_env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
    }
    yield {"venv": target, "python": python, "env": env, "home": home, "cwd": work}


def _where_the_package_imports_from(fresh: dict) -> Path:
    out = _run(
        [str(fresh["python"]), "-c", "import mz_schedctl_provider as m; print(m.__file__)"],
        env=fresh["env"],
        cwd=fresh["cwd"],
    )
    return Path(out.strip())


def test_the_wheel_carries_the_dag_files_license_and_classifier(fresh_install: dict) -> None:
    location = _where_the_package_imports_from(fresh_install)
    assert fresh_install["venv"] in location.parents, location
    assert REPO not in location.parents
    site = location.parent.parent
    (dist_info,) = site.glob("mz_schedctl_provider-*.dist-info")
    metadata = (dist_info / "METADATA").read_text()
    assert "Classifier: Framework :: Apache Airflow :: Provider" in metadata
    assert list(dist_info.rglob("LICENSE*")), sorted(p.name for p in dist_info.rglob("*"))
    assert sorted(p.name for p in (location.parent / "dag_files").glob("*.py")) == [
        "mz_schedctl_cycle.py",
        "mz_schedctl_wipe_state.py",
    ]


def test_airflow_finds_the_dags_through_the_documented_setup(fresh_install: dict) -> None:
    fresh = fresh_install
    bin_dir = fresh["venv"] / "bin"
    env = dict(fresh["env"])
    if airflow_major() >= 3:
        # README, Airflow 3: export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="$(...)"
        config = _run(
            [str(bin_dir / "mz-schedctl"), "airflow-dags", "--bundle-config"],
            env=env,
            cwd=fresh["cwd"],
        ).strip()
        env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = config
        listing = ["dags", "list", "--local", "--bundle-name", "mz_schedctl"]
    else:
        # README, Airflow 2: mz-schedctl airflow-dags --write "$AIRFLOW_HOME/dags"
        _run(
            [str(bin_dir / "mz-schedctl"), "airflow-dags", "--write", str(fresh["home"] / "dags")],
            env=env,
            cwd=fresh["cwd"],
        )
        listing = ["dags", "list"]
    out = _run(
        [str(bin_dir / "airflow"), *listing, "--output", "json", "--columns", "dag_id,fileloc"],
        env=env,
        cwd=fresh["cwd"],
    )
    rows = {row["dag_id"]: row for row in json_output(out)}
    assert set(rows) >= DAG_IDS, rows
    for dag_id in DAG_IDS:
        fileloc = Path(rows[dag_id]["fileloc"])
        # Parsed from the venv's package (3.3) or the stub the venv's CLI wrote (2.11).
        expected = fresh["venv"] if airflow_major() >= 3 else fresh["home"] / "dags"
        assert expected in fileloc.parents, fileloc
        assert REPO not in fileloc.parents, fileloc


def test_the_config_section_is_listed_by_the_installed_airflow(fresh_install: dict) -> None:
    fresh = fresh_install
    env = {**fresh["env"], "AIRFLOW__MZ_SCHEDCTL__CONN_ID": "materialize_prod"}
    airflow = str(fresh["venv"] / "bin" / "airflow")
    out = _run([airflow, "config", "list", "--section", "mz_schedctl"], env=env, cwd=fresh["cwd"])
    assert "[mz_schedctl]" in out
    for option in ("schedule", "conn_id", "retry_delay_s"):
        assert option in out, out
    value = _run(
        [airflow, "config", "get-value", "mz_schedctl", "conn_id"], env=env, cwd=fresh["cwd"]
    )
    assert value.strip().splitlines()[-1] == "materialize_prod"
    info = _run(
        [airflow, "providers", "get", "mz-schedctl-provider", "--full", "--output", "json"],
        env=env,
        cwd=fresh["cwd"],
    )
    assert "mz_schedctl" in json.dumps(json_output(info))
