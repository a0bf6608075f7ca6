"""The benchmark harness (benchmarks/run.py) at tiny N: it runs end to end and writes the JSON
shape the README documents. No timing is asserted: timings belong to the benchmark, not CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
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
}


def test_harness_writes_one_object_per_n_with_constant_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--clusters", "3,6",
         "--reps", "1", "--no-airflow", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert isinstance(rows, list)
    assert [r["clusters"] for r in rows] == [3, 6]
    for row in rows:
        assert set(row) >= KEYS, KEYS - set(row)
        assert isinstance(row["round_trips"], int) and row["round_trips"] > 0
        for key in ("signals_s", "decide_s", "apply_s", "persist_s"):
            assert isinstance(row[key], float) and row[key] >= 0, key
        assert row["xcom_bytes_per_cluster"] > 0
        assert row["peak_rss_mb"] > 0
        assert row["dag_parse_s"] is None  # --no-airflow
        # The repetition did real work: the plan's DDL ran and every cluster got a state row.
        assert row["actions_executed_per_rep"][0] > 0
        assert row["apply_round_trips_per_action"] > 1
        assert row["states_written"] == row["clusters"]
        assert row["problems"] == 0
    # The signals task's statement count does not depend on the number of clusters.
    assert rows[0]["round_trips"] == rows[1]["round_trips"]
    # The printed table has one line per N.
    assert "| 3 |" in done.stdout and "| 6 |" in done.stdout
