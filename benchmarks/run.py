"""Benchmark the mz-schedctl cycle against the Materialize emulator.

    python benchmarks/run.py --clusters 10,100,1000 --json results.json

For each N a fresh worker process (this file with ``--worker N``) starts an emulator in a third
process (benchmarks/emuproc.py: its memory and CPU are not the controller's), builds the fleet of
benchmarks/scenario.py, snapshots it, then repeats ``--reps`` times: restore the snapshot, then
run the four stages exactly as the DAG's operators do (claim_lease + collect, decide, apply,
persist) on one connection, timing each and counting its statements. Every repetition therefore
starts from the same catalog at the same emulated instant and does the same real work: apply
runs a fresh plan (new cycle id, new action ids) whose DDL really executes, persist really writes
N state rows. The dry-run apply (no statement at all) and the kill-switch apply (one audit
INSERT) are timed separately.

Measured, per N:

* ``round_trips``: statements sent by the signals task (lease claim + reads), via
  ``Database.statements``; ``apply_round_trips_per_action``: statements of apply / actions whose
  DDL ran.
* ``*_s``: median wall time over the repetitions; split (``stage_db_s``, ``stage_py_s``) into
  time inside ``Database.query`` / ``execute`` (round trip + server + driver decoding) and the
  controller's own Python (the rest). ``signals_explain`` splits each signals statement further:
  PostgreSQL's execution, the same statement sent straight to PostgreSQL, and the round trip
  through the emulator's proxy.
* ``peak_rss_mb``: the worker's peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``): the
  interpreter, psycopg, the harness and the stages; the emulator is another process. Per stage,
  ``tracemalloc_peak_mb`` is the Python heap's peak during that stage above what was live when
  it began (tracemalloc, one extra untimed pass).
* ``xcom_bytes_per_cluster``: ``len(json.dumps(doc))`` of the four documents the tasks return
  (signals, plan, apply result, persist outcome), summed, divided by N.
* ``dag_parse_s``: with the Airflow 3.3 venv, in fresh processes: time to execute
  dags/mz_schedctl_cycle.py after ``import airflow`` (median); the same for every N.
* ``dag_test_s`` (on the N = 100 row): one whole ``dag.test()`` of the cycle DAG, Airflow 3.3,
  SQLite metadata DB, AIRFLOW_CONN_MATERIALIZE_DEFAULT pointing at an emulator with the fleet.

Timings on a shared machine are noisy: compare medians, not single runs.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

AIRFLOW_PYTHON = REPO / ".venv-airflow3" / "bin" / "python"
DAG_FILE = REPO / "dags" / "mz_schedctl_cycle.py"
KEYS = (
    "clusters",
    "round_trips",
    "apply_round_trips_per_action",
    "signals_s",
    "decide_s",
    "apply_s",
    "persist_s",
    "xcom_bytes_per_cluster",
    "peak_rss_mb",
    "dag_parse_s",
)
STAGES = ("signals", "decide", "apply", "persist")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _label(sql: str) -> str:
    text = " ".join(sql.split())
    return text[:90]


def _kind(sql: str) -> str:
    """A statement's family: DDL by its first three words, others by their first 60 chars."""
    words = sql.split()
    if words and words[0].upper() in ("CREATE", "DROP", "ALTER"):
        return " ".join(words[:3])
    return " ".join(words)[:60]


def _by_kind(trace: list[tuple[str, Any, float]]) -> list[dict[str, Any]]:
    groups: dict[str, list[float]] = {}
    for sql_text, _params, seconds in trace:
        groups.setdefault(_kind(sql_text), []).append(seconds)
    return sorted(
        (
            {"sql": k, "count": len(v), "total_ms": round(sum(v) * 1000, 1),
             "median_ms": round(_median(v) * 1000, 2)}
            for k, v in groups.items()
        ),
        key=lambda g: -g["total_ms"],
    )  # fmt: skip


# ---- the worker: one N, in its own process ---------------------------------------------------


