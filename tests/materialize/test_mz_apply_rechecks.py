"""Apply re-checks the live catalog just before each DDL (behaviour.md, "Level-triggered"): what
changed between decide and apply (a human's DROP or CREATE, a replica that stopped being
hydrated) is seen at apply time, over the real socket with both drivers. Each test changes the
catalog after decide and before apply, and checks what apply did."""

from __future__ import annotations

from typing import Any

import pytest
from mzsupport import add_strategy, connect, make_cluster, replicas

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")
SETTINGS = cycle.CycleSettings()
HYDRATE_S = 120
DRIVERS = ["psycopg", "psycopg2"]


def _plan(db: Database, name: str) -> dict[str, Any]:
    cycle_id = cycle.new_cycle_id("test")
    assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
    signals = cycle.collect(db, SETTINGS, filter_clusters=name)
    return cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=name)


def _steps(plan: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["kind"], a["replica_name"]) for c in plan["clusters"] for a in c["actions"]]


def _apply(db: Database, plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    result = cycle.apply(plan, db, SETTINGS)
    cycle.persist(plan, result, db, SETTINGS)
    return [(r["outcome"], r.get("error")) for r in result["results"]]


def _resized(emulator: Emulator, db: Database, name: str) -> dict[str, Any]:
    """A cluster mid-resize: r_50cc created and hydrated; the plan to retire r1."""
    cid = make_cluster(emulator, name, size="25cc", hydration="5 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    emulator.advance(HYDRATE_S)
    first = _plan(db, name)
    assert _steps(first) == [("create_replica", "r_50cc")]
    assert [o for o, _ in _apply(db, first)] == ["succeeded"]
    emulator.advance(HYDRATE_S)  # r_50cc hydrated: r1 may retire
    plan = _plan(db, name)
    assert _steps(plan) == [("drop_replica", "r1")]
    return plan


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_drop_is_refused_when_the_other_hydrated_replica_went_away(
    emulator: Emulator, name: str, driver: str
) -> None:
    """Decide saw r_50cc hydrated and planned to retire r1; before apply a human drops r_50cc.
    r1 is then the last hydrated replica: apply refuses the drop (the cluster keeps serving)."""
    db = connect(emulator, driver)
    try:
        plan = _resized(emulator, db, name)
        emulator.execute(f'DROP CLUSTER REPLICA "{name}"."r_50cc"')
        outcomes = _apply(db, plan)
    finally:
        db.close()
    assert outcomes == [("failed", "no other hydrated replica: refusing to drop it")]
    assert replicas(emulator, name) == {"r1": "25cc"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_drop_of_a_replica_recreated_since_decide_is_refused(
    emulator: Emulator, name: str, driver: str
) -> None:
    """Before apply a human drops r1 and creates another r1 (a new replica id): the planned
    drop was of the old one, so the new one is not touched."""
    db = connect(emulator, driver)
    try:
        plan = _resized(emulator, db, name)
        emulator.execute(f'DROP CLUSTER REPLICA "{name}"."r1"')
        emulator.execute(f'CREATE CLUSTER REPLICA "{name}"."r1" (SIZE = \'25cc\')')
        outcomes = _apply(db, plan)
    finally:
        db.close()
    assert outcomes == [("failed", "replica was recreated since the plan was made")]
    assert replicas(emulator, name) == {"r1": "25cc", "r_50cc": "50cc"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_drop_of_a_replica_a_human_dropped_already_is_already_true(
    emulator: Emulator, name: str, driver: str
) -> None:
    db = connect(emulator, driver)
    try:
        plan = _resized(emulator, db, name)
        emulator.execute(f'DROP CLUSTER REPLICA "{name}"."r1"')
        outcomes = _apply(db, plan)
    finally:
        db.close()
    assert outcomes == [("already_true", None)]
    assert replicas(emulator, name) == {"r_50cc": "50cc"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_create_of_a_replica_a_human_created_already_is_already_true(
    emulator: Emulator, name: str, driver: str
) -> None:
    """Decide planned r_50cc; before apply a human creates it with that size: apply sends no
    CREATE (it would fail: the name is taken) and counts it as done."""
    cid = make_cluster(emulator, name, size="25cc", hydration="5 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    emulator.advance(HYDRATE_S)
    db = connect(emulator, driver)
    try:
        plan = _plan(db, name)
        assert _steps(plan) == [("create_replica", "r_50cc")]
        emulator.execute(f'CREATE CLUSTER REPLICA "{name}"."r_50cc" (SIZE = \'50cc\')')
        outcomes = _apply(db, plan)
    finally:
        db.close()
    assert outcomes == [("already_true", None)]
    assert replicas(emulator, name) == {"r1": "25cc", "r_50cc": "50cc"}
