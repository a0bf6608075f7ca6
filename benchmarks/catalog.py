"""Catalog queries right after a fleet is built: no query-planning cliff.

``python benchmarks/catalog.py --clusters 100,1000 [--json out.json]``

For each N a fresh emulator (its own process, ``emuproc.py``) gets a fleet built through
ordinary DDL over pgwire with psycopg 3: per cluster ``CREATE CLUSTER`` with two replicas (one
where a source forbids a second), ``CREATE INDEX`` and ``CREATE MATERIALIZED VIEW`` (every 50th
cluster a Kafka source instead), then the controller's tables and one strategy row per cluster.
No ANALYZE, no sleep: the moment the last DDL returns, every query below runs once and its round
trip is timed (``first_ms``), then once more (``again_ms``). The queries are the controller's
own signals reads (the SQL of ``materialize/signals.py``, and ``read_signals`` as a whole) and
those of the shapes the predecessor (mz-clusterctl) sends, per materialize.md section 8, written
out below. ``analysed`` says which emulator base tables PostgreSQL had statistics for by then
(``pg_stat_user_tables``), so a result helped by autovacuum would show.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mz_schedctl_provider.runtime import catalog_reads, signals  # noqa: E402

SOURCE_EVERY = 50
WINDOW = "1 hour"

# The predecessor's shapes (materialize.md section 8), as it sends them.
P_CLUSTERS = "SELECT id, name FROM mz_clusters"
P_REPLICAS = "SELECT name, size FROM mz_cluster_replicas WHERE cluster_id = %s"
P_SIZES = (
    "SELECT DISTINCT ON (processes, workers) size, processes, workers, credits_per_hour"
    " FROM mz_cluster_replica_sizes WHERE size LIKE '%cc' OR size LIKE '%C'"
    " ORDER BY processes, workers, credits_per_hour"
)
P_ACTIVITY = (
    "SELECT cluster_id, max(finished_at) AS last_activity"
    " FROM mz_internal.mz_statement_execution_history_redacted"
    " WHERE cluster_id = ANY(%s) AND finished_at IS NOT NULL"
    f" AND finished_at > now() - INTERVAL '{WINDOW}'"
    " GROUP BY cluster_id"
)
P_HYDRATION = """
WITH index_hydration AS (
    SELECT c.id AS cluster_id, r.id AS replica_id, r.name AS replica_name,
           count(i.id) AS total,
           sum(CASE WHEN h.hydrated THEN 1 ELSE 0 END) AS hydrated
    FROM mz_clusters c
    JOIN mz_cluster_replicas r ON r.cluster_id = c.id
    JOIN mz_indexes i ON i.cluster_id = c.id
    LEFT JOIN mz_internal.mz_hydration_statuses h
           ON h.replica_id = r.id AND h.object_id = i.id
    GROUP BY c.id, r.id, r.name
), source_hydration AS (
    SELECT c.id AS cluster_id, r.id AS replica_id, r.name AS replica_name,
           count(s.id) AS total,
           sum(CASE WHEN h.hydrated THEN 1 ELSE 0 END) AS hydrated
    FROM mz_clusters c
    JOIN mz_cluster_replicas r ON r.cluster_id = c.id
    JOIN mz_sources s ON s.cluster_id = c.id AND s.type = 'kafka'
    LEFT JOIN mz_internal.mz_hydration_statuses h
           ON h.replica_id = r.id AND h.object_id = s.id
    GROUP BY c.id, r.id, r.name
), combined AS (
    SELECT * FROM index_hydration
    UNION ALL
    SELECT * FROM source_hydration
)
SELECT cluster_id, replica_id, replica_name, sum(total) AS total, sum(hydrated) AS hydrated
FROM combined
WHERE cluster_id = ANY(%s)
GROUP BY cluster_id, replica_id, replica_name
"""
P_CRASHES = (
    "SELECT c.id AS cluster_id, r.name AS replica_name, h.reason, h.occurred_at"
    " FROM mz_internal.mz_cluster_replica_status_history h"
    " JOIN mz_cluster_replicas r ON r.id = h.replica_id"
    " JOIN mz_clusters c ON c.id = r.cluster_id"
    " WHERE h.status = 'offline' AND h.reason IS NOT NULL AND c.id = ANY(%s)"
    f" AND h.occurred_at > now() - INTERVAL '{WINDOW}'"
    " ORDER BY h.occurred_at DESC"
)

# The controller's own reads: the statements read_signals sends (same SQL).
CONTROLLER = (
    ("controller: sizes", signals._SIZES),
    ("controller: clusters", signals.CLUSTERS_READ),
    ("controller: auto scaling + reconfigurations", signals._MZ_SCHEDULING),
    ("controller: replicas + statuses", signals._REPLICAS),
    ("controller: status history", signals._HISTORY),
    ("controller: objects", catalog_reads.USER_OBJECTS),
    ("controller: hydrated", catalog_reads.HYDRATED_OBJECTS),
)


def build(url: str, n: int) -> dict[str, Any]:
    """The fleet, one ordinary statement at a time; returns counts and build time."""
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    started = time.perf_counter()
    statements = 0
    with psycopg.connect(url, autocommit=True, application_name="bench-setup") as conn:
        conn.execute("CREATE TABLE bench_events (k int, v int)")
        conn.execute("INSERT INTO bench_events SELECT g % 97, g FROM generate_series(1, 1000) g")
        statements += 2
        for i in range(n):
            name = f"bench_{i:05d}"
            if i % SOURCE_EVERY == SOURCE_EVERY - 1:
                conn.execute(f"CREATE CLUSTER {name} REPLICAS (r1 (SIZE = '25cc'))")
                conn.execute(
                    f"CREATE SOURCE {name}_src IN CLUSTER {name} FROM KAFKA CONNECTION kafka"
                    " (TOPIC 'events') FORMAT JSON"
                )
                statements += 2
                continue
            conn.execute(f"CREATE CLUSTER {name} REPLICAS (r1 (SIZE = '25cc'), r2 (SIZE = '50cc'))")
            conn.execute(f"CREATE INDEX {name}_idx IN CLUSTER {name} ON bench_events (k)")
            conn.execute(
                f"CREATE MATERIALIZED VIEW {name}_mv IN CLUSTER {name} AS"
                f" SELECT k, count(*) AS c FROM bench_events WHERE k % 7 = {i % 7} GROUP BY k"
            )
            statements += 3
        db = Database(conn)
        Store(db).bootstrap()
        ids = [r[0] for r in conn.execute("SELECT id FROM mz_clusters WHERE name LIKE 'bench%'")]
        marks = ", ".join(["(%s, 'target_size', '{\"target_size\": \"50cc\"}')"] * len(ids))
        conn.execute(
            f"INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config) VALUES {marks}",
            ids,
        )
        statements += 3
    return {"statements": statements, "build_s": round(time.perf_counter() - started, 2)}


def _timed(run: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    rows = run()
    return (time.perf_counter() - start) * 1000, rows


def measure(url: str) -> list[dict[str, Any]]:
    """Every query once at once (first_ms), then once more (again_ms), in a fixed order."""
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    results: list[dict[str, Any]] = []

    def record(label: str, run: Callable[[], int]) -> None:
        first, rows = _timed(run)
        again, _ = _timed(run)
        results.append(
            {"query": label, "first_ms": round(first, 1), "again_ms": round(again, 1), "rows": rows}
        )

    db = Database.connect(url)
    try:
        for label, text in CONTROLLER:
            record(label, lambda text=text: len(db.query(text)))  # type: ignore[misc]
        record(
            "controller: activity",
            lambda: len(db.query(signals._ACTIVITY, ("mz-schedctl", 86400))),
        )
        store = Store(db)
        record(
            "controller: read_signals (all reads)",
            lambda: len(signals.read_signals(db, store).clusters),
        )
    finally:
        db.close()

    with psycopg.connect(url, autocommit=True, application_name="mz-clusterctl") as conn:
        simple = psycopg.ClientCursor(conn)  # the predecessor sends the sizes query unprepared
        record("predecessor: clusters", lambda: len(conn.execute(P_CLUSTERS).fetchall()))
        ids = [r[0] for r in conn.execute(P_CLUSTERS) if str(r[0]).startswith("u")]

        def replicas_each() -> int:
            rows = 0
            slowest = 0.0
            with conn.transaction():
                for cid in ids:
                    ms, got = _timed(
                        lambda cid=cid: len(conn.execute(P_REPLICAS, (cid,)).fetchall())
                    )  # type: ignore[misc]
                    slowest = max(slowest, ms)
                    rows += got
            results_slowest.append(slowest)
            return rows

        results_slowest: list[float] = []
        record("predecessor: replicas, one query per cluster (total)", replicas_each)
        results.append(
            {
                "query": "predecessor: replicas, one query per cluster (slowest one)",
                "first_ms": round(results_slowest[0], 1),
                "again_ms": round(results_slowest[1], 1),
                "rows": 1,
            }
        )
        record("predecessor: sizes", lambda: len(simple.execute(P_SIZES).fetchall()))
        record("predecessor: activity", lambda: len(conn.execute(P_ACTIVITY, (ids,)).fetchall()))
        record("predecessor: hydration", lambda: len(conn.execute(P_HYDRATION, (ids,)).fetchall()))
        record("predecessor: crashes", lambda: len(conn.execute(P_CRASHES, (ids,)).fetchall()))
    return results


def analysed(admin: str) -> list[str]:
    """Emulator base tables PostgreSQL holds statistics for (by ANALYZE or autovacuum)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'mz_emulator'"
            " AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL) ORDER BY relname"
        ).fetchall()
    return [str(r[0]) for r in rows]


