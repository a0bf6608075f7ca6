"""Backtest replay speed: a week of 2-minute cycles for N clusters through the real planner
(engine/backtest.py), with and without skipping unchanged cycles, and a check that both give
the same replay. Pure engine: no emulator (the reads are a fixed 9 statements, measured by
tests/materialize/test_mz_backtest.py).

The fleet cycles through five workloads (as the synthetic week of the tests): business hours
(hourly queries 09:00 .. 17:00 on weekdays, idle_suspend 3600), a nightly 20-minute batch
(idle_suspend 1800), an idle cluster (idle_suspend 3600), a cluster with a source (never
suspended), and a cluster with an index that hydrates in 30 s (idle_suspend 600, one query a
day at 09:00).

    .venv/bin/python benchmarks/backtest.py --clusters 100 [--days 7] [--cycle 120] [--no-full]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mz_schedctl_provider.engine.backtest import (
    BacktestRules,
    ClusterHistory,
    Statement,
)
from mz_schedctl_provider.engine.backtest_report import backtest
from mz_schedctl_provider.engine.cost import ReplicaSpan, Window
from mz_schedctl_provider.engine.models import Cluster, Size, StrategyRow

W = datetime(2026, 11, 16, tzinfo=timezone.utc)  # a Monday
SIZES = (Size("25cc", 0.25, 1 << 30), Size("50cc", 0.5, 1 << 31), Size("100cc", 1.0, 1 << 32))


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return W + timedelta(days=day, hours=hour, minutes=minute)


def fleet(n: int, days: int) -> tuple[list[ClusterHistory], list[StrategyRow]]:
    histories: list[ClusterHistory] = []
    rows: list[StrategyRow] = []
    for i in range(n):
        kind = i % 5
        cid, name = f"u{1000 + i}", f"bench_{i}"
        size = ("100cc", "50cc", "25cc", "25cc", "25cc")[kind]
        idle = (3600, 1800, 3600, 3600, 600)[kind]
        st: list[Statement] = []
        if kind == 0:
            for d in range(days):
                if d % 7 < 5:
                    for h in range(9, 18):
                        st.append(Statement(_at(d, h), _at(d, h) + timedelta(seconds=1)))
        elif kind == 1:
            for d in range(days):
                st.append(Statement(_at(d, 2), _at(d, 2, 20)))
        elif kind == 4:
            for d in range(days):
                st.append(Statement(_at(d, 9), _at(d, 9) + timedelta(seconds=1)))
        span = ReplicaSpan(f"r{i}", cid, name, "r1", size, W - timedelta(hours=1), None, None)
        cluster = Cluster(id=cid, name=name, sources=int(kind == 3), indexes=int(kind == 4))
        histories.append(
            ClusterHistory(
                cluster=cluster,
                spans=(span,),
                statements=tuple(st),
                hydration_s={"25cc": 30.0} if kind == 4 else {},
            )
        )
        rows.append(StrategyRow(cid, "idle_suspend", {"idle_after_s": idle}))
    return histories, rows


def run(n: int, days: int, cycle_s: float, skip: bool) -> tuple[float, list[Any], int]:
    histories, rows = fleet(n, days)
    window = Window(W, W + timedelta(days=days))
    t0 = time.perf_counter()
    results = backtest(
        histories=histories,
        rows=rows,
        sizes=SIZES,
        window=window,
        rules=BacktestRules(cycle_s=cycle_s, skip_unchanged=skip),
    )
    wall = time.perf_counter() - t0
    cycles = sum(c.replay.cycles_run for c in results)
    return wall, results, cycles


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--clusters", type=int, default=100)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--cycle", type=float, default=120.0)
    p.add_argument("--no-full", action="store_true", help="skip the run without skipping")
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    out: dict[str, Any] = {
        "clusters": a.clusters,
        "days": a.days,
        "cycle_s": a.cycle,
        "cycles_per_cluster": int(a.days * 86400 / a.cycle) + 1,
    }
    wall, fast, cycles = run(a.clusters, a.days, a.cycle, skip=True)
    out.update(skip_wall_s=round(wall, 2), skip_cycles_run=cycles)
    if not a.no_full:
        wall, full, cycles = run(a.clusters, a.days, a.cycle, skip=False)
        same = all(
            (x.replay.replicas, x.replay.actions) == (y.replay.replicas, y.replay.actions)
            for x, y in zip(fast, full, strict=True)
        )
        out.update(full_wall_s=round(wall, 2), full_cycles_run=cycles, same_replay=same)
    out["simulated_credits"] = round(sum(c.simulated_credits for c in fast), 6)
    out["recorded_credits"] = round(sum(c.recorded_credits for c in fast), 6)
    print(json.dumps(out, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if out.get("same_replay", True) else 1


if __name__ == "__main__":
    sys.exit(main())
