"""A cluster's first failed action stops its remaining actions (behaviour.md: the executor stops
a cluster after its first failure; other clusters go on): over the real socket with both
drivers, a suspend of two replicas whose first DROP Materialize refuses."""

from __future__ import annotations

import pytest
from mzsupport import add_strategy, connect, make_cluster, replicas, run_cycle

from mz_schedctl_provider.emulator.control import Emulator

pytestmark = pytest.mark.usefixtures("tables")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_after_a_failed_drop_the_clusters_next_drop_is_not_sent(
    emulator: Emulator, name: str, driver: str
) -> None:
    cid = make_cluster(emulator, name, objects=None)
    emulator.execute(f'CREATE CLUSTER REPLICA "{name}"."r2" (SIZE = \'25cc\')')
    other = make_cluster(emulator, f"{name}_other", objects=None)
    for c in (cid, other):
        add_strategy(emulator, c, "idle_suspend", {"idle_after_s": 60})
    emulator.advance(180)  # idle past idle_after_s and the log's flush lag
    emulator.inject_fault(rf'^\s*DROP CLUSTER REPLICA "{name}"\."r1"', "error", "refused")
    db = connect(emulator, driver)
    try:
        run = run_cycle(db, pattern=f"{name}|{name}_other")
    finally:
        emulator.execute("SELECT mz_emulator.clear_faults()")
        db.close()
    ours = [
        (a["replica_name"], r["outcome"])
        for a, r in zip(run.actions(), run.result["results"], strict=True)  # type: ignore[arg-type]
        if a["cluster_name"] == name
    ]
    assert ours == [("r1", "failed"), ("r2", "not_executed")]
    assert replicas(emulator, name) == {"r1": "25cc", "r2": "25cc"}
    assert replicas(emulator, f"{name}_other") == {}  # the other cluster went on