def run_one(n: int) -> dict[str, Any]:
    from benchmarks.emuproc import EmulatorProcess

    with EmulatorProcess() as emu:
        built = build(emu.url, n)
        queries = measure(emu.url)
        return {"clusters": n, **built, "queries": queries, "analysed": analysed(emu.admin)}


def table(runs: list[dict[str, Any]]) -> str:
    ns = [r["clusters"] for r in runs]
    head = "| query | " + " | ".join(f"ms at N = {n} (first / again)" for n in ns) + " |"
    lines = [head, "|---|" + "---|" * len(ns)]
    for i, q in enumerate(runs[0]["queries"]):
        cells = [f"{r['queries'][i]['first_ms']} / {r['queries'][i]['again_ms']}" for r in runs]
        lines.append(f"| {q['query']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clusters", default="100,1000", help="comma-separated fleet sizes")
    p.add_argument("--json", type=Path, help="write the results (a JSON list) here")
    args = p.parse_args(argv)
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    runs = []
    for n in (int(x) for x in args.clusters.split(",")):
        run = run_one(n)
        slowest = max(q["first_ms"] for q in run["queries"] if "(total)" not in q["query"])
        print(
            f"N = {n}: built with {run['statements']} statements in {run['build_s']} s;"
            f" slowest query at once {slowest} ms; analysed: {run['analysed'] or 'none'}",
            file=sys.stderr,
        )
        runs.append(run)
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python benchmarks/catalog.py " + " ".join(argv or sys.argv[1:]),
    }
    print(f"{meta['date']}; {meta['machine']}; {meta['command']}")
    print(table(runs))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
