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
cache, filled when the test venvs were built (about a minute on an idle machine); then
`airflow db migrate` of a new SQLite file in the new AIRFLOW_HOME.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import REPO, airflow_major, conn_json, json_output

pytestmark = pytest.mark.timeout(900)

DAG_IDS = {"mz_schedctl_cycle", "mz_schedctl_wipe_state"}
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "mz_schedctl_provider")


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: int = 600) -> str:
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
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
            # --no-compile: Airflow's thousands of modules are byte-compiled on import instead,
            # only those this test imports.
            str(python), "-m", "pip", "install", "-q", "--no-compile", "-c", str(constraints),
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
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }
    # Its own metadata database: `dags list` reports what the database knows about a DAG, so
    # a database shared with the other tests (which parse dags/ copies) would blur the proof.
    _run([str(target / "bin" / "airflow"), "db", "migrate"], env=env, cwd=work)
    yield {"venv": target, "python": python, "env": env, "home": home, "cwd": work}


def _readme_existing() -> str:
    """The dags-folder list the README's Airflow 3 line passes to --bundle-config."""
    readme = (REPO / "README.md").read_text()
    found = re.search(r"--bundle-config \\\n\s*'(\[.*?\])'", readme)
    assert found, "the README's --bundle-config line"
    return found.group(1)


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
        "mz_schedctl_approval.py",
        "mz_schedctl_cycle.py",
        "mz_schedctl_plan.py",
        "mz_schedctl_wipe_state.py",
    ]


def _documented_setup(fresh: dict) -> tuple[dict[str, str], list[str]]:
    """The README's step 1 for this Airflow line: (environment, `dags list` arguments)."""
    bin_dir = fresh["venv"] / "bin"
    env = dict(fresh["env"])
    if airflow_major() >= 3:
        # README, Airflow 3: export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="$(...)",
        # with the README's own dags-folder entry kept in the list.
        config = _run(
            [str(bin_dir / "mz-schedctl"), "airflow-dags", "--bundle-config", _readme_existing()],
            env=env,
            cwd=fresh["cwd"],
        ).strip()
        assert [e["name"] for e in json.loads(config)] == ["dags-folder", "mz_schedctl"]
        env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = config
        return env, ["dags", "list", "--local", "--bundle-name", "mz_schedctl"]
    # README, Airflow 2: mz-schedctl airflow-dags --write "$AIRFLOW_HOME/dags"
    _run(
        [str(bin_dir / "mz-schedctl"), "airflow-dags", "--write", str(fresh["home"] / "dags")],
        env=env,
        cwd=fresh["cwd"],
    )
    return env, ["dags", "list"]


def test_airflow_finds_the_dags_through_the_documented_setup(fresh_install: dict) -> None:
    fresh = fresh_install
    env, listing = _documented_setup(fresh)
    out = _run(
        [str(fresh["venv"] / "bin" / "airflow"), *listing, "--output", "json", "--columns",
         "dag_id,fileloc"],
        env=env,
        cwd=fresh["cwd"],
    )  # fmt: skip
    rows = {row["dag_id"]: row for row in json_output(out)}
    assert set(rows) >= DAG_IDS, rows
    for dag_id in DAG_IDS:
        fileloc = Path(rows[dag_id]["fileloc"])
        # Parsed from the venv's package (3.3) or the stub the venv's CLI wrote (2.11).
        expected = fresh["venv"] if airflow_major() >= 3 else fresh["home"] / "dags"
        assert expected in fileloc.parents, fileloc
        assert REPO not in fileloc.parents, fileloc


def test_the_documented_preview_runs_a_dry_run_cycle(fresh_install: dict, emulator: Any) -> None:
    """README step 5, `airflow dags test ... -c '{"dry_run": true}'`, with the fresh install
    against the emulator: the cycle runs, plans the strategy row and writes nothing."""
    fresh = fresh_install
    env, _ = _documented_setup(fresh)
    emulator.execute("CREATE CLUSTER wheel_preview REPLICAS (r1 (SIZE = '25cc'))")
    (cid,) = emulator.execute("SELECT id FROM mz_clusters WHERE name = 'wheel_preview'")[0]
    emulator.execute(
        "CREATE TABLE IF NOT EXISTS mz_cluster_strategies (cluster_id TEXT NOT NULL,"
        " strategy_type TEXT NOT NULL, config JSONB NOT NULL, updated_at TIMESTAMPTZ DEFAULT now())"
    )
    emulator.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'target_size', '{\"target_size\": \"50cc\"}')",
        (cid,),
    )
    env["AIRFLOW_CONN_MATERIALIZE_DEFAULT"] = conn_json(emulator.port)
    bundle = ["-B", "mz_schedctl"] if airflow_major() >= 3 else []
    test = [str(fresh["venv"] / "bin" / "airflow"), "dags", "test", *bundle]
    out = _run([*test, "mz_schedctl_cycle", "-c", '{"dry_run": true}'], env=env, cwd=fresh["cwd"])
    assert "wheel_preview" in out and "50cc" in out, out[-3000:]
    replicas = emulator.execute(
        "SELECT r.name FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
        " WHERE c.name = 'wheel_preview'"
    )
    assert replicas == [("r1",)]  # dry run: nothing created
    with pytest.raises(Exception, match="mz_cluster_strategy_actions"):  # no audit table either
        emulator.execute("SELECT count(*) FROM mz_cluster_strategy_actions")


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
