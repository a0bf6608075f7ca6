"""The provider as Airflow sees it: registered, its metadata valid, its DAGs importable and cheap
to parse, their shape (schedule, single run, Params, retries, trigger rules) as documented."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import AIRFLOW_ENV, SHIPPED_DAGS, airflow_cli, airflow_major, dag_bag, json_output


def test_airflow_providers_list_shows_the_package(airflow_home: Path) -> None:
    done = airflow_cli("providers", "list", "--output", "json")
    assert done.returncode == 0, done.stderr
    rows = json_output(done.stdout)
    ours = [r for r in rows if r["package_name"] == "mz-schedctl-provider"]
    assert ours and ours[0]["version"] == "0.1.0", rows


def test_airflow_providers_hooks_shows_the_materialize_connection_type(airflow_home: Path) -> None:
    done = airflow_cli("providers", "hooks", "--output", "json")
    assert done.returncode == 0, done.stderr
    rows = json_output(done.stdout)
    mz = [r for r in rows if r.get("connection_type") == "materialize"]
    assert mz, rows
    assert mz[0]["class"] == "mz_schedctl_provider.hooks.materialize.MaterializeHook"
    assert "mz-schedctl-provider" in json.dumps(mz[0])


def test_provider_info_follows_airflows_schema() -> None:
    import jsonschema
    from airflow.providers_manager import ProvidersManager

    from mz_schedctl_provider import get_provider_info

    info = get_provider_info()
    schema_path = Path(sys.modules["airflow"].__file__).parent / "provider_info.schema.json"
    jsonschema.validate(info, json.loads(schema_path.read_text()))
    manager = ProvidersManager()
    assert "mz-schedctl-provider" in manager.providers
    with warnings.catch_warnings():  # Airflow 3 moved .hooks to the task SDK's manager
        warnings.simplefilter("ignore")
        assert "materialize" in manager.hooks
    # The connection form: port 6875 hinted, our extras declared.
    conn_type = info["connection-types"][0]
    assert conn_type["ui-field-behaviour"]["placeholders"]["port"] == "6875"
    assert {"cluster", "application_name", "sslmode", "table_schema", "statement_timeout"} <= set(
        conn_type["conn-fields"]
    )


def test_connection_form_widgets_on_this_airflow(airflow_home: Path) -> None:
    """Airflow 3.2+ takes the form from the provider info; Airflow 2 from the hook."""
    from airflow.providers_manager import ProvidersManager

    widgets = ProvidersManager().connection_form_widgets
    ours = {k for k in widgets if k.startswith("extra__materialize__")}
    assert {"extra__materialize__cluster", "extra__materialize__table_schema"} <= ours, ours
    behaviour = ProvidersManager().field_behaviours.get("materialize")
    assert behaviour and behaviour["relabeling"]["schema"] == "Database"


def test_dags_list_import_errors_is_clean(airflow_home: Path) -> None:
    env = {"AIRFLOW__CORE__DAGS_FOLDER": str(SHIPPED_DAGS)}
    # Airflow 3 reads the metadata DB unless told --local; Airflow 2 always parses the folder.
    local = ["--local"] if airflow_major() >= 3 else []
    done = airflow_cli("dags", "list-import-errors", *local, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = airflow_cli("dags", "list", *local, "--output", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    ids = {d["dag_id"] for d in json_output(listed.stdout)}
    assert {"mz_schedctl_cycle", "mz_schedctl_wipe_state"} <= ids


def test_dags_list_import_errors_catches_a_broken_file(airflow_home: Path, tmp_path: Path) -> None:
    """The negative control: the same command fails on a DAG file that does not import."""
    (tmp_path / "broken_dag.py").write_text("from airflow import DAG\nraise ValueError('boom')\n")
    local = ["--local"] if airflow_major() >= 3 else []
    done = airflow_cli(
        "dags", "list-import-errors", *local, env={"AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path)}
    )
    assert done.returncode == 1
    assert "boom" in done.stdout + done.stderr


def test_dagbag_loads_the_shipped_dags_with_the_documented_shape() -> None:
    bag = dag_bag(SHIPPED_DAGS)
    assert bag.import_errors == {}
    cycle = bag.dags["mz_schedctl_cycle"]
    assert set(cycle.task_dict) == {"signals", "decide", "apply", "persist"}
    assert cycle.catchup is False
    assert cycle.max_active_runs == 1
    assert cycle.doc_md and "kill switch" in cycle.doc_md.lower()
    params = cycle.params
    assert params["dry_run"] is False and params["filter_clusters"] == ""
    for name in ("dry_run", "filter_clusters"):
        assert params.get_param(name).description
    tasks = cycle.task_dict
    assert tasks["decide"].upstream_task_ids == {"signals"}
    assert tasks["apply"].upstream_task_ids == {"decide"}
    assert tasks["persist"].upstream_task_ids == {"apply"}  # reads decide's XCom by task id
    assert str(getattr(tasks["persist"].trigger_rule, "value", tasks["persist"].trigger_rule)) == (
        "all_done"
    )
    for task_id in ("signals", "decide", "apply", "persist"):
        assert tasks[task_id].retries >= 2, task_id
        assert tasks[task_id].retry_exponential_backoff
    wipe = bag.dags["mz_schedctl_wipe_state"]
    assert type(wipe.timetable).__name__ == "NullTimetable"  # manual trigger only
    assert wipe.params["filter_clusters"] == ""


# Modules a task needs but parsing must not load.
HEAVY = (
    "mz_schedctl_provider.engine",
    "mz_schedctl_provider.runtime.cycle",
    "mz_schedctl_provider.hooks.materialize",
    "airflow.providers.postgres.hooks.postgres",
    "psycopg2",
)


def _parse_in_fresh_process(env: dict[str, str]) -> dict[str, object]:
    """Parse the shipped DAG folder in a new interpreter; report time and heavy imports."""
    code = f"""
