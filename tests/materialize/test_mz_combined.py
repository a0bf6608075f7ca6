"""target_size + burst + idle_suspend on one cluster, against the emulator: the strategies run
in priority order on one desired set, each keeps its own state under its own key, and each
cooldown is measured from that strategy's own last action only."""

from __future__ import annotations

from typing import Any

import pytest
from mzsupport import (
    add_strategy,
    hydrated_replicas,
    make_cluster,
    replicas,
    run_cycle,
    state_payload,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def strategies(emu: Emulator, cid: str) -> dict[str, Any]:
    payload = state_payload(emu, cid)
    assert payload is not None
    return dict(payload["strategies"])


def last_action(emu: Emulator, cid: str) -> dict[str, str | None]:
    return {k: v.get("last_action_at") for k, v in strategies(emu, cid).items()}


def test_three_strategies_on_one_cluster_keep_independent_state_and_cooldowns(
    emulator: Emulator, db2: Database, name: str
) -> None:
    """Through psycopg2 (Airflow 2.11's driver); every other scenario runs on both."""
    db = db2
    # Data as big as 60 s at 25cc: r1 hydrates at ~63 s.
    cid = make_cluster(emulator, name, size="25cc", objects="index", hydration="60 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "cooldown_s": 300})
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc"})
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 900})

    # t=0: nothing hydrated. target_size creates r_100cc, burst adds its 800cc replica.
    run = run_cycle(db, only=name)
    assert sorted((a["strategy"], a["replica_name"]) for a in run.actions()) == [
        ("burst", "burst"),
        ("target_size", "r_100cc"),
    ]
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc", "burst": "800cc"}
    first = last_action(emulator, cid)
    assert first["target_size"] is not None and first["burst"] is not None
    assert first["idle_suspend"] is None
    assert set(strategies(emulator, cid)) == {"target_size", "burst", "idle_suspend"}

    # t=40: r_100cc is hydrated, r1 is not. target_size is cooling down (300 s from its own
    # action) so r1 stays; burst has no cooldown and drops its replica now.
    emulator.advance(40)
    assert hydrated_replicas(emulator, name) == {"r_100cc", "burst"}
    run = run_cycle(db, only=name)
    assert any(n.startswith("target_size: in cooldown until") for n in run.cluster(name)["notes"])
    assert [(a["strategy"], a["kind"], a["replica_name"]) for a in run.actions()] == [
        ("burst", "drop_replica", "burst")
    ]
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    second = last_action(emulator, cid)
    assert second["target_size"] == first["target_size"], "target_size did not act"
    assert second["burst"] != first["burst"], "burst's own cooldown anchor moved"

    # t=310: target_size's cooldown is over: it retires r1 (r_100cc is hydrated).
    emulator.advance(270)
    run = run_cycle(db, only=name)
    assert [(a["strategy"], a["kind"], a["replica_name"]) for a in run.actions()] == [
        ("target_size", "drop_replica", "r1")
    ]
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    third = last_action(emulator, cid)
    assert third["target_size"] != second["target_size"]
    assert third["burst"] == second["burst"]

    # t=910: idle for idle_after_s since the strategy was configured: suspend.
    emulator.advance(600)
    run = run_cycle(db, only=name)
    assert [(a["strategy"], a["kind"]) for a in run.actions()] == [("idle_suspend", "drop_replica")]
    assert replicas(emulator, name) == {}
    fourth = last_action(emulator, cid)
    assert fourth["idle_suspend"] is not None
    assert fourth["target_size"] == third["target_size"]
    assert fourth["burst"] == third["burst"]
    idle = strategies(emulator, cid)["idle_suspend"]
    assert idle["remembered"] == [{"name": "r_100cc", "size": "100cc"}]

    # Suspended: target_size would want its replica back, burst would want to help, but a
    # suspended cluster stays suspended until someone queries it.
    emulator.advance(60)
    run = run_cycle(db, only=name)
    assert [a for a in run.actions() if a["status"] == "planned"] == []
    assert replicas(emulator, name) == {}

    # Activity: resume with the replica target_size wants (the remembered one).
    emulator.record_activity(name)
    emulator.advance(1)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r_100cc": "100cc"}

    # Resumed but not hydrated yet: burst helps again; then goes once r_100cc is hydrated.
    emulator.advance(2)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r_100cc": "100cc", "burst": "800cc"}
    emulator.advance(40)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    assert hydrated_replicas(emulator, name) == {"r_100cc"}
