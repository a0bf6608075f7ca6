"""Build a realistic fleet of N clusters in a running emulator, through its SQL surface only.

Every cluster is unmanaged, has 2-3 replicas, one or two materialized views with an index, and
strategy rows; every 50th hosts a load-generator source (so it has a single replica: Materialize
allows no second replica there). The emulated timeline is:

* T0: clusters, replicas, objects and strategy rows are created (one DDL statement each: the
  emulator answers ~150-250 DDL/s here, so 1,000 clusters take ~20-40 s; the rows and the
  activity are batched: one INSERT / one SELECT per step).
* T0 + 2 min: everything is online and hydrated, except the ``hydrating`` profile whose
  hydration delay is 10 hours (a replica that is still catching up). Every other cluster's data
  is as big as 60 s of hydration at 25cc (set explicitly, instance-wide: the emulator would
  otherwise estimate ~1 s for these small views), so figures stay comparable across runs.
* 12 steps of 15 minutes: activity on the clusters that are in use (``record_activity``,
  batched in one statement per step, plus real ``SELECT``s on their materialized views through a
  session whose ``cluster`` is set, logged like Materialize's statement log); the idle profile
  only gets activity in the first hour. OOM kills in the last hour on every 13th cluster.
* At the end: an OOM right now on every 17th cluster and a fresh third replica on some active
  clusters, so some replicas are initializing or hydrating when the benchmark reads.

Profiles (by cluster index; ``profile(i)``) and what the first cycle does with them:

=============  ============================================  =====================================
profile        strategies                                    first cycle
=============  ============================================  =====================================
resize         target_size 50cc                              create r_50cc
resized        target_size 50cc (r_50cc exists, hydrated)    drop r1, r2
hydrating      target_size 25cc + burst 400cc                create burst (nothing hydrated)
burst_done     burst 400cc                                   nothing (hydrated)
idle           idle_suspend 1800 s                           suspend: drop both replicas
active         idle_suspend 1800 s                           nothing (queried recently)
combo          target_size 50cc + burst 400cc + idle 1800 s  create r_50cc and burst
source         target_size 50cc (one replica, a source)      nothing: resize impossible (info)
=============  ============================================  =====================================
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

STEPS = 12
STEP_S = 900
HYDRATE_S = 120
IDLE_AFTER_S = 1800
REAL_QUERIES_PER_STEP = 20

_PROFILES = (
    "resize",
    "resize",
    "resized",
    "hydrating",
    "burst_done",
    "idle",
    "idle",
    "active",
    "active",
    "combo",
)


def profile(i: int) -> str:
    if i % 50 == 49:
        return "source"
    return _PROFILES[i % len(_PROFILES)]


def name_of(i: int) -> str:
    return f"bench_{i:04d}"


def _replicas(i: int, kind: str) -> list[tuple[str, str]]:
    if kind == "source":
        return [("r1", "25cc")]
    if kind == "resized":
        return [("r1", "25cc"), ("r2", "25cc"), ("r_50cc", "50cc")]
    if kind == "hydrating":
        # r2 is of another size: target_size retires it only once r_25cc is hydrated.
        return [("r_25cc", "25cc"), ("r2", "50cc")]
    if kind == "active" and i % 3 == 0:
        return [("r1", "25cc"), ("r2", "25cc"), ("r3", "50cc")]
    return [("r1", "25cc"), ("r2", "25cc")]


def _strategies(kind: str) -> list[tuple[str, dict[str, Any]]]:
    idle = {"idle_after_s": IDLE_AFTER_S, "allow_with_maintained_objects": True}
    return {
        "resize": [("target_size", {"target_size": "50cc"})],
        "resized": [("target_size", {"target_size": "50cc"})],
        "hydrating": [
            # Its data takes 10 hours to hydrate: within its resize window, not a stuck resize.
            ("target_size", {"target_size": "25cc", "resize_timeout_s": 43200}),
            ("burst", {"burst_replica_size": "400cc", "max_burst_s": 7200}),
        ],
        "burst_done": [("burst", {"burst_replica_size": "400cc"})],
        "idle": [("idle_suspend", idle)],
        "active": [("idle_suspend", idle)],
        "combo": [
            ("target_size", {"target_size": "50cc"}),
            ("burst", {"burst_replica_size": "400cc", "cooldown_s": 60}),
            ("idle_suspend", idle),
        ],
        "source": [("target_size", {"target_size": "50cc"})],
    }[kind]


def _in_use(kind: str) -> bool:
    return kind in ("active", "combo")


@dataclass
class BuildReport:
    clusters: int
    replicas: int = 0
    objects: int = 0
    strategy_rows: int = 0
    activity_rows: int = 0
    real_queries: int = 0
    ooms: int = 0
    ddl_statements: int = 0
    seconds: float = 0.0
    profiles: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build(url: str, n: int, *, password: str | None = None) -> BuildReport:
    """Create the fleet of ``n`` clusters at the emulator ``url``; returns what was made."""
    from mz_schedctl_provider.runtime.db import Database
    from mz_schedctl_provider.runtime.store import Store

    started = time.perf_counter()
    report = BuildReport(clusters=n)
    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "bench-setup"}
    if password is not None:
        kwargs["password"] = password
    with psycopg.connect(url, **kwargs) as conn:
        db = Database(conn)
        Store(db).bootstrap()
        conn.execute("SELECT mz_emulator.set_delays(NULL, interval '60 seconds')")
        conn.execute("CREATE TABLE IF NOT EXISTS bench_events (k int, v int)")
        conn.execute("INSERT INTO bench_events SELECT g % 97, g FROM generate_series(1, 2000) g")
        ddl = 0
        for i in range(n):
            kind = profile(i)
            report.profiles[kind] = report.profiles.get(kind, 0) + 1
            name = name_of(i)
            reps = _replicas(i, kind)
            if kind == "source":
                conn.execute(f"CREATE CLUSTER {name} REPLICAS (r1 (SIZE = '25cc'))")
                conn.execute(f"CREATE SOURCE {name}_counter IN CLUSTER {name}"
                             " FROM LOAD GENERATOR COUNTER")  # fmt: skip
                ddl += 2
                report.objects += 1
            else:
                spec = ", ".join(f"{r} (SIZE = '{s}')" for r, s in reps)
                conn.execute(f"CREATE CLUSTER {name} REPLICAS ({spec})")
                ddl += 1
            if kind == "hydrating":
                conn.execute(
                    "SELECT mz_emulator.set_hydration_delay(%s, interval '10 hours')", (name,)
                )
            for m in range(1 + i % 2):
                mv = f"{name}_mv{m}"
                conn.execute(
                    f"CREATE MATERIALIZED VIEW {mv} IN CLUSTER {name} AS"
                    f" SELECT k, count(*) AS c, sum(v) AS s FROM bench_events"
                    f" WHERE k % {m + 2} = {i % (m + 2)} GROUP BY k"
                )
                conn.execute(f"CREATE INDEX {mv}_k IN CLUSTER {name} ON {mv} (k)")
                ddl += 2
                report.objects += 2
            report.replicas += len(reps)
        report.ddl_statements = ddl
        ids = dict(
            conn.execute(
                "SELECT name, id FROM mz_catalog.mz_clusters WHERE name LIKE 'bench\\_%'"
            ).fetchall()
        )
        rows: list[Any] = []
        for i in range(n):
            for kind, config in _strategies(profile(i)):
                rows += [ids[name_of(i)], kind, json.dumps(config)]
        marks = ", ".join(["(%s, %s, %s::jsonb)"] * (len(rows) // 3))
        conn.execute(
            f"INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config) VALUES {marks}",
            rows,
        )
        report.strategy_rows = len(rows) // 3
        conn.execute("SELECT mz_emulator.advance(make_interval(secs => %s))", (HYDRATE_S,))

        in_use = [name_of(i) for i in range(n) if _in_use(profile(i))]
        idle = [name_of(i) for i in range(n) if profile(i) == "idle"]
        for step in range(STEPS):
            conn.execute("SELECT mz_emulator.advance(make_interval(secs => %s))", (STEP_S,))
            batch = list(in_use) + (idle if step < 4 else [])
            # A few statements per cluster per step, as dashboards and apps would send.
            batch = batch * (1 + step % 3)
            if batch:
                conn.execute(
                    "SELECT count(mz_emulator.record_activity(c)) FROM unnest(%s::text[]) c",
                    (batch,),
                )
                report.activity_rows += len(batch)
            for j in range(min(REAL_QUERIES_PER_STEP, len(in_use))):
                target = in_use[(step * REAL_QUERIES_PER_STEP + j) % len(in_use)]
                conn.execute(f"SET cluster = {target}")
                conn.execute(f"SELECT sum(c) FROM {target}_mv0")
                report.real_queries += 1
            conn.execute("SET cluster = quickstart")
            if step == STEPS - 3:
                report.ooms += _ooms(conn, n, every=13)
        report.ooms += _ooms(conn, n, every=17)
        # Fresh replicas on some active clusters: initializing/hydrating when the cycle reads.
        for i in range(n):
            if profile(i) == "active" and i % 3 == 1:
                conn.execute(f"CREATE CLUSTER REPLICA {name_of(i)}.r3 (SIZE = '50cc')")
                report.replicas += 1
                report.ddl_statements += 1
        conn.execute("SELECT mz_emulator.advance(interval '1 second')")
    report.seconds = time.perf_counter() - started
    return report


def _ooms(conn: psycopg.Connection[Any], n: int, *, every: int) -> int:
    targets = [name_of(i) for i in range(0, n, every) if profile(i) != "hydrating"]
    if targets:
        conn.execute(
            "SELECT count(mz_emulator.inject_oom(c, 'r1')) FROM unnest(%s::text[]) c",
            (targets,),
        )
    return len(targets)