import json, sys, time
from airflow.models import DagBag
import airflow
kw = {{}} if airflow.__version__.startswith("3") else {{"include_examples": False}}
start = time.perf_counter()
bag = DagBag(dag_folder={str(SHIPPED_DAGS)!r}, **kw)
first = time.perf_counter() - start
start = time.perf_counter()
bag2 = DagBag(dag_folder={str(SHIPPED_DAGS)!r}, **kw)
second = time.perf_counter() - start
heavy = [m for m in {HEAVY!r} if m in sys.modules]
cycle = bag.dags["mz_schedctl_cycle"]
print(json.dumps({{"first_s": first, "second_s": second, "heavy": heavy,
                  "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
                  "schedule": str(getattr(cycle, "schedule_interval", None)
                                  or getattr(cycle, "schedule", None))}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**AIRFLOW_ENV, "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_config_section_wins_over_the_old_environment_variable() -> None:
    """[mz_schedctl] schedule (here AIRFLOW__MZ_SCHEDCTL__SCHEDULE) beats MZ_SCHEDCTL_SCHEDULE;
    an empty option falls back to it."""
    report = _parse_in_fresh_process(
        {"AIRFLOW__MZ_SCHEDCTL__SCHEDULE": "*/7 * * * *", "MZ_SCHEDCTL_SCHEDULE": "*/5 * * * *"}
    )
    assert "*/7 * * * *" in str(report["schedule"]), report
    blank = _parse_in_fresh_process(
        {"AIRFLOW__MZ_SCHEDCTL__SCHEDULE": "", "MZ_SCHEDCTL_SCHEDULE": "*/5 * * * *"}
    )
    assert "*/5 * * * *" in str(blank["schedule"]), blank


def test_airflow_config_list_shows_the_mz_schedctl_section(airflow_home: Path) -> None:
    done = airflow_cli(
        "config", "list", "--section", "mz_schedctl", env={"AIRFLOW__MZ_SCHEDCTL__CONN_ID": "mz_x"}
    )
    assert done.returncode == 0, done.stderr
    assert "[mz_schedctl]" in done.stdout
    for option in ("schedule", "conn_id", "retry_delay_s"):
        assert option in done.stdout, done.stdout
    value = airflow_cli(
        "config",
        "get-value",
        "mz_schedctl",
        "conn_id",
        env={"AIRFLOW__MZ_SCHEDCTL__CONN_ID": "mz_x"},
    )
    assert value.returncode == 0, value.stderr
    assert value.stdout.strip().splitlines()[-1] == "mz_x"


def test_the_factory_takes_schedule_conn_id_default_args_tags_and_callbacks() -> None:
    from mz_schedctl_provider.dags import cycle_dag, wipe_state_dag

    def failed(context: object) -> None:
        """A DAG-level callback (never called here)."""

    dag = cycle_dag(
        "mz_custom_cycle",
        schedule=timedelta(minutes=10),
        conn_id="{{ var.value.mz_conn }}",
        default_args={"email": ["ops@example.com"], "retry_delay": timedelta(seconds=7)},
        tags=["prod"],
        on_failure_callback=failed,
    )
    assert dag.dag_id == "mz_custom_cycle"
    schedule = getattr(dag, "schedule_interval", None) or getattr(dag, "schedule", None)
    assert schedule == timedelta(minutes=10)
    assert set(dag.tags) == {"prod"}
    callbacks = dag.on_failure_callback
    assert callbacks == failed or failed in list(callbacks), callbacks
    for task in dag.tasks:
        assert task.materialize_conn_id == "{{ var.value.mz_conn }}"
        assert "materialize_conn_id" in task.template_fields  # rendered before the hook exists
        assert task.email == ["ops@example.com"]
        assert task.retry_delay == timedelta(seconds=7)
        assert task.owner == "mz-schedctl"
    assert dag.task_dict["signals"].retries == 3  # per-task settings stay
    manual = cycle_dag("mz_manual_cycle", schedule=None)
    assert type(manual.timetable).__name__ == "NullTimetable"
    wipe = wipe_state_dag("mz_custom_wipe", conn_id="mz_other", tags=[])
    assert wipe.task_dict["wipe_state"].materialize_conn_id == "mz_other"
    assert not wipe.tags


def test_the_readmes_sensor_example_dag_loads(tmp_path: Path) -> None:
    """The README's example DAG for MaterializeHydrationSensor imports on this Airflow."""
    import re

    from afsupport import REPO

    readme = (REPO / "README.md").read_text()
    start = readme.index("### Wait for hydration in your own DAGs")
    (block,) = re.findall(
        r"```python\n(.*?)```", readme[start : readme.index("\n## ", start)], re.S
    )
    (tmp_path / "analytics_report.py").write_text(block)
    bag = dag_bag(tmp_path)
    assert bag.import_errors == {}
    dag = bag.dags["analytics_report"]
    assert set(dag.task_dict) == {"analytics_hydrated", "report"}
    sensor = dag.task_dict["analytics_hydrated"]
    assert type(sensor).__name__ == "MaterializeHydrationSensor"
    assert (sensor.cluster, sensor.deferrable) == ("analytics", True)


def test_the_repository_dags_folder_is_what_the_cli_writes() -> None:
    """dags/ (docker compose mounts it) holds exactly the package's stub files."""
    from afsupport import REPO

    shipped = {p.name: p.read_text() for p in SHIPPED_DAGS.glob("*.py")}
    copies = {p.name: p.read_text() for p in (REPO / "dags").glob("*.py")}
    assert shipped and copies == shipped


def test_dag_files_are_cheap_to_parse_and_schedule_comes_from_the_environment() -> None:
    start = time.perf_counter()
    report = _parse_in_fresh_process({"MZ_SCHEDCTL_SCHEDULE": "*/5 * * * *"})
    total = time.perf_counter() - start
    print(
        f"\nDAG folder parse: first {report['first_s'] * 1000:.0f} ms (includes Airflow's own "
        f"lazy imports), again {report['second_s'] * 1000:.0f} ms; interpreter total {total:.1f} s"
    )
    assert report["errors"] == {}
    # Nothing heavy at parse time: no driver, no engine, no hook until a task runs.
    assert report["heavy"] == [], report["heavy"]
    assert report["second_s"] < 0.5
    assert "*/5 * * * *" in str(report["schedule"])
    default = _parse_in_fresh_process({})
    assert "*/2 * * * *" in str(default["schedule"])


def test_retry_delay_comes_from_the_environment() -> None:
    bag = dag_bag(SHIPPED_DAGS)  # conftest sets MZ_SCHEDCTL_RETRY_DELAY_S=1
    assert bag.dags["mz_schedctl_cycle"].task_dict["apply"].retry_delay == timedelta(seconds=1)
