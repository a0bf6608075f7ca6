"""idle_suspend: idle clock, never-suspend rules, resume of the remembered set."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mzfixtures import DAY, NOW, apply, cluster, planned, replica, row, run, signals, with_cluster

from mz_schedctl_provider.engine import StateRow, decide

IDLE = row("u10", "idle_suspend", {"idle_after_s": 1800})  # predecessor row
HOUR = timedelta(hours=1)


def idle_cluster(**kw: object) -> object:
    kw.setdefault("last_activity", NOW - 2 * HOUR)
    return cluster("c", replica("a", "25cc"), replica("b", "100cc"), **kw)  # type: ignore[arg-type]


def test_suspends_after_idle_after_s_and_remembers_the_replica_set() -> None:
    sig = signals(idle_cluster(), [IDLE])  # type: ignore[arg-type]
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "a", "25cc"), ("drop_replica", "b", "100cc")]
    assert cp.empty_on_purpose
    assert [a.codes for a in cp.actions] == [("idle",), ("idle",)]
    assert cp.state.strategies["idle_suspend"]["remembered"] == [
        {"name": "a", "size": "25cc"},
        {"name": "b", "size": "100cc"},
    ]
    assert cp.credits_per_hour_after == 0


def test_not_suspended_before_idle_after_s_and_says_when() -> None:
    sig = signals(idle_cluster(last_activity=NOW - timedelta(minutes=10)), [IDLE])  # type: ignore[arg-type]
    cp = run(sig)
    assert cp.actions == ()
    # Measured to now minus the statement log's flush lag (5 s): the last 5 s are unseen.
    at = (NOW + timedelta(minutes=20, seconds=5)).isoformat()
    assert cp.notes == (f"idle_suspend: idle for 595s of 1800s: would suspend at {at}",)


def test_never_queried_cluster_is_not_suspended_on_its_first_cycle() -> None:
    # No activity ever; the strategy row was written a minute ago.
    sig = signals(
        cluster("c", replica("a", "25cc"), last_activity=None),
        [row("u10", "idle_suspend", {"idle_after_s": 1800}, updated_at=NOW - timedelta(minutes=1))],
    )
    assert run(sig).actions == ()
    # Without any timestamp at all, the clock starts now.
    sig = signals(
        cluster("c", replace(replica("a", "25cc"), created_at=None), last_activity=None),
        [row("u10", "idle_suspend", {"idle_after_s": 1800}, updated_at=None)],
    )
    cp = run(sig)
    assert cp.actions == ()
    assert cp.notes == ("idle_suspend: no activity history yet: idle clock starts now",)
    assert cp.state.strategies["idle_suspend"] == {"first_seen_at": NOW.isoformat()}


def test_newest_replica_creation_restarts_the_idle_clock() -> None:
    c = cluster(
        "c", replica("a", "25cc", created_at=NOW - timedelta(minutes=5)), last_activity=NOW - DAY
    )
    assert run(signals(c, [IDLE])).actions == ()


def test_never_suspends_with_sources_sinks_views_controller_or_logging_off() -> None:
    cases = [
        (
            {"sources": 1},
            {},
            "never suspend: hosts 1 source(s) and 0 sink(s): suspending would stop them",
        ),
        (
            {"sinks": 2},
            {},
            "never suspend: hosts 0 source(s) and 2 sink(s): suspending would stop them",
        ),
        (
            {"materialized_views": 3},
            {},
            "never suspend: hosts 3 materialized view(s) "
            "(set allow_with_maintained_objects to allow)",
        ),
        (
            {"name": "mz_schedctl"},
            {},
            "never suspend: the controller's own session runs on this cluster",
        ),
        (
            {},
            {"logging_visible": False},
            "never suspend: statement logging cannot see activity "
            "(statement_logging_max_sample_rate is 0)",
        ),
    ]
    for cluster_kw, sig_kw, note in cases:
        kw = {"last_activity": NOW - 2 * HOUR, **cluster_kw}
        name = kw.pop("name", "c")
        c = cluster(name, replica("a", "25cc"), **kw)  # type: ignore[arg-type]
        cp = run(signals(c, [IDLE], **sig_kw))  # type: ignore[arg-type]
        assert cp.actions == (), note
        assert cp.notes == (f"idle_suspend: {note}",)


def test_materialized_views_allowed_on_request() -> None:
    c = cluster("c", replica("a", "25cc"), materialized_views=1, last_activity=NOW - 2 * HOUR)
    cfg = {"idle_after_s": 1800, "allow_with_maintained_objects": True}
    assert planned(run(signals(c, [row("u10", "idle_suspend", cfg)]))) == [
        ("drop_replica", "a", "25cc")
    ]


def suspended_state(remembered: list[dict[str, str]]) -> StateRow:
    payload = {
        "strategies": {
            "idle_suspend": {"suspended_at": (NOW - HOUR).isoformat(), "remembered": remembered}
        }
    }
    return StateRow("u10", 2, payload, NOW - HOUR)


def test_resumes_the_remembered_set_when_activity_returns_even_from_a_failed_query() -> None:
    remembered = [{"name": "a", "size": "25cc"}, {"name": "my b", "size": "100cc"}]
    # The Materialize layer reports a query refused by the suspended cluster as activity.
    c = cluster("c", last_activity=NOW - timedelta(minutes=2))
    cp = run(signals(c, [IDLE], states=(suspended_state(remembered),)))
    assert planned(cp) == [("create_replica", "a", "25cc"), ("create_replica", "my b", "100cc")]
    assert "activity at" in cp.notes[0] and "resume the remembered replica set" in cp.notes[0]
    assert cp.state.strategies["idle_suspend"]["last_resume_at"] == NOW.isoformat()


def test_stays_suspended_without_activity() -> None:
    c = cluster("c", last_activity=NOW - 2 * HOUR)
    cp = run(signals(c, [IDLE], states=(suspended_state([{"name": "a", "size": "25cc"}]),)))
    assert cp.actions == ()
    assert cp.notes == (
        f"idle_suspend: suspended since {(NOW - HOUR).isoformat()}; no activity since",
    )


def test_resumes_when_logging_can_no_longer_see_activity() -> None:
    c = cluster("c", last_activity=None)
    sig = signals(
        c, [IDLE], states=(suspended_state([{"name": "a", "size": "25cc"}]),), logging_visible=False
    )
    cp = run(sig)
    assert planned(cp) == [("create_replica", "a", "25cc")]
    assert cp.notes[0].startswith("idle_suspend: statement logging cannot see activity")


def test_suspend_then_resume_cycle_and_idle_clock_after_resume() -> None:
    sig = signals(idle_cluster(), [IDLE])  # type: ignore[arg-type]
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    assert sig.clusters[0].replicas == ()
    assert run(sig).actions == ()  # still idle: stays suspended
    sig = with_cluster(sig, last_activity=sig.now - timedelta(seconds=30))
    cp = run(sig)
    assert planned(cp) == [("create_replica", "a", "25cc"), ("create_replica", "b", "100cc")]
    sig = apply(sig, decide(sig, cycle_id="2", dry_run=False))
    # Replicas are back: the remembered set is forgotten, the resume anchors the idle clock.
    cp = run(sig)
    assert cp.actions == ()
    assert "remembered" not in cp.state.strategies["idle_suspend"]


def test_an_idle_cluster_left_with_only_a_burst_is_suspended() -> None:
    # A user dropped the base replica: burst lets its replica go (no base to wait for) and
    # the last-hydrated rail keeps it; the cluster is idle, so it must still be suspended
    # rather than keep paying for the burst forever.
    burst = row("u10", "burst", {"burst_replica_size": "800cc"})
    sig = signals(
        cluster("c", replica("burst", "800cc"), last_activity=NOW - 2 * HOUR), [burst, IDLE]
    )
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "burst", "800cc")]
    assert cp.empty_on_purpose
    assert cp.state.strategies["idle_suspend"]["remembered"] == [{"name": "burst", "size": "800cc"}]
