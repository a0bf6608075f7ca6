"""Reaction time of the cycle to what it waits for, through a real Airflow 3.3 standalone
(scheduler, triggerer, LocalExecutor) against the emulator at Materialize's statement-log flush
lag (5 s), with the event trigger (default poll 3 s, rate limit 30 s) or the cron only:

* resume: a query refused on a cluster idle_suspend suspended -> its replica created;
* burst: the base replica hydrated under a burst -> the burst dropped.

Each trial's breakdown (seconds after the stimulus): the refused query visible in the statement
log (resume only), the asset event (the trigger fired), the cycle run's start, the cycle's
DDL done (the replica created or dropped, seen in the catalog). And the trigger's statements
per poll at 10, 100 and 1,000 clusters (benchmarks/scenario.py's fleet after one cycle).

    .venv-airflow3/bin/python benchmarks/reaction.py --trials 20 --cron-trials 4 --json r.json

Needs .venv-airflow3 (scripts/test-airflow.sh 3.3 builds it). Wall-clock figures on a shared
2-core machine; the emulated clock is advanced between trials (idle time, hydration), which
costs no wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "browser"), str(REPO / "tests" / "materialize")]

from af3_events import refused_query, runs, standalone  # noqa: E402

from mz_schedctl_provider.emulator.control import Emulator, run_emulator  # noqa: E402
from mz_schedctl_provider.runtime import cycle  # noqa: E402
from mz_schedctl_provider.runtime.db import Database  # noqa: E402
from mz_schedctl_provider.runtime.store import Store  # noqa: E402

CYCLE = "mz_schedctl_cycle"
FLUSH_S = 5.0
TRIAL_TIMEOUT_S = 400.0
EVENTS_URI = "materialize://materialize_default/schedctl/cycle-events"


def _ts(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _until(probe: Any, timeout: float = TRIAL_TIMEOUT_S, every: float = 0.1) -> float:
    """Wall time (epoch) at which ``probe()`` first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return time.time()
        time.sleep(every)
    raise TimeoutError("trial timed out")


def _cycle_now(emu: Emulator, pattern: str | None = None) -> None:
    """A cycle as the CLI runs it (setup between trials: suspend, start a burst)."""
    db = Database.connect(emu.url)
    try:
        settings = cycle.CycleSettings()
        cid = f"bench-{time.time_ns()}"
        deadline = time.monotonic() + 120
        while not cycle.claim_lease(db, settings, cycle_id=cid).acquired:
            if time.monotonic() > deadline:  # an Airflow cycle holds it: wait for its end
                raise RuntimeError("lease held by an Airflow cycle")
            time.sleep(1)
        plan = cycle.decide(
            cycle.collect(db, settings, filter_clusters=pattern),
            cycle_id=cid,
            dry_run=False,
            filter_clusters=pattern,
        )
        cycle.persist(plan, cycle.apply(plan, db, settings), db, settings)
    finally:
        db.close()


def _replicas(emu: Emulator, cluster: str) -> set[str]:
    return {
        str(r[0])
        for r in emu.execute(
            "SELECT r.name FROM mz_catalog.mz_cluster_replicas r JOIN mz_catalog.mz_clusters c"
            " ON c.id = r.cluster_id WHERE c.name = %s",
            (cluster,),
        )
    }


def _logged(emu: Emulator, cluster: str, since: float) -> bool:
    rows = emu.execute(
        "SELECT count(*) FROM mz_internal.mz_statement_execution_history_redacted"
        " WHERE cluster_name = %s AND application_name = 'bench-user'"
        " AND began_at > to_timestamp(%s) + mz_emulator.clock_offset()",
        (cluster, since - 1),
    )
    return bool(rows and rows[0][0])


def _strategy(emu: Emulator, cluster: str, kind: str, config: dict[str, Any]) -> None:
    (cid,) = emu.execute("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (cluster,))[0]
    emu.execute(
        "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, %s, %s::jsonb)",
        (cid, kind, json.dumps(config)),
    )


def _runs_after(af: Any, t0: float, seen: set[str]) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in runs(af, CYCLE)
        if r["dag_run_id"] not in seen and (_ts(r.get("queued_at")) or 0) >= t0 - 1
    ]


def _asset_event_after(af: Any, t0: float) -> float | None:
    got = af.api("GET", "/api/v2/assets/events?order_by=-timestamp&limit=20")
    for ev in got.get("asset_events") or []:
        if ev.get("uri") == EVENTS_URI and (_ts(ev.get("timestamp")) or 0) >= t0:
            return _ts(ev.get("timestamp"))
    return None


def _finish(af: Any, t0: float, seen: set[str], done_at: float) -> dict[str, Any]:
    """The breakdown of one trial: the run that did it is the last one started before the
    DDL was seen (with the cron, an earlier run may have started before the query was
    visible and done nothing)."""
    candidates: list[dict[str, Any]] = []

    def found() -> bool:
        candidates[:] = [
            r
            for r in _runs_after(af, t0, seen)
            if (_ts(r.get("start_date")) or float("inf")) <= done_at + 0.5
        ]
        return bool(candidates)

    _until(found, 60, 0.5)
    run = max(candidates, key=lambda r: _ts(r.get("start_date")) or 0.0)
    seen.update(r["dag_run_id"] for r in _runs_after(af, t0, seen))
    event_at = _asset_event_after(af, t0)
    start = _ts(run.get("start_date"))
    return {
        "run_type": run.get("run_type"),
        "trigger_s": None if event_at is None else round(event_at - t0, 2),
        "queued_s": round((_ts(run.get("queued_at")) or t0) - t0, 2),
        "run_start_s": None if start is None else round(start - t0, 2),
        "done_s": round(done_at - t0, 2),
    }