def _timed_database() -> Any:
    from mz_schedctl_provider.runtime.db import Database

    class TimedDatabase(Database):
        """Database that also measures the time spent inside each statement (send, server,
        receive, decode), so a stage's wall time splits into waiting and own Python."""

        def __init__(self, conn: Any) -> None:
            super().__init__(conn)
            self.db_s = 0.0
            self.trace: list[tuple[str, Any, float]] = []

        def query(self, sql: str, params: Any = None, **bounds: Any) -> list[tuple[Any, ...]]:
            start = time.perf_counter()
            try:
                return super().query(sql, params, **bounds)
            finally:
                self._note(sql, params, time.perf_counter() - start)

        def execute(self, sql: str, params: Any = None, **bounds: Any) -> int:
            start = time.perf_counter()
            try:
                return super().execute(sql, params, **bounds)
            finally:
                self._note(sql, params, time.perf_counter() - start)

        def _note(self, sql: str, params: Any, seconds: float) -> None:
            self.db_s += seconds
            self.trace.append((sql, params, seconds))

    return TimedDatabase


class Meter:
    """Wall time, statements and time inside the database of one stage."""

    def __init__(self, db: Any) -> None:
        self.db = db

    @contextlib.contextmanager
    def stage(self, out: dict[str, Any]) -> Iterator[None]:
        statements, db_s, trace = self.db.statements, self.db.db_s, len(self.db.trace)
        start = time.perf_counter()
        yield
        out["s"] = time.perf_counter() - start
        out["statements"] = self.db.statements - statements
        out["db_s"] = self.db.db_s - db_s
        out["py_s"] = out["s"] - out["db_s"]
        out["trace"] = self.db.trace[trace:]


def _doc_bytes(doc: Any) -> int:
    return len(json.dumps(doc))


def _one_cycle(
    db: Any, settings: Any, cycle_id: str, *, profiler: Callable[[str], Any] | None = None
) -> dict[str, Any]:
    """claim_lease + collect, decide, apply, persist: what the four tasks do, on one connection."""
    from mz_schedctl_provider.runtime import cycle

    meter = Meter(db)
    got: dict[str, dict[str, Any]] = {s: {} for s in STAGES}
    prof = profiler or (lambda _name: contextlib.nullcontext())
    with meter.stage(got["signals"]), prof("signals"):
        claim = cycle.claim_lease(db, settings, cycle_id=cycle_id)
        signals_doc = cycle.collect(db, settings)
    assert claim.acquired, claim
    with meter.stage(got["decide"]), prof("decide"):
        plan_doc = cycle.decide(signals_doc, cycle_id=cycle_id, dry_run=False)
    with meter.stage(got["apply"]), prof("apply"):
        apply_doc = cycle.apply(plan_doc, db, settings)
    with meter.stage(got["persist"]), prof("persist"):
        outcome = cycle.persist(plan_doc, apply_doc, db, settings).to_json()
    outcomes: dict[str, int] = {}
    for r in apply_doc["results"]:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    statuses: dict[str, int] = {}
    for c in plan_doc["clusters"]:
        for a in c["actions"]:
            statuses[a["status"]] = statuses.get(a["status"], 0) + 1
    got["signals"]["xcom_bytes"] = _doc_bytes(signals_doc)
    got["decide"]["xcom_bytes"] = _doc_bytes(plan_doc)
    got["apply"]["xcom_bytes"] = _doc_bytes(apply_doc)
    got["persist"]["xcom_bytes"] = _doc_bytes(outcome)
    got["apply"]["outcomes"] = outcomes
    got["apply"]["executed"] = apply_doc["executed"]
    got["decide"]["planned"] = statuses
    got["persist"]["states_written"] = outcome["states_written"]
    got["persist"]["problems"] = len(outcome["problems"])
    got["persist"]["problem_examples"] = outcome["problems"][:3]
    got["signals"]["clusters_in_scope"] = len(signals_doc["clusters"])
    return got


