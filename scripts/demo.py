"""The demo behind ``scripts/demo.sh``: the emulator, three clusters, and real cycles of the
``mz_schedctl_cycle`` DAG through Airflow's ``dag.test()`` (dry run, then apply, then the clock
moves and the cycle drops, suspends and resumes).

Runs in the Airflow 3.3 venv that demo.sh builds. Airflow's own logs go to
``.demo/airflow.log``; the terminal gets a short story of what the controller decided.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".demo"
AIRFLOW_HOME = WORK / "airflow"
LOG = WORK / "airflow.log"

CLUSTERS = {
    # name: (replicas, strategies, what the demo shows)
    "analytics": (
        "r1 (SIZE = '25cc')",
        [("target_size", {"target_size": "100cc"})],
        "resize 25cc -> 100cc without downtime",
    ),
    "reporting": (
        "r_50cc (SIZE = '50cc')",
        [
            ("target_size", {"target_size": "50cc"}),
            ("burst", {"burst_replica_size": "800cc", "max_burst_s": 3600}),
        ],
        "a burst replica while its base replica hydrates",
    ),
    "adhoc": (
        "r1 (SIZE = '25cc')",
        [("idle_suspend", {"idle_after_s": 1800})],
        "suspend when idle, resume on the next query",
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--ui", action="store_true", help="keep Airflow's UI running afterwards (Ctrl-C stops)"
    )
    parser.add_argument("--port", type=int, default=8080, help="Airflow UI port (with --ui)")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    AIRFLOW_HOME.mkdir(parents=True)
    env = _airflow_env()
    os.environ.update(env)

    from mz_schedctl_provider.emulator.control import run_emulator

    with run_emulator(port=0, log_flush_s=0) as emu:
        _say(f"Materialize emulator at {emu.url}")
        os.environ["AIRFLOW_CONN_MATERIALIZE_DEFAULT"] = _conn(emu.port)
        with _quiet():
            subprocess.run(
                [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
                check=True,
                stdout=sys.stdout,
                stderr=sys.stderr,
            )
        ids = _setup(emu)
        _say("Clusters, each with strategy rows in mz_cluster_strategies:")
        for name, (_, strategies, story) in CLUSTERS.items():
            kinds = " + ".join(k for k, _ in strategies)
            _say(f"  {name:<10} {kinds:<22} {story}")
        emu.advance(120)  # analytics' r1 is hydrated; reporting's base is still hydrating

        _cycle(emu, ids, "1. Dry run: what would happen (nothing is changed)", dry_run=True)
        _cycle(emu, ids, "2. Apply", dry_run=False)
        _say("\n... 40 minutes later (emulator clock): new replicas hydrated, adhoc idle")
        emu.advance(2400)
        _cycle(emu, ids, "3. Apply: hydration-driven drops and an idle suspend", dry_run=False)
        _query_suspended(emu)
        _cycle(
            emu, ids, "4. Apply: the refused query was activity, so adhoc resumes", dry_run=False
        )
        _expect(emu, ids, {"analytics": ["r_100cc"], "reporting": ["r_50cc"], "adhoc": ["r1"]})
        _report(emu)
        _say(
            "\nEvery DDL above has an intent and an outcome row in mz_cluster_strategy_actions"
            f" (with --ui: psql {emu.url}).\nAirflow's own logs: {LOG}"
        )
        if args.ui:
            return _ui(args.port)
    return 0


def _airflow_env() -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores: the default 32 starts 32 workers
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # local demo only
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
    }


def _conn(port: int) -> str:
    return json.dumps(
        {
            "conn_type": "materialize",
            "host": "127.0.0.1",
            "port": port,
            "login": "materialize",
            "schema": "materialize",
            "extra": {"cluster": "quickstart"},
        }
    )


def _setup(emu: Any) -> dict[str, str]:
    emu.execute("CREATE TABLE orders (id int, amount numeric)")
    for name, (replicas, _, _) in CLUSTERS.items():
        emu.execute(f"CREATE CLUSTER {name} REPLICAS ({replicas})")
    emu.execute(
        "CREATE MATERIALIZED VIEW revenue IN CLUSTER analytics AS SELECT sum(amount) FROM orders"
    )
    emu.execute(
        "CREATE MATERIALIZED VIEW daily IN CLUSTER reporting AS SELECT count(*) FROM orders"
    )
    # Reporting's data is big: its 50cc base replica needs ~20 minutes, an 800cc burst ~5.
    emu.execute("SELECT mz_emulator.set_hydration_delay('reporting', '28 minutes')")
    # Analytics' is small but not tiny: 60 s at 25cc, 30 s at 100cc (the emulator would
    # estimate ~1 s for this empty table); either way hydrated by the story's next step.
    emu.execute("SELECT mz_emulator.set_hydration_delay('analytics', '60 seconds')")
    ids = {
        name: emu.execute("SELECT id FROM mz_clusters WHERE name = %s", (name,))[0][0]
        for name in CLUSTERS
    }
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    db = Database.connect(emu.url)
    Store(db).bootstrap()  # what `mz-schedctl init` does
    db.close()
    for name, (_, strategies, _) in CLUSTERS.items():
        for kind, config in strategies:
            emu.execute(
                "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
                " VALUES (%s, %s, %s::jsonb)",
                (ids[name], kind, json.dumps(config)),
            )
    emu.record_activity("adhoc")
    return ids


_STAGES = ("signals", "decide", "apply", "persist")


def _cycle(emu: Any, ids: dict[str, str], title: str, *, dry_run: bool) -> None:
    from airflow.models import DagBag

    _say(f"\n{title}")
    with _quiet():
        bag = DagBag(dag_folder=str(REPO / "dags"))
        dag = bag.dags["mz_schedctl_cycle"]
        run = dag.test(run_conf={"dry_run": dry_run})
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    plan = tis["decide"].xcom_pull(task_ids="decide")
    states = [(t, str(getattr(tis[t].state, "value", tis[t].state))) for t in _STAGES if t in tis]
    _say(f"   Airflow run {run.run_id}: " + ", ".join(f"{t} {s}" for t, s in states))
    summary = tis["persist"].xcom_pull(task_ids="persist") if "persist" in tis else None
    # apply is skipped when no action ran (a dry run, nothing to do), green when actions ran.
    ran = bool(summary) and summary.get("kind") == "applied"
    wanted = {t: "skipped" if t == "apply" and not ran else "success" for t in _STAGES}
    if dict(states) != wanted:
        raise DemoFailed(f"the cycle did not succeed: {states} (see {LOG})")
    _say(f"   {summary['headline']}")
    for cluster in plan["clusters"] if plan else []:
        before, after = cluster["credits_per_hour_before"], cluster["credits_per_hour_after"]
        _say(f"   {cluster['cluster_name']:<10} {before:g} -> {after:g} credits/h")
        for action in cluster["actions"]:
            _say(f"     {action['sql']}")
            _say(f"       because {'; '.join(action['reasons'])}")
        if not cluster["actions"]:
            notes = [n for n in cluster.get("notes", []) if n]
            _say(f"     no action: {notes[-1] if notes else 'nothing to change'}")
    _say("   replicas now: " + _replicas(emu, ids))


class DemoFailed(Exception):
    """The controller did not do what the demo shows: a bug, reported with exit code 1."""


def _expect(emu: Any, ids: dict[str, str], wanted: dict[str, list[str]]) -> None:
    for name, replicas in wanted.items():
        rows = emu.execute(
            "SELECT name FROM mz_cluster_replicas WHERE cluster_id = %s ORDER BY name", (ids[name],)
        )
        if [r[0] for r in rows] != replicas:
            raise DemoFailed(f"{name}: expected replicas {replicas}, found {[r[0] for r in rows]}")


def _replicas(emu: Any, ids: dict[str, str]) -> str:
    parts = []
    for name, cid in ids.items():
        rows = emu.execute(
            "SELECT r.name, r.size, coalesce(bool_and(h.hydrated), true)"
            " FROM mz_cluster_replicas r LEFT JOIN mz_internal.mz_hydration_statuses h"
            " ON h.replica_id = r.id AND h.object_id LIKE 'u%%'"
            " WHERE r.cluster_id = %s GROUP BY r.name, r.size ORDER BY r.name",
            (cid,),
        )
        shown = ", ".join(f"{r}({s}{'' if h else ', hydrating'})" for r, s, h in rows)
        parts.append(f"{name}: {shown or 'suspended (no replicas)'}")
    return "; ".join(parts)


def _report(emu: Any) -> None:
    """5. What it cost and saved: `mz-schedctl report` over the demo's cycles, and its HTML."""
    page = WORK / "cost-report.html"
    _say("\n5. mz-schedctl report: what the cycles above cost and saved")
    done = subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.cli", "report", "--database-url", emu.url,
         "--hours", "1", "--filter-clusters", "|".join(CLUSTERS), "--html", str(page)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    if done.returncode != 0:
        raise DemoFailed(f"mz-schedctl report exited {done.returncode}: {done.stderr.strip()}")
    _say(done.stdout.rstrip())


def _query_suspended(emu: Any) -> None:
    import psycopg

    with psycopg.connect(emu.url, autocommit=True) as conn:
        conn.execute("SET cluster = adhoc")
        try:
            conn.execute("SELECT * FROM orders")
        except psycopg.Error as exc:
            _say(f"\nA user queries adhoc: {exc.diag.message_primary}")


def _ui(port: int) -> int:
    """airflow standalone with the DAG and the emulator connection, until Ctrl-C."""
    env = {
        **os.environ,
        "AIRFLOW__API__PORT": str(port),
        # Task runners reach the execution API at localhost:8080 unless told the port.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
    }
    _say(
        f"\nStarting Airflow at http://localhost:{port} (logs: {LOG}). Trigger mz_schedctl_cycle "
        "with dry_run ticked, then read the run history. Ctrl-C stops."
    )
    with open(LOG, "a") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("airflow")), "standalone"],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            proc.wait(timeout=30)
            return 0


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Send everything Airflow prints (its own handlers included) to the log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(LOG, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    started = time.monotonic()
    try:
        code = main()
    except DemoFailed as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        sys.exit(1)
    _say(f"\n(demo took {time.monotonic() - started:.0f} s)")
    sys.exit(code)
