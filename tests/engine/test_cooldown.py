"""Cooldowns (engine/cooldown.py): a cooling strategy's last decision holds against the
others, its own next action waits, and a resume caused by activity never waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mzfixtures import NOW, apply, cluster, planned, replica, row, run, signals, with_cluster

from mz_schedctl_provider.engine import StateRow, decide

MINUTE = timedelta(minutes=1)
ROWS = [
    row("u10", "target_size", {"target_size": "100cc", "cooldown_s": 3600}),
    row("u10", "idle_suspend", {"idle_after_s": 600, "cooldown_s": 3600}),
]


def suspended_signals():  # type: ignore[no-untyped-def]
    """Idle for two hours: the first cycle suspends; the signals after it, 2 minutes later."""
    sig = signals(
        cluster("c", replica("r_100cc", "100cc"), last_activity=NOW - timedelta(hours=2)), ROWS
    )
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "r_100cc", "100cc")] and cp.empty_on_purpose
    return apply(sig, decide(sig, cycle_id="suspend", dry_run=False), advance=2 * MINUTE)


def test_a_suspend_in_cooldown_is_not_undone_by_target_size() -> None:
    sig = suspended_signals()
    done: list[tuple[str, str, str | None]] = []
    for i in range(30):  # an hour, and past the cooldown, with nothing changing
        cp = run(sig)
        done += planned(cp)
        if i == 0:
            assert any(n.startswith("idle_suspend: in cooldown until") for n in cp.notes)
        sig = apply(sig, decide(sig, cycle_id=f"c{i}", dry_run=False), advance=2 * MINUTE)
    assert done == []
    assert sig.clusters[0].replicas == ()


def test_activity_resumes_during_idle_suspends_cooldown() -> None:
    sig = suspended_signals()
    sig = with_cluster(sig, last_activity=sig.now - timedelta(seconds=10))
    cp = run(sig)
    assert planned(cp) == [("create_replica", "r_100cc", "100cc")]


def test_idle_suspends_next_suspend_waits_for_its_cooldown() -> None:
    sig = suspended_signals()
    sig = with_cluster(sig, last_activity=sig.now - timedelta(seconds=10))
    sig = apply(sig, decide(sig, cycle_id="resume", dry_run=False), advance=20 * MINUTE)
    # Idle again for longer than idle_after_s, but idle_suspend suspended 22 minutes ago.
    cp = run(sig)
    assert planned(cp) == []
    assert any(n.startswith("idle_suspend: in cooldown until") for n in cp.notes)
    sig = replace(sig, now=NOW + timedelta(minutes=61))
    assert planned(run(sig)) == [("drop_replica", "r_100cc", "100cc")]


def test_a_managed_suspend_in_cooldown_is_not_resumed_at_factor_1() -> None:
    rows = [
        row("u10", "target_size", {"target_size": "25cc", "cooldown_s": 3600}),
        row("u10", "idle_suspend", {"idle_after_s": 600, "cooldown_s": 3600}),
    ]
    suspended_at = (NOW - 2 * MINUTE).isoformat()
    state = StateRow(
        "u10",
        2,
        {
            "strategies": {
                "idle_suspend": {
                    "suspended_at": suspended_at,
                    "remembered": [{"name": "r1", "size": "25cc"}],
                    "replication_factor": 1,
                    "last_action_at": suspended_at,
                }
            }
        },
        NOW - 2 * MINUTE,
    )
    c = cluster(
        "m",
        managed=True,
        size="25cc",
        replication_factor=0,
        last_activity=NOW - timedelta(hours=2),
    )
    cp = run(signals(c, rows, states=(state,)))
    assert cp.actions == ()
    # Activity: the resume does not wait for the cooldown.
    cp = run(signals(replace(c, last_activity=NOW - MINUTE), rows, states=(state,)))
    assert [a.alter.replication_factor for a in cp.actions if a.alter] == [1]


def test_a_resume_of_idle_suspend_alone_never_waits_for_its_cooldown() -> None:
    """No earlier strategy wants a replica: the resume is idle_suspend's own create (the
    replica remembered at suspend), made while its cooldown runs. The cluster serves nothing,
    so it is a resume, and a resume never waits (cooldown.py)."""
    rows = [row("u10", "idle_suspend", {"idle_after_s": 600, "cooldown_s": 3600})]
    sig = signals(cluster("c", replica("r1", "25cc"), last_activity=NOW - timedelta(hours=2)), rows)
    assert planned(run(sig)) == [("drop_replica", "r1", "25cc")]
    sig = apply(sig, decide(sig, cycle_id="suspend", dry_run=False), advance=2 * MINUTE)
    sig = with_cluster(sig, last_activity=sig.now - timedelta(seconds=10))
    cp = run(sig)
    assert planned(cp) == [("create_replica", "r1", "25cc")]
    assert any(n.startswith("idle_suspend: in cooldown until") for n in cp.notes)