def _no_op_applies(db: Any, settings: Any, reps: int) -> dict[str, Any]:
    """apply of a dry-run plan (sends nothing) and under the kill switch (one audit INSERT)."""
    from mz_schedctl_provider.runtime import cycle

    signals_doc = cycle.collect(db, settings)
    dry = cycle.decide(signals_doc, cycle_id="bench-dry", dry_run=True)
    live = cycle.decide(signals_doc, cycle_id="bench-paused", dry_run=False)
    meter = Meter(db)
    runs: dict[str, list[dict[str, Any]]] = {"dry_run": [], "paused": []}
    for _ in range(reps):
        got: dict[str, Any] = {}
        with meter.stage(got):
            cycle.apply(dry, db, settings)
        runs["dry_run"].append(got)
        got = {}
        with meter.stage(got):
            cycle.apply(live, db, settings, paused=True)
        runs["paused"].append(got)
    return {f"apply_{kind}_s": _median([r["s"] for r in rs]) for kind, rs in runs.items()} | {
        f"apply_{kind}_statements": rs[0]["statements"] for kind, rs in runs.items()
    }


def _explain(admin: str, trace: list[tuple[str, Any, float]]) -> list[dict[str, Any]]:
    """Where a signals statement's time goes: PostgreSQL's own planning and execution (EXPLAIN
    ANALYZE on the emulator's backend), the statement sent straight to PostgreSQL with its rows
    decoded by psycopg (``direct_ms``: no proxy), and the round trip the controller saw through
    the emulator's proxy (``round_trip_ms``)."""
    import psycopg

    rows: list[dict[str, Any]] = []
    with psycopg.connect(admin, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        # As the controller's role sees it: mz_catalog.now() (the emulator clock) shadows now().
        conn.execute("SET search_path = public, mz_catalog, pg_catalog")
        for sql_text, params, seconds in trace:
            item: dict[str, Any] = {"sql": _label(sql_text), "round_trip_ms": seconds * 1000}
            if sql_text.lstrip().upper().startswith("SELECT"):
                try:
                    plan = conn.execute(
                        "EXPLAIN (ANALYZE, FORMAT JSON) " + sql_text, params
                    ).fetchone()[0]  # type: ignore[index]
                    item["pg_execution_ms"] = plan[0]["Execution Time"]
                    item["pg_planning_ms"] = plan[0]["Planning Time"]
                    direct = []
                    for _ in range(3):
                        start = time.perf_counter()
                        conn.execute(sql_text, params).fetchall()
                        direct.append(time.perf_counter() - start)
                    # The same statement sent straight to PostgreSQL (no proxy), rows decoded.
                    item["direct_ms"] = round(_median(direct) * 1000, 2)
                except psycopg.Error as exc:
                    item["pg_error"] = str(exc).splitlines()[0]
            rows.append(item)
    return rows


def worker(n: int, reps: int, profile_dir: Path | None) -> dict[str, Any]:
    from benchmarks import scenario
    from benchmarks.emuproc import EmulatorProcess
    from benchmarks.snapshot import Snapshot
    from mz_schedctl_provider.runtime.cycle import CycleSettings
    from mz_schedctl_provider.runtime.db import Database

    with EmulatorProcess() as emu:
        build = scenario.build(emu.url, n)
        snap = Snapshot(emu.admin)
        snap.take()
        timed = _timed_database()
        base = Database.connect(emu.url)
        db = timed(base.conn)
        settings = CycleSettings(holder="benchmark")
        rss_before = _rss_mb()
        runs: list[dict[str, dict[str, Any]]] = []
        restore_s: list[float] = []
        for rep in range(reps):
            start = time.perf_counter()
            snap.restore()
            restore_s.append(time.perf_counter() - start)
            runs.append(_one_cycle(db, settings, f"bench-{n}-{rep}"))
        # One more pass, untimed, for the Python heap peak of each stage.
        snap.restore()
        peaks: dict[str, float] = {}

        @contextlib.contextmanager
        def heap(name: str) -> Iterator[None]:
            # The stage's own peak: above what was live when it began (the earlier stages'
            # documents, which an Airflow task, a process of its own, would not hold).
            live = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            yield
            peaks[name] = round((tracemalloc.get_traced_memory()[1] - live) / 2**20, 2)

        tracemalloc.start()
        try:
            _one_cycle(db, settings, f"bench-{n}-heap", profiler=heap)
        finally:
            tracemalloc.stop()
        profiles: dict[str, str] = {}
        if profile_dir is not None:
            profiles = _profile(db, settings, snap, n, profile_dir)
        snap.restore()
        no_op = _no_op_applies(db, settings, reps)
        explain = _explain(emu.admin, runs[-1]["signals"]["trace"])
        db.close()
    return _summarise(n, reps, build.to_json(), runs, restore_s, peaks, rss_before, no_op,
                      explain, profiles)  # fmt: skip


def _profile(db: Any, settings: Any, snap: Any, n: int, out: Path) -> dict[str, str]:
    """pyinstrument of each stage of one more cycle; text reports in ``out``."""
    from pyinstrument import Profiler

    out.mkdir(parents=True, exist_ok=True)
    snap.restore()
    written: dict[str, str] = {}

    @contextlib.contextmanager
    def prof(name: str) -> Iterator[None]:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        yield
        profiler.stop()
        path = out / f"n{n}_{name}.txt"
        path.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        written[name] = str(path)

    _one_cycle(db, settings, f"bench-{n}-profile", profiler=prof)
    return written


def _rss_mb() -> float:
    """Current RSS (VmRSS), in MiB."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _summarise(
    n: int,
    reps: int,
    build: dict[str, Any],
    runs: list[dict[str, dict[str, Any]]],
    restore_s: list[float],
    peaks: dict[str, float],
    rss_before: float,
    no_op: dict[str, Any],
    explain: list[dict[str, Any]],
    profiles: dict[str, str],
) -> dict[str, Any]:
    def med(stage: str, key: str = "s") -> float:
        return round(_median([r[stage][key] for r in runs]), 4)

    signals_statements = sorted({r["signals"]["statements"] for r in runs})
    apply_statements = [r["apply"]["statements"] for r in runs]
    executed = [r["apply"]["outcomes"].get("succeeded", 0) for r in runs]
    per_action = [s / e for s, e in zip(apply_statements, executed, strict=True) if e]
    xcom = {s: runs[-1][s]["xcom_bytes"] for s in STAGES}
    # Per statement of the signals stage: median round trip over the repetitions.
    labels: dict[str, list[float]] = {}
    for r in runs:
        for sql_text, _params, seconds in r["signals"]["trace"]:
            labels.setdefault(_label(sql_text), []).append(seconds)
    signals_queries = sorted(
        ({"sql": k, "median_ms": round(_median(v) * 1000, 2)} for k, v in labels.items()),
        key=lambda q: -q["median_ms"],
    )
    result: dict[str, Any] = {
        "clusters": n,
        "round_trips": max(signals_statements),
        "apply_round_trips_per_action": round(_median(per_action), 3) if per_action else None,
        "signals_s": med("signals"),
        "decide_s": med("decide"),
        "apply_s": med("apply"),
        "persist_s": med("persist"),
        "xcom_bytes_per_cluster": round(sum(xcom.values()) / n, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dag_parse_s": None,
        # ---- extras -------------------------------------------------------------------------
        "reps": reps,
        "round_trips_seen": signals_statements,  # one value unless the count varied by run
        "signals_plus_decide_s": round(med("signals") + med("decide"), 4),
        "stage_db_s": {s: med(s, "db_s") for s in STAGES},
        "stage_py_s": {s: med(s, "py_s") for s in STAGES},
        "stage_statements": {s: runs[-1][s]["statements"] for s in STAGES},
        "xcom_bytes": xcom,
        "tracemalloc_peak_mb": peaks,
        "rss_before_stages_mb": rss_before,
        "apply_statements": apply_statements,
        "actions_planned": runs[-1]["decide"]["planned"],
        "apply_outcomes": runs[-1]["apply"]["outcomes"],
        "actions_executed_per_rep": executed,
        "states_written": runs[-1]["persist"]["states_written"],
        "problems": runs[-1]["persist"]["problems"],
        "problem_examples": runs[-1]["persist"]["problem_examples"],
        "clusters_in_scope": runs[-1]["signals"]["clusters_in_scope"],
        "signals_queries": signals_queries,
        "signals_explain": explain,
        "statement_kinds": {s: _by_kind(runs[-1][s]["trace"]) for s in ("apply", "persist")},
        "restore_s": round(_median(restore_s), 3),
        "runs_s": {s: [round(r[s]["s"], 4) for r in runs] for s in STAGES},
        "build": build,
    } | no_op
    if profiles:
        result["profiles"] = profiles
    return result


# ---- Airflow 3.3 (run with .venv-airflow3's python) ------------------------------------------


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("MZ_BENCH_AIRFLOW_LOG_LEVEL", "WARNING"),
        "MZ_SCHEDCTL_SCHEDULE": "none",
        "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp"),
    }


def airflow_parse_once(mode: str) -> dict[str, Any]:
    """In this fresh process: time ``import airflow``, then (mode parse) executing the DAG file
    as Airflow's DagBag does (a module from a file path)."""
    start = time.perf_counter()
    import airflow  # noqa: F401

    imported = time.perf_counter()
    out: dict[str, Any] = {"import_airflow_s": imported - start}
    if mode == "parse":
        spec = importlib.util.spec_from_file_location("mz_bench_dag", DAG_FILE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out["parse_s"] = time.perf_counter() - imported
        out["dag_id"] = module.dag.dag_id
        out["tasks"] = len(module.dag.tasks)
    out["total_s"] = time.perf_counter() - start
    return out


def dag_parse(runs: int) -> dict[str, Any]:
    """Median over fresh processes: parse time after ``import airflow``, and the difference of
    the two process totals (import + parse minus import alone), as a cross-check."""
    home = Path(tempfile.mkdtemp(prefix="mz-bench-af-"))
    env = {**os.environ, **_airflow_env(home), "PYTHONPATH": str(REPO)}
    got: dict[str, list[dict[str, Any]]] = {"parse": [], "import": []}
    try:
        for _ in range(runs + 1):  # the first pair warms the bytecode caches and is dropped
            for mode in ("import", "parse"):
                done = subprocess.run(
                    [str(AIRFLOW_PYTHON), str(Path(__file__).resolve()), "--airflow-parse-once",
                     mode],
                    env=env, capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(done.stderr[-2000:])
                got[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    parse = [r["parse_s"] for r in got["parse"][1:]]
    return {
        "dag_parse_s": round(_median(parse), 4),
        "dag_parse_runs_s": [round(x, 4) for x in parse],
        "import_airflow_s": round(_median([r["import_airflow_s"] for r in got["import"][1:]]), 3),
        "dag_parse_by_difference_s": round(
            _median([r["total_s"] for r in got["parse"][1:]])
            - _median([r["total_s"] for r in got["import"][1:]]),
            4,
        ),
    }


def airflow_dag_test(n: int) -> dict[str, Any]:
    """Build the fleet, then one dag.test() of the shipped cycle DAG (Airflow 3.3, SQLite)."""
    home = Path(tempfile.mkdtemp(prefix="mz-bench-af-"))
    os.environ.update(_airflow_env(home))
    (home / "dags").mkdir()
    shutil.copy(DAG_FILE, home / "dags" / DAG_FILE.name)
    from benchmarks import scenario
    from benchmarks.emuproc import EmulatorProcess

    result: dict[str, Any] = {"clusters": n}
    try:
        with EmulatorProcess() as emu:
            result["build_s"] = round(scenario.build(emu.url, n).seconds, 2)
            port = int(emu.url.rsplit(":", 1)[1].split("/")[0])
            os.environ["AIRFLOW_CONN_MATERIALIZE_DEFAULT"] = json.dumps(
                {
                    "conn_type": "materialize",
                    "host": "127.0.0.1",
                    "port": port,
                    "login": "materialize",
                    "schema": "materialize",
                    "extra": {"cluster": "quickstart"},
                }
            )
            start = time.perf_counter()
            airflow = Path(sys.executable).with_name("airflow")
            done = subprocess.run(
                [str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=600
            )
            if done.returncode != 0:
                raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
            result["db_migrate_s"] = round(time.perf_counter() - start, 2)

            from airflow.models import DagBag

            start = time.perf_counter()
            bag = DagBag(dag_folder=str(home / "dags"))
            assert not bag.import_errors, bag.import_errors
            dag = bag.dags["mz_schedctl_cycle"]
            result["dagbag_s"] = round(time.perf_counter() - start, 3)
            # Time each operator's own execute() too: a task's duration also holds Airflow's
            # work around it (the first task starts dag.test()'s in-process execution API).
            from mz_schedctl_provider.operators import materialize as ops

            executed: dict[str, float] = {}
            for cls in (ops.MaterializeSignalsOperator, ops.MaterializeDecideOperator,
                        ops.MaterializeApplyOperator, ops.MaterializePersistOperator):  # fmt: skip
                cls.execute = _timed_execute(cls.execute, executed)
            start = time.perf_counter()
            run = dag.test(run_conf={})
            result["dag_test_s"] = round(time.perf_counter() - start, 3)
            result["state"] = str(getattr(run.state, "value", run.state))
            tasks: dict[str, Any] = {}
            for ti in run.get_task_instances():
                tasks[ti.task_id] = {
                    "state": str(getattr(ti.state, "value", ti.state)),
                    "duration_s": None if ti.duration is None else round(ti.duration, 3),
                }
                value = ti.xcom_pull(task_ids=ti.task_id)
                if value is not None:
                    tasks[ti.task_id]["xcom_bytes"] = len(json.dumps(value))
            for task_id, seconds in executed.items():
                tasks.setdefault(task_id, {})["execute_s"] = round(seconds, 3)
            result["tasks"] = tasks
            result["operators_execute_s"] = round(sum(executed.values()), 3)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return result


def _timed_execute(execute: Any, into: dict[str, float]) -> Any:
    def timed(self: Any, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(self, context)
        finally:
            into[self.task_id] = time.perf_counter() - start

    return timed


def _airflow_ready() -> str | None:
    """None when the Airflow 3.3 venv can import airflow; else why not."""
    if not AIRFLOW_PYTHON.exists():
        return f"{AIRFLOW_PYTHON} does not exist (scripts/test-airflow.sh 3.3 builds it)"
    home = Path(tempfile.mkdtemp(prefix="mz-bench-af-"))
    try:
        done = subprocess.run(
            [str(AIRFLOW_PYTHON), "-c", "import airflow, mz_schedctl_provider, benchmarks"],
            env={**os.environ, **_airflow_env(home), "PYTHONPATH": str(REPO)},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        return "import airflow failed in .venv-airflow3: " + done.stderr.strip()[-500:]
    return None


# ---- the driver -----------------------------------------------------------------------------


def _run_json(cmd: list[str], *, env: dict[str, str] | None = None, timeout: int) -> Any:
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| clusters | round trips (signals) | apply stmts/action | signals s | decide s "
        "| signals+decide s | apply s | persist s | XCom B/cluster | peak RSS MB | DAG parse s |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r['clusters']} | {r['round_trips']} | {r['apply_round_trips_per_action']} "
            f"| {r['signals_s']:.3f} | {r['decide_s']:.3f} | {r['signals_plus_decide_s']:.3f} "
            f"| {r['apply_s']:.3f} | {r['persist_s']:.3f} | {r['xcom_bytes_per_cluster']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | "
            + ("n/a" if r["dag_parse_s"] is None else f"{r['dag_parse_s']:.3f}")
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clusters", default="10,100,1000", help="comma-separated fleet sizes")
    p.add_argument("--reps", type=int, default=5, help="repetitions per N (median; >= 5)")
    p.add_argument("--json", type=Path, help="write the results (a JSON list) here")
    p.add_argument("--no-airflow", action="store_true", help="skip DAG parse and dag.test()")
    p.add_argument("--dag-test-clusters", type=int, default=100)
    p.add_argument("--parse-runs", type=int, default=7)
    p.add_argument("--profile", type=Path, help="write pyinstrument reports of each stage here")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--airflow-parse-once", choices=("import", "parse"), help=argparse.SUPPRESS)
    p.add_argument("--airflow-dag-test", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.reps, args.profile), default=str))
        return 0
    if args.airflow_parse_once:
        print(json.dumps(airflow_parse_once(args.airflow_parse_once)))
        return 0
    if args.airflow_dag_test is not None:
        print(json.dumps(airflow_dag_test(args.airflow_dag_test), default=str))
        return 0

    sizes = [int(x) for x in args.clusters.split(",") if x.strip()]
    env = {"PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp")}
    rows: list[dict[str, Any]] = []
    for n in sizes:
        start = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n),
               "--reps", str(args.reps)]  # fmt: skip
        if args.profile:
            cmd += ["--profile", str(args.profile)]
        row = _run_json(cmd, env=env, timeout=3600)
        row["worker_s"] = round(time.perf_counter() - start, 1)
        rows.append(row)
        print(
            f"N={n}: signals {row['signals_s']:.3f}s ({row['round_trips']} statements), "
            f"decide {row['decide_s']:.3f}s, apply {row['apply_s']:.3f}s, "
            f"persist {row['persist_s']:.3f}s; build {row['build']['seconds']:.1f}s, "
            f"worker {row['worker_s']}s",
            file=sys.stderr,
            flush=True,
        )
    extra: dict[str, Any] = {}
    if not args.no_airflow:
        why = _airflow_ready()
        if why is not None:
            print(f"Airflow measurements skipped: {why}", file=sys.stderr)
            extra["airflow_skipped"] = why
        else:
            extra |= dag_parse(args.parse_runs)
            home = Path(tempfile.mkdtemp(prefix="mz-bench-af-"))
            try:
                extra["dag_test"] = _run_json(
                    [str(AIRFLOW_PYTHON), str(Path(__file__).resolve()), "--airflow-dag-test",
                     str(args.dag_test_clusters)],
                    env=env | _airflow_env(home), timeout=1800,
                )  # fmt: skip
            finally:
                shutil.rmtree(home, ignore_errors=True)
    for row in rows:
        row["dag_parse_s"] = extra.get("dag_parse_s")
        for key in ("dag_parse_runs_s", "import_airflow_s", "dag_parse_by_difference_s",
                    "airflow_skipped"):  # fmt: skip
            if key in extra:
                row[key] = extra[key]
        dag_test = extra.get("dag_test")
        if dag_test and dag_test["clusters"] == row["clusters"]:
            row["dag_test_s"] = dag_test["dag_test_s"]
            row["dag_test"] = dag_test
    if extra.get("dag_test") and not any(r.get("dag_test") for r in rows):
        print(f"dag.test(): {json.dumps(extra['dag_test'])}", file=sys.stderr)
    meta = (
        f"machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"reps {args.reps}; command: python benchmarks/run.py --clusters {args.clusters}"
        + (f" --json {args.json}" if args.json else "")
    )
    print(meta)
    print(_table(rows))
    if extra.get("dag_test"):
        t = extra["dag_test"]
        print(f"dag.test() at N={t['clusters']}: {t['dag_test_s']:.2f} s, state {t['state']}, "
              + ", ".join(f"{k} {v['duration_s']}s" for k, v in t["tasks"].items()))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
