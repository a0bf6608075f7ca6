"""target_size: zero-downtime resize, names, predecessor rows."""

from __future__ import annotations

from mzfixtures import (
    NOW,
    apply,
    cluster,
    hydrate,
    hydrated_names,
    planned,
    replica,
    row,
    run,
    signals,
)

from mz_schedctl_provider.engine import decide


def test_resize_creates_first_and_drops_only_after_the_new_one_is_hydrated() -> None:
    sig = signals(
        cluster("c", replica("r_25cc", "25cc")),
        [row("u10", "target_size", {"target_size": "100cc"})],
    )
    cp = run(sig)
    assert planned(cp) == [("create_replica", "r_100cc", "100cc")]
    (create,) = cp.actions
    assert create.strategy == "target_size"
    assert create.codes == ("wanted_size",)
    assert any("keep until the target is hydrated" in n for n in cp.notes)
    assert (cp.credits_per_hour_before, cp.credits_per_hour_after) == (0.25, 1.25)

    plan = decide(sig, cycle_id="1", dry_run=False)
    sig = apply(sig, plan)
    # The new replica is still hydrating: nothing to do, the old one stays.
    cp = run(sig)
    assert planned(cp) == []
    assert hydrated_names(sig.clusters[0]) == {"r_25cc"}

    sig = hydrate(sig, "r_100cc")
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "r_25cc", "25cc")]
    (drop,) = cp.actions
    assert drop.codes == ("replaced",)
    assert drop.replica_id == sig.clusters[0].replica("r_25cc").id  # type: ignore[union-attr]
    assert (cp.credits_per_hour_before, cp.credits_per_hour_after) == (1.25, 1.0)
    sig = apply(sig, decide(sig, cycle_id="3", dry_run=False))  # asserts a hydrated replica stays
    assert [r.name for r in sig.clusters[0].replicas] == ["r_100cc"]
    assert planned(run(sig)) == []


def test_name_collision_with_another_size_never_drops_then_creates() -> None:
    sig = signals(
        cluster("c", replica("main", "25cc")),
        [row("u10", "target_size", {"target_size": "100cc", "replica_name": "main"})],
    )
    cp = run(sig)
    assert planned(cp) == [("create_replica", "main_2", "100cc")]
    assert cp.actions[0].codes == ("wanted_size", "name_taken")
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    assert planned(run(sig)) == []  # main_2 hydrating, main kept
    sig = hydrate(sig, "main_2")
    assert planned(run(sig)) == [("drop_replica", "main", "25cc")]


def test_replica_of_target_size_with_any_name_counts() -> None:
    sig = signals(
        cluster("c", replica('my replica; "x"', "100cc")),
        [row("u10", "target_size", {"target_size": "100cc"})],
    )
    cp = run(sig)
    assert cp.actions == ()
    assert cp.notes == ("target_size: 'my replica; \"x\"' is the 100cc replica; nothing to change",)


def test_predecessor_row_and_replica_name_work_unchanged() -> None:
    sig = signals(
        cluster("c", replica("r_200cc", "200cc")),
        [row("u10", "target_size", {"target_size": "200cc"})],
    )
    assert run(sig).actions == ()


def test_second_replica_of_target_size_is_retired_keeping_the_hydrated_one() -> None:
    sig = signals(
        cluster("c", replica("a", "100cc", hydrated=False), replica("b", "100cc")),
        [row("u10", "target_size", {"target_size": "100cc"})],
    )
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "a", "100cc")]
    assert cp.actions[0].codes == ("duplicate_size",)


def test_empty_cluster_gets_its_target_replica() -> None:
    sig = signals(cluster("c"), [row("u10", "target_size", {"target_size": "50cc"})])
    assert planned(run(sig)) == [("create_replica", "r_50cc", "50cc")]


def test_plan_time_is_the_server_time() -> None:
    sig = signals(cluster("c"), [row("u10", "target_size", {"target_size": "50cc"})])
    plan = decide(sig, cycle_id="x", dry_run=True)
    assert plan.now == NOW
    again = decide(sig, cycle_id="x", dry_run=True)
    assert [a.id for a in plan.actions()] == [a.id for a in again.actions()]
