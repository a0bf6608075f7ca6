"""Apply's statements and wall time, previous commit against this tree, at several fleet sizes
and network round-trip times, in one run:

    .venv/bin/python benchmarks/apply_compare.py --clusters 10,100,1000 --rtt-ms 0,20

The previous commit (``--previous``, default ``main``) is checked out with ``git worktree add``
into a temporary directory; each (tree, N) runs in a worker process of its own that imports
that tree's ``mz_schedctl_provider`` (this tree's benchmarks/ and emulator drive both, so both
meet the same emulator and the same fleet). A worker builds the fleet of benchmarks/scenario.py
once with no delay, snapshots it, then per round-trip time sets the emulator's latency knob
(one-way ``latency_ms`` = RTT / 2: the delay applies in each direction), opens a new
connection and repeats: restore the snapshot, claim + collect, decide, then apply, timed and
counted (statements, and round trips: statements waited for one by one, a pipeline counts
once), then persist. The previous commit has no pipelines: its round trips are its statements.

Checks printed under the table, per tree and N: apply statements per executed action, and at
each RTT > 0 the latency-attributable time wall(RTT) - wall(0) against round trips x RTT, and
round trips against actions + 10.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def worker(n: int, tree: Path, rtts: list[float], reps: int) -> dict[str, Any]:
    # This tree's benchmark modules first (they import the package only inside functions),
    # then the package from the tree under test.
    from benchmarks import scenario
    from benchmarks.emuproc import EmulatorProcess
    from benchmarks.snapshot import Snapshot

    sys.path.insert(0, str(tree))
    import mz_schedctl_provider

    where = Path(mz_schedctl_provider.__file__).resolve()
    assert where.is_relative_to(tree.resolve()), f"imported {where}, not from {tree}"
    from mz_schedctl_provider.runtime import cycle
    from mz_schedctl_provider.runtime.db import Database

    settings = cycle.CycleSettings(holder="apply-compare")
    out: dict[str, Any] = {"clusters": n, "package": str(where.parent), "runs": []}
    with EmulatorProcess() as emu:
        scenario.build(emu.url, n)
        snap = Snapshot(emu.admin)
        snap.take()
        for rtt in rtts:
            emu.set_latency(rtt / 2)
            db = Database.connect(emu.url)
            runs = []
            try:
                for rep in range(reps):
                    snap.restore()
                    cycle_id = f"cmp-{n}-{rtt:g}-{rep}"
                    assert cycle.claim_lease(db, settings, cycle_id=cycle_id).acquired
                    signals = cycle.collect(db, settings)
                    plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False)
                    statements = db.statements
                    round_trips = getattr(db, "round_trips", db.statements)
                    start = time.perf_counter()
                    result = cycle.apply(plan, db, settings)
                    wall = time.perf_counter() - start
                    sent = db.statements - statements
                    waited = getattr(db, "round_trips", db.statements) - round_trips
                    cycle.persist(plan, result, db, settings)
                    planned = sum(
                        a["status"] == "planned" for c in plan["clusters"] for a in c["actions"]
                    )
                    outcomes: dict[str, int] = {}
                    for r in result["results"]:
                        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
                    runs.append(
                        {"apply_s": wall, "statements": sent, "round_trips": waited,
                         "actions": planned, "outcomes": outcomes}
                    )  # fmt: skip
            finally:
                db.close()
            last = runs[-1]
            out["runs"].append(
                {
                    "rtt_ms": rtt,
                    "apply_s": round(statistics.median(r["apply_s"] for r in runs), 3),
                    "apply_s_runs": [round(r["apply_s"], 3) for r in runs],
                    "statements": last["statements"],
                    "round_trips": last["round_trips"],
                    "actions": last["actions"],
                    "executed": last["outcomes"].get("succeeded", 0),
                    "outcomes": last["outcomes"],
                }
            )
    return out


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _run_worker(n: int, tree: Path, rtts: str, reps: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n), "--tree",
           str(tree), "--rtt-ms", rtts, "--reps", str(reps)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": "/tmp"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"worker N={n} {tree} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rows(label: str, got: dict[str, Any]) -> tuple[list[str], list[str]]:
    lines, checks = [], []
    base = next((r for r in got["runs"] if r["rtt_ms"] == 0), None)
    for r in got["runs"]:
        per_action = r["statements"] / r["executed"] if r["executed"] else float("nan")
        extra = latency = ""
        if base is not None and r["rtt_ms"] > 0:
            latency_s = r["apply_s"] - base["apply_s"]
            expected_s = r["round_trips"] * r["rtt_ms"] / 1000
            ratio = latency_s / expected_s if expected_s else float("nan")
            extra = f"{latency_s:.2f} | {expected_s:.2f} | {ratio:.2f}"
            latency = (
                f"{label} N={got['clusters']} RTT {r['rtt_ms']:g} ms: wall(RTT) - wall(0) ="
                f" {latency_s:.2f} s, round trips x RTT = {expected_s:.2f} s (ratio"
                f" {ratio:.2f}, within 1.3x: {1 / 1.3 <= ratio <= 1.3}); round trips"
                f" {r['round_trips']} vs actions + 10 = {r['actions'] + 10}"
                f" ({r['round_trips'] <= r['actions'] + 10})"
            )
        else:
            extra = "| |"
        lines.append(
            f"| {got['clusters']} | {label} | {r['rtt_ms']:g} | {r['actions']} | {r['executed']} "
            f"| {r['statements']} | {per_action:.2f} | {r['round_trips']} | {r['apply_s']:.2f} "
            f"| {extra} |"
        )
        if latency:
            checks.append(latency)
    return lines, checks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clusters", default="10,100,1000")
    p.add_argument("--rtt-ms", default="0,20", help="round-trip times; must include 0")
    p.add_argument("--reps", type=int, default=3, help="repetitions per (tree, N, RTT)")
    p.add_argument("--large-reps", type=int, default=1, help="repetitions from N = 1,000 on")
    p.add_argument("--previous", default="main", help="the commit to compare against")
    p.add_argument("--json", type=Path)
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    rtts = [float(x) for x in args.rtt_ms.split(",") if x.strip()]
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.tree, rtts, args.reps)))
        return 0

    previous = _git("rev-parse", "--short", args.previous)
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    head = _git("rev-parse", "--short", "HEAD") + ("+uncommitted" if dirty else "")
    tmp = Path(tempfile.mkdtemp(prefix="mz-apply-compare-"))
    tree_prev = tmp / "previous"
    _git("worktree", "add", "--detach", str(tree_prev), previous)
    results: list[dict[str, Any]] = []
    lines = [
        "| clusters | commit | RTT ms | actions | executed | apply statements "
        "| stmts/action | round trips | apply s | wall(RTT)-wall(0) s | round trips x RTT s "
        "| ratio |",
        "|" + "---|" * 12,
    ]
    checks: list[str] = []
    try:
        for n in [int(x) for x in args.clusters.split(",") if x.strip()]:
            reps = args.large_reps if n >= 1000 else args.reps
            for label, tree in ((f"{previous} (previous)", tree_prev), (f"{head} (new)", REPO)):
                start = time.perf_counter()
                got = _run_worker(n, tree, args.rtt_ms, reps)
                got["commit"] = label
                results.append(got)
                rows, found = _rows(label, got)
                lines += rows
                checks += found
                print(f"N={n} {label}: {time.perf_counter() - start:.0f} s", file=sys.stderr,
                      flush=True)  # fmt: skip
    finally:
        _git("worktree", "remove", "--force", str(tree_prev))
    print(f"command: python benchmarks/apply_compare.py --clusters {args.clusters} --rtt-ms "
          f"{args.rtt_ms} --reps {args.reps} --large-reps {args.large_reps} --previous "
          f"{args.previous}; machine: {os.cpu_count()} cores")  # fmt: skip
    print("\n".join(lines))
    print("\n".join(checks))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
