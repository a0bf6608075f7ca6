"""Helpers for the Airflow tests: load the DAGs the way Airflow does, run them with dag.test(),
read XComs back, and look at the emulator's catalog and the controller's tables."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema

from mz_schedctl_provider.bundle import DAG_FOLDER
from mz_schedctl_provider.engine.contract import load_schema

PASSWORD = "pw-Zq7;x y"  # used by every Airflow test connection; must never show up anywhere

REPO = Path(__file__).resolve().parents[2]
# The DAG files as the wheel ships them (mz_schedctl_provider/dag_files); dags/ is a copy.
SHIPPED_DAGS = DAG_FOLDER

_HOME = Path(tempfile.mkdtemp(prefix="mz-schedctl-airflow-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
DAGS_FOLDER = _HOME / "dags"
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    # Retries in tests wait 1 s instead of 20 s (read by the DAG factory at parse time).
    "MZ_SCHEDCTL_RETRY_DELAY_S": "1",
    "MZ_SCHEDCTL_SCHEDULE": "*/2 * * * *",
    "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
}
os.environ.update(AIRFLOW_ENV)

# Not ``import airflow``: from the main venv that finds this very folder as a namespace package.
HAVE_AIRFLOW = importlib.util.find_spec("airflow.models") is not None

SENSOR_DAG = '''
"""Airflow DAG used by tests/airflow/test_sensor.py: waits for hydration."""
from datetime import datetime, timezone

from airflow.providers.common.compat.sdk import DAG, Param

from mz_schedctl_provider.sensors.materialize import MaterializeHydrationSensor

with DAG(
    dag_id="mz_test_hydration_sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    params={"cluster": Param("quickstart", type="string"),
            "replica": Param("", type="string")},
) as dag:
    deferred = MaterializeHydrationSensor(
        task_id="deferred",
        cluster="{{ params.cluster }}",
        deferrable=True,
        poll_interval=0.5,
        timeout=60,
    )
    # Runs second (trigger rule all_done), so "deferred" meets an unhydrated cluster and defers.
    deferred >> MaterializeHydrationSensor(
        task_id="poking",
        trigger_rule="all_done",
        cluster="{{ params.cluster }}",
        replica="{{ params.replica }}",
        mode="poke",
        poke_interval=0.5,
        timeout=6,
        retries=0,
    )
'''


# The shipped cycle, built by the factory with a failure callback (the DAG-level hook a Slack or
# SMTP notifier plugs into) that appends one line per call to the file in $MZ_TEST_ALERTS.
ALERTING_DAG = """
# An Airflow DAG (these words let the DAG processor's safe mode parse this file).
import os

from mz_schedctl_provider.dags import cycle_dag


def notify(context):
    with open(os.environ["MZ_TEST_ALERTS"], "a") as out:
        out.write(context["dag_run"].run_id + "\\n")


dag = cycle_dag("mz_test_alerting", schedule=None, on_failure_callback=notify)
"""


# The cycle with a task between decide and apply that edits the plan, as a user editing the
# decide task's XCom in Airflow 3.3's UI would: apply and persist must refuse it.
TAMPERED_DAG = """
from datetime import datetime, timezone

from airflow.providers.common.compat.sdk import DAG, Param
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2.11
    from airflow.operators.python import PythonOperator

from mz_schedctl_provider.operators.materialize import (
    MaterializeApplyOperator, MaterializeDecideOperator, MaterializePersistOperator,
    MaterializeSignalsOperator,
)


def edit(plan, size):
    for cluster in plan["clusters"]:
        for action in cluster["actions"]:
            action["size"] = size
            action["sql"] = "CREATE TABLE edited_via_xcom (x int)"
    return plan


