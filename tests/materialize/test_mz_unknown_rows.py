"""Rows for an unknown cluster id against the emulator (defect 12): a cluster's name typed as
its id and a dropped cluster's leftovers are reported by row in the plan, with the id when the
value is a cluster's name; the run does not fail (exit 0), now or on any later run, and the
other clusters go on."""

from __future__ import annotations

import pytest
from mzsupport import add_strategy, cli, make_cluster, q, replicas, run_cycle

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def test_a_name_as_cluster_id_and_a_dropped_cluster_warn_by_row(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    gone = make_cluster(emulator, f"{name}_gone", objects="index")
    good = make_cluster(emulator, f"{name}_good", objects="index")
    add_strategy(emulator, name, "target_size", {"target_size": "100cc"})  # its name, not cid
    add_strategy(emulator, gone, "idle_suspend", {"idle_after_s": 600})
    add_strategy(emulator, good, "target_size", {"target_size": "100cc"})
    emulator.execute(f"DROP CLUSTER {q(name + '_gone')} CASCADE")
    emulator.advance(70)

    run = run_cycle(db, pattern=f"{name}(_.*)?")

    messages = [f["message"] for f in run.plan["findings"]]  # type: ignore[union-attr]
    assert messages == [
        f"strategy row 'target_size': cluster_id {name!r} is a cluster's name; "
        f"its id is {cid}: the row is ignored",
    ]
    assert [c["cluster_name"] for c in run.plan["clusters"]] == [f"{name}_good"]  # type: ignore[union-attr]
    assert run.outcome.problems == []
    assert replicas(emulator, name) == {"r1": "25cc"}  # the misaddressed row did nothing
    assert replicas(emulator, f"{name}_good") == {"r1": "25cc", "r_100cc": "100cc"}

    # Unfiltered, the dropped cluster's leftovers are reported too; the CLI prints both
    # warnings and exits 0, on this run and the next.
    for _ in range(2):
        done = cli("plan", url=emulator.url)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout + done.stderr
        assert f"cluster_id {name!r} is a cluster's name; its id is {cid}" in out
        assert (
            f"strategy row 'idle_suspend': cluster_id {gone!r} is no cluster's id "
            "(a typo, or the cluster was dropped): the row is ignored"
        ) in out
        emulator.advance(60)
