"""Apply renders every statement itself, from the action's fields and the objects' current
names (behaviour.md, "Level-triggered"): a rename between decide and apply cannot make a
statement hit another cluster, and SQL text in the plan document is never executed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from mzsupport import add_strategy, audit, connect, make_cluster, replicas, table_rows

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle

pytestmark = pytest.mark.usefixtures("tables")
SETTINGS = cycle.CycleSettings()
HYDRATE_S = 120


def _plan(db: Any, pattern: str) -> dict[str, Any]:
    cycle_id = cycle.new_cycle_id("test")
    assert cycle.claim_lease(db, SETTINGS, cycle_id=cycle_id).acquired
    signals = cycle.collect(db, SETTINGS, filter_clusters=pattern)
    return cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=pattern)


def _actions(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for c in plan["clusters"] for a in c["actions"]]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_rename_between_decide_and_apply_never_hits_the_new_namesake(
    emulator: Emulator, name: str, driver: str
) -> None:
    """The issue's story: a drop of r1 is planned on cluster `name`; before apply the user
    renames it and creates a new cluster under the old name with its own r1. The drop must go
    to the planned cluster (by id, under its new name); the newcomer is not touched."""
    cid = make_cluster(emulator, name, size="25cc", hydration="5 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    emulator.advance(HYDRATE_S)
    db = connect(emulator, driver)
    try:
        first = _plan(db, name)
        assert [a["kind"] for a in _actions(first)] == ["create_replica"]
        cycle.persist(first, cycle.apply(first, db, SETTINGS), db, SETTINGS)
        emulator.advance(HYDRATE_S)  # r_50cc hydrated: r1 may retire
        plan = _plan(db, name)
        assert [(a["kind"], a["replica_name"]) for a in _actions(plan)] == [("drop_replica", "r1")]
        emulator.execute(f'ALTER CLUSTER "{name}" RENAME TO "{name}_old"')
        emulator.execute(f"CREATE CLUSTER \"{name}\" REPLICAS (r1 (SIZE = '25cc'))")

        result = cycle.apply(plan, db, SETTINGS)
        cycle.persist(plan, result, db, SETTINGS)
    finally:
        db.close()
    assert [r["outcome"] for r in result["results"]] == ["succeeded"]
    assert replicas(emulator, name) == {"r1": "25cc"}  # the newcomer keeps its replica
    assert replicas(emulator, f"{name}_old") == {"r_50cc": "50cc"}
    executed = [r.sql for r in audit(emulator, cid) if r.phase == "intent"]
    assert executed[-1] == f'DROP CLUSTER REPLICA "{name}_old"."r1"'


def test_sql_text_in_the_plan_is_never_executed(emulator: Emulator, name: str) -> None:
    """An edited plan document (as Airflow 3.3 lets a user edit a task's XCom) whose SQL says
    something else: apply runs only what it renders from the action's fields."""
    cid = make_cluster(emulator, name, size="25cc", hydration="5 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    emulator.advance(HYDRATE_S)
    db = connect(emulator, "psycopg")
    try:
        plan = _plan(db, name)
        edited = copy.deepcopy(plan)
        for action in _actions(edited):
            action["sql"] = "CREATE TABLE edited_via_xcom (x int)"
        result = cycle.apply(edited, db, SETTINGS)
        cycle.persist(edited, result, db, SETTINGS)
    finally:
        db.close()
    assert table_rows(emulator, "edited_via_xcom") is None
    assert replicas(emulator, name) == {"r1": "25cc", "r_50cc": "50cc"}
    assert all("edited_via_xcom" not in (r.sql or "") for r in audit(emulator, cid))


def test_the_seal_vouches_for_exactly_the_plan_decide_made(emulator: Emulator, name: str) -> None:
    """A real plan survives a JSON round trip (as through the XCom backend); any edit, a plan
    of another cycle, a missing seal or another connection's key are refused."""
    import json

    from mz_schedctl_provider.runtime.plan_seal import PlanRefused, seal, seal_key, verify

    cid = make_cluster(emulator, name, size="25cc", hydration="5 seconds")
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    db = connect(emulator, "psycopg")
    try:
        plan = _plan(db, name)
    finally:
        db.close()
    key = seal_key("materialize_default", "127.0.0.1", 6875, "materialize", "s3cret", "mz")
    given = seal(plan, key)
    verify(json.loads(json.dumps(plan)), given, key, cycle_id=plan["cycle_id"])
    edited = copy.deepcopy(plan)
    _actions(edited)[0]["size"] = "800cc"
    cases = [
        (edited, given, key, None, "not the one the decide stage produced"),
        (plan, given, key, "another-cycle", "belongs to cycle"),
        (plan, None, key, None, "has no seal"),
        (plan, given, seal_key("materialize_default", "other-host"), None, "not the one"),
    ]
    for doc, seal_value, k, cycle_id, message in cases:
        with pytest.raises(PlanRefused, match=message):
            verify(doc, seal_value, k, cycle_id=cycle_id)
