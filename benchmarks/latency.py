"""What the emulator's ``--latency-ms`` costs a client: connect, one round trip, K statements
one by one and the same K in one psycopg 3 pipeline, at each latency given (medians).

    .venv/bin/python benchmarks/latency.py --latency-ms 0,50,200 --statements 10 --reps 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import psycopg

from mz_schedctl_provider.emulator.control import run_emulator


def _median(reps: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(latency_ms: float, statements: int, reps: int) -> dict[str, float]:
    with run_emulator(port=0, latency_ms=latency_ms) as emu:
        connect = _median(reps, lambda: psycopg.connect(emu.url, autocommit=True).close())
        with psycopg.connect(emu.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench (a int)")

            def one() -> None:
                conn.execute("SELECT 1").fetchall()

            def serial() -> None:
                for i in range(statements):
                    conn.execute("INSERT INTO bench VALUES (%s)", (i,))

            def pipelined() -> None:
                with conn.pipeline():
                    for i in range(statements):
                        conn.execute("INSERT INTO bench VALUES (%s)", (i,))

            return {
                "latency_ms": latency_ms,
                "connect_s": connect,
                "round_trip_s": _median(reps, one),
                "serial_s": _median(reps, serial),
                "pipelined_s": _median(reps, pipelined),
            }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency-ms", default="0,50,200", help="comma-separated one-way delays")
    p.add_argument("--statements", type=int, default=10, help="K, statements per batch")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    k = args.statements
    print(f"| latency ms | connect s | round trip s | {k} serial s | {k} pipelined s |")
    print("|---|---|---|---|---|")
    for value in args.latency_ms.split(","):
        r = measure(float(value), k, args.reps)
        print(
            f"| {r['latency_ms']:g} | {r['connect_s']:.3f} | {r['round_trip_s']:.3f} "
            f"| {r['serial_s']:.3f} | {r['pipelined_s']:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
