"""Shadow rows against the emulator: audited only (status shadow), never a failed run, never
a claim on a real replica, and no DDL."""

from __future__ import annotations

import pytest
from mzsupport import (
    add_strategy,
    cli,
    ddl_sent,
    make_cluster,
    q,
    replicas,
    run_cycle,
    state_payload,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")

SHADOW_BURST = {"burst_replica_size": "400cc", "max_burst_s": 600, "shadow": True}


def mine(emu: Emulator, name: str) -> list[str]:
    return [s for s in ddl_sent(emu) if f"REPLICA {q(name)}." in s]


def test_a_shadow_burst_past_max_burst_s_does_not_fail_the_run(
    emulator: Emulator, db: Database, name: str
) -> None:
    # The base hydrates for two hours: a real burst would be stuck after max_burst_s.
    cid = make_cluster(emulator, name, size="25cc", objects="index", hydration="2 hours")
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc"})
    add_strategy(emulator, cid, "burst", SHADOW_BURST)
    run = run_cycle(db, only=name)
    assert [(a["kind"], a["replica_name"]) for a in run.actions(status="shadow")] == [
        ("create_replica", "burst")
    ]
    emulator.advance(700)
    run = run_cycle(db, only=name)
    assert run.outcome.problems == [] and run.cluster(name)["errors"] == []
    (stuck,) = [f for f in run.cluster(name)["findings"] if f["code"] == "stuck"]
    assert stuck["severity"] == "warning" and stuck["message"].startswith("shadow burst")
    done = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert mine(emulator, name) == []


def test_a_shadow_burst_does_not_claim_a_humans_replica(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index", hydration="2 hours")
    emulator.execute(f"CREATE CLUSTER REPLICA {q(name)}.{q('burst')} (SIZE = '400cc')")
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc"})
    add_strategy(emulator, cid, "burst", SHADOW_BURST)
    run_cycle(db, only=name)
    burst = state_payload(emulator, cid)["strategies"]["burst"]  # type: ignore[index]
    assert "replica_name" not in burst
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "400cc"}