def resume_trial(emu: Emulator, af: Any, seen: set[str]) -> dict[str, Any]:
    cluster = "adhoc"
    if _replicas(emu, cluster):  # suspend it (idle for longer than idle_after_s)
        # An idle hour: also past the rails' rate limit (10 actions per cluster per hour).
        emu.advance(3600)
        _cycle_now(emu, cluster)
    assert not _replicas(emu, cluster), "not suspended"
    emu.advance(60)  # past the rate limit after the suspending cycle
    time.sleep(1)
    t0 = time.time()
    refused_query(emu.url, cluster, "t_adhoc", application_name="bench-user")
    logged = _until(lambda: _logged(emu, cluster, t0), 60, 0.2)
    done = _until(lambda: bool(_replicas(emu, cluster)), every=0.2)
    row = _finish(af, t0, seen, done)
    row["log_visible_s"] = round(logged - t0, 2)
    _until(_idle_fn(af), 120, 0.5)
    return row


def burst_trial(emu: Emulator, af: Any, seen: set[str], i: int) -> dict[str, Any]:
    cluster = f"burst{i}"
    emu.execute(f"CREATE CLUSTER {cluster} REPLICAS (r1 (SIZE = '25cc'))")
    emu.execute(
        f"CREATE MATERIALIZED VIEW mv_{cluster} IN CLUSTER {cluster}"
        " AS SELECT count(*) FROM t_adhoc"
    )
    emu.execute("SELECT mz_emulator.set_hydration_delay(%s, '40 seconds'::interval)", (cluster,))
    _strategy(emu, cluster, "burst", {"burst_replica_size": "800cc"})
    _cycle_now(emu, cluster)
    assert _replicas(emu, cluster) == {"r1", "burst"}, _replicas(emu, cluster)
    time.sleep(1)
    t0 = time.time()
    emu.advance(60)  # r1 (40 s of data at 25cc, online after ~3 s) is hydrated now
    done = _until(lambda: _replicas(emu, cluster) == {"r1"}, every=0.2)
    row = _finish(af, t0, seen, done)
    _until(_idle_fn(af), 120, 0.5)
    return row


def _idle(af: Any) -> bool:
    return all(r["state"] in ("success", "failed") for r in runs(af, CYCLE))


def _idle_fn(af: Any) -> Any:
    return lambda: _idle(af)


def _stats(rows: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    vals = sorted(v for r in rows if (v := r.get(key)) is not None)
    if not vals:
        return {"p50": None, "p95": None}
    p95 = vals[min(len(vals) - 1, max(0, round(0.95 * len(vals)) - 1))]
    return {"p50": round(statistics.median(vals), 2), "p95": round(p95, 2)}


def setup_emulator(emu: Emulator) -> None:
    emu.execute("CREATE TABLE t_adhoc (a int)")
    emu.execute("CREATE CLUSTER adhoc REPLICAS (r1 (SIZE = '25cc'))")
    emu.execute("CREATE INDEX i_adhoc IN CLUSTER adhoc ON t_adhoc (a)")
    db = Database.connect(emu.url)
    try:
        Store(db).bootstrap()
    finally:
        db.close()
    _strategy(emu, "adhoc", "idle_suspend", {"idle_after_s": 300})


def reaction(trials: int, *, events: bool, schedule: str, kinds: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"events": events, "schedule": schedule, "trials": trials}
    with run_emulator(port=0, sample_rate=1.0, log_flush_s=FLUSH_S) as emu:
        setup_emulator(emu)
        env = {"MZ_SCHEDCTL_EVENTS": "true" if events else "false"}
        with standalone(emu.port, schedule=schedule, extra_env=env) as af:
            out["airflow_boot_s"] = round(af.boot_s, 1)
            time.sleep(10)  # the triggerer picks the watcher up
            seen = {r["dag_run_id"] for r in runs(af, CYCLE)}
            _until(_idle_fn(af), 300, 1)
            for kind in kinds:
                rows = []
                for i in range(trials):
                    if kind == "resume":
                        rows.append(resume_trial(emu, af, seen))
                    else:
                        rows.append(burst_trial(emu, af, seen, i))
                    print(kind, i, rows[-1], flush=True)
                out[kind] = {
                    "rows": rows,
                    **{
                        k: _stats(rows, k)
                        for k in ("log_visible_s", "trigger_s", "run_start_s", "done_s")
                    },
                }
    return out


def statements_per_poll(sizes: list[int]) -> dict[int, int]:
    from mzsupport import run_cycle

    from benchmarks import scenario
    from mz_schedctl_provider.runtime.event_reads import read_wake_facts

    counts: dict[int, int] = {}
    for n in sizes:
        with run_emulator(port=0, log_flush_s=0, sample_rate=1.0) as emu:
            scenario.build(emu.url, n)
            db = Database.connect(emu.url)
            try:
                run_cycle(db)
                emu.advance(60)
                before = db.statements
                read_wake_facts(db, Store(db))
                counts[n] = db.statements - before
            finally:
                db.close()
        print("statements per poll", n, counts[n], flush=True)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--cron-trials", type=int, default=4)
    ap.add_argument("--cron", default="*/2 * * * *")
    ap.add_argument("--fleet", default="10,100,1000")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result: dict[str, Any] = {"date": datetime.now().isoformat(timespec="seconds")}
    if args.fleet:
        result["statements_per_poll"] = statements_per_poll([int(x) for x in args.fleet.split(",")])
    if args.trials:
        result["events"] = reaction(
            args.trials, events=True, schedule="0 0 29 2 *", kinds=["resume", "burst"]
        )
    if args.cron_trials:
        result["cron"] = reaction(
            args.cron_trials, events=False, schedule=args.cron, kinds=["resume", "burst"]
        )
    text = json.dumps(result, indent=1, default=str)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
