"""The manual wipe-state DAG: clears stored state, of filtered clusters or of all."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import (
    DAGS_FOLDER,
    add_strategy,
    bootstrap,
    load_dag,
    make_cluster,
    run_dag,
    state,
    xcom,
)


def state_rows(emu: Any) -> dict[str, int]:
    rows = emu.execute("SELECT cluster_id, count(*) FROM mz_cluster_strategy_state GROUP BY 1")
    return {str(cid): int(n) for cid, n in rows}


def test_wipe_state_clears_filtered_then_all_clusters(mz_conn: str, emulator: Any) -> None:
    bootstrap(emulator)
    ids = {}
    for name in ("wipe_a", "wipe_b", "keep_c"):
        ids[name] = make_cluster(emulator, name)
        add_strategy(emulator, ids[name], "target_size", {"target_size": "25cc"})
    emulator.advance(120)
    cycle = load_dag(DAGS_FOLDER, "mz_schedctl_cycle")
    assert state(run_dag(cycle)) == "success"
    assert set(state_rows(emulator)) == set(ids.values())

    wipe = load_dag(DAGS_FOLDER, "mz_schedctl_wipe_state")
    dr = run_dag(wipe, {"filter_clusters": "wipe_.*"})
    assert state(dr) == "success"
    result = xcom(dr, "wipe_state")
    assert result["deleted_state_rows"] == 2
    assert result["clusters"] == ["wipe_a", "wipe_b"]
    assert set(state_rows(emulator)) == {ids["keep_c"]}
    # Strategies and audit are kept.
    assert emulator.execute("SELECT count(*) FROM mz_cluster_strategies") == [(3,)]

    dr = run_dag(wipe)
    assert state(dr) == "success"
    assert xcom(dr, "wipe_state")["deleted_state_rows"] >= 1
    assert state_rows(emulator) == {}
    # The next cycle starts fresh and writes state again.
    assert state(run_dag(cycle)) == "success"
    assert set(state_rows(emulator)) == set(ids.values())


def test_wipe_state_rejects_a_bad_filter(mz_conn: str, emulator: Any) -> None:
    wipe = load_dag(DAGS_FOLDER, "mz_schedctl_wipe_state")
    dr = run_dag(wipe, {"filter_clusters": "wipe_(["})
    assert state(dr) == "failed"
