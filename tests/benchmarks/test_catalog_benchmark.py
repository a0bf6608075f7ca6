"""The catalog benchmark (benchmarks/catalog.py) at a tiny fleet: it builds through DDL, runs
every query and writes the documented JSON shape. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_catalog_benchmark_runs_every_query_at_tiny_n(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "catalog.py"), "--clusters", "5",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc["meta"]) == {"date", "machine", "command"}
    (run,) = doc["runs"]
    assert run["clusters"] == 5
    assert run["statements"] == 2 + 5 * 3 + 3  # table + rows, 3 DDL per cluster, tables + rows
    queries = {q["query"]: q for q in run["queries"]}
    assert len(queries) == len(run["queries"]) == 16
    for q in queries.values():
        assert isinstance(q["first_ms"], float) and q["first_ms"] >= 0, q
        assert isinstance(q["again_ms"], float) and q["again_ms"] >= 0, q
    # Rows prove the queries read the fleet: 5 clusters of 2 replicas plus quickstart's one.
    assert queries["controller: read_signals (all reads)"]["rows"] == 5  # a strategy each
    assert queries["predecessor: replicas, one query per cluster (total)"]["rows"] == 11
    # Per (cluster, replica) with indexes; mz_indexes counts introspection indexes too.
    assert queries["predecessor: hydration"]["rows"] == 11
    assert queries["predecessor: clusters"]["rows"] == 5 + 1 + 5  # + quickstart + system
    assert queries["controller: objects"]["rows"] == 10  # an index and an MV per cluster
    # The emulator had analysed its tables itself (autovacuum cannot have, this early).
    assert "replicas" in run["analysed"] and "items" in run["analysed"]
    assert "| predecessor: hydration |" in done.stdout
