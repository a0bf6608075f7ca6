"""runtime/cluster_events.py on real cycles against the emulator: the event per changed
cluster (suspended, resumed, burst_started, burst_ended, resized) with its extras; none for
a cycle that changed nothing or a dry run."""

from __future__ import annotations

import psycopg
import pytest
from mzsupport import add_strategy, make_cluster, q, replicas, run_cycle

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.cluster_events import cluster_asset_uri, cluster_events
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def events_of(run: object, cid: str) -> list[dict[str, object]]:
    docs = cluster_events(run.plan, run.result)  # type: ignore[attr-defined]
    return [e for e in docs if e["cluster_id"] == cid]


def test_suspend_and_resume_events(emulator: Emulator, db: Database, name: str) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    assert events_of(run_cycle(db, only=name, dry_run=True), cid) == []
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {}
    (suspended,) = events_of(run, cid)
    assert suspended["event"] == "suspended" and suspended["name"] == name
    assert suspended["sizes_dropped"] == ["25cc"] and suspended["credits_per_hour_after"] == 0
    assert float(suspended["credits_per_hour_before"]) > 0  # type: ignore[arg-type]
    assert events_of(run_cycle(db, only=name), cid) == [], "nothing changed"
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    (resumed,) = events_of(run_cycle(db, only=name), cid)
    assert resumed["event"] == "resumed" and resumed["sizes_added"] == ["25cc"]
    assert resumed["reason"]


def test_burst_events(emulator: Emulator, db: Database, name: str) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="mv", hydration="60 seconds")
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc"})
    (started,) = events_of(run_cycle(db, only=name), cid)
    assert started["event"] == "burst_started" and started["sizes_added"] == ["800cc"]
    emulator.advance(70)
    (ended,) = events_of(run_cycle(db, only=name), cid)
    assert ended["event"] == "burst_ended" and ended["sizes_dropped"] == ["800cc"]


def test_resize_event_and_uri(emulator: Emulator, db: Database, name: str) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="mv")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    (created,) = events_of(run_cycle(db, only=name), cid)
    assert created["event"] == "resized" and created["sizes_added"] == ["50cc"]
    assert (
        cluster_asset_uri("mz.example.com", 6875, cid)
        == f"materialize://mz.example.com/cluster/{cid}"
    )
    assert cluster_asset_uri("localhost", 6877, "u7") == "materialize://localhost:6877/cluster/u7"
