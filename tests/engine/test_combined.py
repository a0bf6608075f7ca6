"""target_size + burst + idle_suspend on one cluster: independent states and cooldowns."""

from __future__ import annotations

from datetime import timedelta

from mzfixtures import (
    NOW,
    apply,
    cluster,
    hydrate,
    planned,
    replica,
    row,
    run,
    signals,
    with_cluster,
)

from mz_schedctl_provider.engine import decide

ROWS = [
    row("u10", "target_size", {"target_size": "100cc", "cooldown_s": 600}),
    row("u10", "burst", {"burst_replica_size": "800cc"}),
    row("u10", "idle_suspend", {"idle_after_s": 3600, "cooldown_s": 60}),
]


def test_resize_with_burst_then_idle_suspend_and_resume() -> None:
    sig = signals(cluster("c", replica("r_25cc", "25cc", hydrated=False)), ROWS)
    cp = run(sig)
    # Both strategies act in one cycle: target replica and burst, creates only.
    assert planned(cp) == [
        ("create_replica", "r_100cc", "100cc"),
        ("create_replica", "burst", "800cc"),
    ]
    assert {a.strategy for a in cp.actions} == {"target_size", "burst"}
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    strategies = sig.states[-1].payload["strategies"]  # type: ignore[index]
    # Each strategy under its own key; a cooldown anchor for every strategy that acted.
    assert set(strategies) == {"target_size", "burst", "idle_suspend"}  # type: ignore[arg-type]
    assert strategies["target_size"]["last_action_at"] == NOW.isoformat()  # type: ignore[index]
    assert strategies["burst"]["last_action_at"] == NOW.isoformat()  # type: ignore[index]
    assert "last_action_at" not in strategies["idle_suspend"]  # type: ignore[index]
    assert strategies["burst"]["started_at"] == NOW.isoformat()  # type: ignore[index]

    # The new target hydrates: target_size is in cooldown (600 s) so r_25cc stays for now,
    # while the burst (no cooldown) goes.
    sig = hydrate(sig, "r_100cc")
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "burst", "800cc")]
    assert any(n.startswith("target_size: in cooldown until") for n in cp.notes)
    sig = apply(sig, decide(sig, cycle_id="2", dry_run=False), advance=timedelta(minutes=10))
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "r_25cc", "25cc")]
    sig = apply(sig, decide(sig, cycle_id="3", dry_run=False), advance=timedelta(hours=2))
    assert [r.name for r in sig.clusters[0].replicas] == ["r_100cc"]

    # Two hours without activity: suspend; the target strategy does not fight it.
    sig = with_cluster(sig, last_activity=NOW)
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "r_100cc", "100cc")] and cp.empty_on_purpose
    sig = apply(sig, decide(sig, cycle_id="4", dry_run=False))
    cp = run(sig)
    assert cp.actions == ()  # suspended, target_size's wish overridden without churn
    assert not any(a.kind == "create_replica" and a.status == "planned" for a in cp.actions)

    # A query arrives (refused by the suspended cluster): resume; no burst on that cycle.
    sig = with_cluster(sig, last_activity=sig.now - timedelta(seconds=5))
    cp = run(sig)
    assert planned(cp) == [("create_replica", "r_100cc", "100cc")]
    sig = apply(sig, decide(sig, cycle_id="5", dry_run=False))
    # Base hydrating after resume: the burst helps again.
    assert planned(run(sig)) == [("create_replica", "burst", "800cc")]
