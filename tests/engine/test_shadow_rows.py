"""Shadow rows are audited only: they never fail a run and never claim real replicas."""

from __future__ import annotations

from datetime import timedelta

from mzfixtures import apply, by_status, cluster, planned, replica, row, run, signals

from mz_schedctl_provider.engine import decide
from mz_schedctl_provider.engine.state import state_from_payload

SHADOW_BURST = row(
    "u10", "burst", {"burst_replica_size": "800cc", "max_burst_s": 600, "shadow": True}
)


def test_a_shadow_burst_past_max_burst_s_does_not_fail_the_run() -> None:
    sig = signals(cluster("c", replica("r_25cc", "25cc", hydrated=False)), [SHADOW_BURST])
    cp = run(sig)
    assert by_status(cp, "shadow") == [("create_replica", "burst", "800cc")]
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False), advance=timedelta(minutes=11))
    cp = run(sig)
    assert planned(cp) == [] and cp.errors == ()
    (stuck,) = [f for f in cp.findings if f.code == "stuck"]
    assert stuck.severity == "warning"
    assert stuck.message.startswith("shadow burst (audited only, nothing executed): ")


def test_a_shadow_row_does_not_remember_a_real_replica_as_its_own() -> None:
    human = replica("burst", "800cc")
    sig = signals(cluster("c", replica("r_25cc", "25cc", hydrated=False), human), [SHADOW_BURST])
    plan = decide(sig, cycle_id="1", dry_run=False)
    (cp,) = plan.clusters
    assert "replica_name" not in cp.state.strategies["burst"]
    sig = apply(sig, plan)
    stored = state_from_payload(sig.states[-1].payload)
    assert "replica_name" not in stored.strategies["burst"]
    # The shadow row executed nothing: the human's replica is untouched.
    assert [r.name for r in sig.clusters[0].replicas] == ["r_25cc", "burst"]