with DAG(
    dag_id="mz_test_tampered_plan",
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    params={"dry_run": Param(False, type="boolean"), "filter_clusters": Param("", type="string"),
            "size": Param("800cc", type="string")},
) as dag:
    signals = MaterializeSignalsOperator(task_id="signals")
    decide = MaterializeDecideOperator(task_id="decide")
    tamper = PythonOperator(
        task_id="tamper", python_callable=edit,
        op_kwargs={"plan": decide.output, "size": "{{ params.size }}"},
    )
    apply = MaterializeApplyOperator(task_id="apply", plan_task_id="tamper", retries=0)
    persist = MaterializePersistOperator(
        task_id="persist", plan_task_id="tamper", trigger_rule="all_done", retries=0,
    )
    signals >> decide >> tamper >> apply >> persist
"""


def _prepare_dags_folder() -> None:
    DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED_DAGS.glob("*.py"):
        shutil.copy(path, DAGS_FOLDER / path.name)
    (DAGS_FOLDER / "mz_test_hydration_sensor.py").write_text(SENSOR_DAG)
    (DAGS_FOLDER / "mz_test_tampered_plan.py").write_text(TAMPERED_DAG)
    (DAGS_FOLDER / "mz_test_alerting.py").write_text(ALERTING_DAG)


def airflow_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 240) -> Any:
    """Run the ``airflow`` CLI of this venv with the test environment."""
    full_env = {**os.environ, **AIRFLOW_ENV, **(env or {})}
    exe = Path(sys.executable).with_name("airflow")
    return subprocess.run(
        [str(exe), *args], env=full_env, capture_output=True, text=True, timeout=timeout
    )


def conn_json(url_port: int, *, extra: dict[str, Any] | None = None, **fields: Any) -> str:
    """An AIRFLOW_CONN_* value (JSON form) for a materialize connection to the emulator."""
    doc: dict[str, Any] = {
        "conn_type": "materialize",
        "host": "127.0.0.1",
        "port": url_port,
        "login": "materialize",
        "password": PASSWORD,
        "schema": "materialize",
        "extra": {"cluster": "quickstart", **(extra or {})},
    }
    doc.update(fields)
    return json.dumps(doc)


def json_output(stdout: str) -> Any:
    """The JSON list an ``airflow ... --output json`` command printed among its log lines."""
    import re

    found = re.search(r"^\[(\{|\])", stdout, re.M)
    assert found, stdout
    return json.JSONDecoder().raw_decode(stdout[found.start() :])[0]


def airflow_major() -> int:
    from airflow import __version__

    return int(__version__.split(".")[0])


def dag_bag(folder: Path) -> Any:
    from airflow.models import DagBag

    kwargs: dict[str, Any] = {"include_examples": False} if airflow_major() < 3 else {}
    return DagBag(dag_folder=str(folder), **kwargs)


def load_dag(folder: Path, dag_id: str) -> Any:
    bag = dag_bag(folder)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def run_dag(dag: Any, conf: dict[str, Any] | None = None) -> Any:
    """One DAG run through dag.test(); returns the DagRun (its tasks ran in this process).

    Each run gets a freshly parsed DAG, as each run gets in production: dag.test() runs the
    tasks in this process and leaves the run's Params (conf included) in the operators' params,
    so reusing one DAG object would carry e.g. dry_run=True into the next run (seen on both
    Airflow 2.11 and 3.3)."""
    fresh = load_dag(Path(dag.fileloc).parent, dag.dag_id)
    return fresh.test(run_conf=conf or {})


def tis(dr: Any) -> dict[str, Any]:
    return {ti.task_id: ti for ti in dr.get_task_instances()}


def states_of(dr: Any) -> dict[str, str]:
    """Each task's final state in a run, by task id."""
    return {t: state(ti) for t, ti in tis(dr).items()}


def state(x: Any) -> str:
    value = x.state
    return str(getattr(value, "value", value))


def xcom(dr: Any, task_id: str, key: str = "return_value") -> Any:
    ti = tis(dr)[task_id]
    return ti.xcom_pull(task_ids=task_id, key=key)


def validate(doc: Any, schema: str) -> None:
    jsonschema.Draft202012Validator(load_schema(schema)).validate(doc)


