"""burst: a big replica while the base hydrates, gone once it is, stuck when it never is."""

from __future__ import annotations

from datetime import timedelta

from mzfixtures import NOW, apply, cluster, hydrate, planned, replica, row, run, signals

from mz_schedctl_provider.engine import StateRow, decide

BURST = row("u10", "burst", {"burst_replica_size": "800cc", "cooldown_s": 60})  # predecessor row


def test_burst_appears_while_the_base_hydrates_and_goes_once_it_is_hydrated() -> None:
    sig = signals(cluster("c", replica("r_25cc", "25cc", hydrated=False)), [BURST])
    cp = run(sig)
    assert planned(cp) == [("create_replica", "burst", "800cc")]
    assert cp.notes == ("burst: add burst 'burst' (800cc): no base replica hydrated yet",)
    assert cp.state.strategies["burst"]["started_at"] == NOW.isoformat()

    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    assert planned(run(sig)) == []  # base still hydrating: keep the burst

    sig = hydrate(sig, "r_25cc")
    cp = run(sig, cycle_id="3")
    # The burst is in cooldown (60 s) only right after its own action: 5 min passed.
    assert planned(cp) == [("drop_replica", "burst", "800cc")]
    assert cp.actions[0].codes == ("burst_done",)
    assert cp.state.strategies["burst"].get("started_at") is None


def test_burst_respects_its_cooldown() -> None:
    sig = signals(cluster("c", replica("r_25cc", "25cc", hydrated=False)), [BURST])
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False), advance=timedelta(seconds=30))
    sig = hydrate(sig, "r_25cc")
    cp = run(sig)
    assert planned(cp) == []
    assert cp.notes == (f"burst: in cooldown until {(NOW + timedelta(seconds=60)).isoformat()}",)


def test_no_burst_on_a_suspended_cluster() -> None:
    sig = signals(cluster("c"), [BURST])
    cp = run(sig)
    assert cp.actions == ()
    assert cp.notes == ("burst: no burst: the cluster is suspended (no replicas)",)


def test_no_burst_on_a_cluster_with_sources() -> None:
    sig = signals(cluster("c", replica("r_25cc", "25cc", hydrated=False), sources=1), [BURST])
    cp = run(sig)
    assert cp.actions == ()
    assert "impossible: the cluster hosts sources or sinks" in cp.notes[0]


def test_predecessor_burst_name_is_recognised() -> None:
    sig = signals(cluster("c", replica("r_25cc", "25cc"), replica("c_burst", "800cc")), [BURST])
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "c_burst", "800cc")]


def test_oom_looping_base_past_max_burst_keeps_burst_and_reports_stuck_with_oom_count() -> None:
    base = replica(
        "r_25cc", "25cc", hydrated=False, status="offline", reason="oom-killed", oom=7, crash=7
    )
    state = StateRow(
        "u10",
        2,
        {
            "strategies": {
                "burst": {
                    "started_at": (NOW - timedelta(hours=2)).isoformat(),
                    "replica_name": "burst",
                }
            }
        },
        NOW - timedelta(minutes=5),
    )
    sig = signals(
        cluster("c", base, replica("burst", "800cc")),
        [row("u10", "burst", {"burst_replica_size": "800cc", "max_burst_s": 3600})],
        states=(state,),
    )
    cp = run(sig)
    assert planned(cp) == []  # the burst is kept
    (stuck,) = [f for f in cp.findings if f.kind == "stuck"]
    assert stuck.severity == "error"
    assert stuck.details["oom_count"] == 7
    # Defect 14: the 7 OOMs are also in crash_count (every offline event): counted once.
    assert "7 OOM kill(s) and 0 other crash(es)" in stuck.message
    assert stuck.code == "stuck" and stuck.details["waited_s"] == 7200
    assert cp.errors == (stuck.message,)


def test_burst_name_taken_by_a_hand_made_replica_in_owned_scope() -> None:
    sig = signals(
        cluster("c", replica("r_25cc", "25cc", hydrated=False), replica("burst", "50cc")),
        [row("u10", "burst", {"burst_replica_size": "800cc", "replica_scope": "owned"})],
    )
    cp = run(sig)
    assert planned(cp) == [("create_replica", "burst_2", "800cc")]
    assert cp.state.strategies["burst"]["replica_name"] == "burst_2"