def validate_cycle_xcoms(dr: Any) -> dict[str, Any]:
    """Every stage's XCom, each checked against its shipped JSON Schema."""
    docs = {
        "signals": xcom(dr, "signals"),
        "decide": xcom(dr, "decide"),
        "apply": xcom(dr, "apply", key="apply_result"),
        "persist": xcom(dr, "persist", key="outcome"),
    }
    validate(docs["signals"], "signals")
    validate(docs["decide"], "plan")
    validate(docs["apply"], "apply_result")
    assert set(docs["persist"]) == {
        "schema_version",
        "states_written",
        "problems",
        "alerting",
        "alerts",
    }
    for name, doc in docs.items():
        text = json.dumps(doc)
        assert PASSWORD not in text, f"{name} XCom leaks the password"
    return docs


def actions(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for c in plan["clusters"] for a in c["actions"]]


# ---- emulator side ----------------------------------------------------------------------


def make_cluster(
    emu: Any, name: str, size: str = "25cc", *, view: bool = True, hydration: str | None = None
) -> str:
    """An unmanaged cluster with one replica r1 (and a materialized view); returns its id.
    ``hydration``: its data is as big as this hydration time at 25cc (by default the
    emulator's estimate: ~1 s for this view)."""
    emu.execute(f"CREATE CLUSTER \"{name}\" REPLICAS (r1 (SIZE = '{size}'))")
    if view:
        emu.execute(f'CREATE MATERIALIZED VIEW "mv_{name}" IN CLUSTER "{name}" AS SELECT 1')
    if hydration is not None:
        emu.execute("SELECT mz_emulator.set_hydration_delay(%s, %s::interval)", (name, hydration))
    return str(emu.execute("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (name,))[0][0])


def bootstrap(emu: Any) -> None:
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    db = Database(emu.connect())
    try:
        Store(db).bootstrap()
    finally:
        db.close()


def add_strategy(emu: Any, cluster_id: str, kind: str, config: dict[str, Any]) -> None:
    emu.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config) VALUES (%s, %s, %s)",
        (cluster_id, kind, json.dumps(config)),
    )


def replicas(emu: Any, cluster: str) -> list[tuple[str, str]]:
    return [
        (str(n), str(s))
        for n, s in emu.execute(
            "SELECT r.name, r.size FROM mz_catalog.mz_cluster_replicas r"
            " JOIN mz_catalog.mz_clusters c ON c.id = r.cluster_id WHERE c.name = %s"
            " ORDER BY r.name",
            (cluster,),
        )
    ]


def audit_rows(emu: Any, cluster_id: str) -> list[dict[str, Any]]:
    rows = emu.execute(
        "SELECT action_id, action_sql, decision_ctx, executed, error_message"
        " FROM mz_cluster_strategy_actions WHERE cluster_id = %s ORDER BY created_at",
        (cluster_id,),
    )
    return [
        {"action_id": a, "sql": s, "ctx": c, "executed": e, "error": err}
        for a, s, c, e, err in rows
    ]


def table_rows(emu: Any, name: str) -> list[tuple[Any, ...]] | None:
    """All rows of a table, None when it does not exist."""
    import psycopg

    try:
        return emu.execute(f"SELECT * FROM {name}")
    except psycopg.errors.UndefinedTable:
        return None


CONTROLLER_TABLES = (
    "mz_cluster_strategies",
    "mz_cluster_strategy_state",
    "mz_cluster_strategy_actions",
    "mz_cluster_strategy_leases",
    "mz_cluster_strategy_alerts",
)


def snapshot(emu: Any) -> dict[str, Any]:
    """Everything a cycle could change: clusters, replicas and the controller's tables."""
    snap: dict[str, Any] = {
        "clusters": sorted(emu.execute("SELECT id, name FROM mz_catalog.mz_clusters")),
        "replicas": sorted(
            emu.execute("SELECT id, cluster_id, name, size FROM mz_catalog.mz_cluster_replicas")
        ),
    }
    for table in CONTROLLER_TABLES:
        rows = table_rows(emu, table)
        snap[table] = None if rows is None else sorted(json.dumps(r, default=str) for r in rows)
    return snap
