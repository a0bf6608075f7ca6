"""Rails: last hydrated replica, order, sources/sinks, rate limit, backoff, scope, shadow."""

from __future__ import annotations

from datetime import timedelta

from mzfixtures import NOW, apply, by_status, cluster, planned, replica, row, run, signals

from mz_schedctl_provider.engine import (
    ActionResult,
    ApplyResult,
    Limits,
    RecentAction,
    StateRow,
    decide,
    next_states,
    state_to_payload,
)
from mz_schedctl_provider.engine.desired import Desired
from mz_schedctl_provider.engine.facts import ClusterContext
from mz_schedctl_provider.engine.safety import diff_actions, rail_last_hydrated

TS = row("u10", "target_size", {"target_size": "100cc"})


def ctx_for(c: object) -> ClusterContext:
    from mzfixtures import SIZES

    return ClusterContext(
        cluster=c,  # type: ignore[arg-type]
        sizes={s.name: s for s in SIZES},
        owned=frozenset(r.name for r in c.replicas),  # type: ignore[attr-defined]
        logging_visible=True,
        controller_cluster=None,
    )


def test_last_hydrated_replica_is_never_dropped_unless_emptied_on_purpose() -> None:
    c = cluster(
        "c",
        replica("small", "25cc"),
        replica("big", "100cc"),
        replica("new", "200cc", hydrated=False),
    )
    ctx = ctx_for(c)
    desired = Desired().add(replica_wish("new", "200cc"))
    actions = diff_actions(ctx=ctx, desired=desired, strategy_fallback="test")
    kept, why = rail_last_hydrated(ctx=ctx, actions=actions, empty_on_purpose=False)
    assert why is not None
    assert [(a.replica_name, a.status) for a in kept] == [("small", "planned"), ("big", "skipped")]
    assert [a.codes for a in kept] == [("not_wanted",), ("not_wanted", "last_hydrated")]
    suspended, why = rail_last_hydrated(ctx=ctx, actions=actions, empty_on_purpose=True)
    assert why is None and all(a.status == "planned" for a in suspended)


def replica_wish(name: str, size: str):  # type: ignore[no-untyped-def]
    from mz_schedctl_provider.engine import DesiredReplica

    return DesiredReplica(
        name=name, size=size, strategy="test", reason="wanted", code="wanted_size"
    )


def test_creates_come_before_drops() -> None:
    c = cluster(
        "c",
        replica("a", "25cc"),
        replica("r_100cc", "100cc"),
        replica("b", "200cc", hydrated=False),
    )
    cp = run(
        signals(
            c,
            [
                row("u10", "target_size", {"target_size": "50cc"}),
                row("u10", "burst", {"burst_replica_size": "800cc"}),
            ],
        )
    )
    kinds = [a.kind for a in cp.actions if a.status == "planned"]
    assert kinds == sorted(kinds)  # "create_replica" < "drop_replica"
    assert kinds[0] == "create_replica"


def test_sources_make_a_zero_downtime_resize_impossible_unless_downtime_is_allowed() -> None:
    c = cluster("c", replica("r_25cc", "25cc"), sources=1)
    cp = run(signals(c, [TS]))
    assert planned(cp) == []
    assert by_status(cp, "skipped") == [("create_replica", "r_100cc", "100cc")]
    (finding,) = cp.findings
    assert (finding.kind, finding.code) == ("impossible", "single_replica")
    assert cp.actions[0].codes == ("wanted_size", "single_replica")
    # The wording is the feature here: it tells the user what to set.
    assert "set allow_downtime: true" in finding.message

    allow = row("u10", "target_size", {"target_size": "100cc", "allow_downtime": True})
    cp = run(signals(c, [allow]))
    assert planned(cp) == [
        ("drop_replica", "r_25cc", "25cc"),
        ("create_replica", "r_100cc", "100cc"),
    ]
    assert (cp.findings[0].kind, cp.findings[0].code) == ("downtime", "downtime")
    assert [a.codes for a in cp.actions] == [("downtime",), ("wanted_size",)]


def test_rate_limit_defers_the_excess_with_a_reason() -> None:
    recent = tuple(
        RecentAction("u10", NOW - timedelta(minutes=m)) for m in range(1, 10)
    )  # 9 in the hour
    old = (RecentAction("u10", NOW - timedelta(hours=2)),)
    c = cluster(
        "c", replica("a", "25cc"), replica("b", "50cc"), last_activity=NOW - timedelta(hours=3)
    )
    cp = run(signals(c, [row("u10", "idle_suspend", {"idle_after_s": 60})], recent=recent + old))
    assert planned(cp) == [("drop_replica", "a", "25cc")]
    assert by_status(cp, "deferred") == [("drop_replica", "b", "50cc")]
    assert [a.codes for a in cp.actions] == [("idle",), ("idle", "rate_limit")]
    # Credits after count only what will run.
    assert cp.credits_per_hour_after == 0.5
    cp = run(
        signals(c, [row("u10", "idle_suspend", {"idle_after_s": 60})], recent=recent),
        limits=Limits(max_actions_per_window=20),
    )
    assert len(planned(cp)) == 2


def test_failed_action_keeps_old_state_and_backs_off_exponentially() -> None:
    sig = signals(
        cluster("c", replica("r_25cc", "25cc", hydrated=False)),
        [TS, row("u10", "burst", {"burst_replica_size": "800cc"})],
    )
    plan = decide(sig, cycle_id="1", dry_run=False)
    (cp,) = plan.clusters
    assert planned(cp) == [
        ("create_replica", "r_100cc", "100cc"),
        ("create_replica", "burst", "800cc"),
    ]
    results = ApplyResult(
        "1",
        True,
        results=(
            ActionResult(cp.actions[0].id, "u10", "succeeded"),
            ActionResult(
                cp.actions[1].id,
                "u10",
                "failed",
                "creating cluster replica would violate max_replicas_per_cluster limit",
            ),
        ),
    )
    st = next_states(plan, results)["u10"]
    # Old (empty) strategy states kept: the burst's started_at is not saved, no cooldown stamps.
    assert st.strategies == {}
    assert st.backoff is not None and st.backoff.failures == 1
    assert st.backoff.retry_at == NOW + timedelta(seconds=60)
    assert "max_replicas_per_cluster" in st.backoff.last_error

    # Within the backoff: everything deferred, with the reason.
    sig2 = signals(
        sig.clusters[0],
        list(sig.strategies),
        states=(StateRow("u10", 2, state_to_payload(st), NOW),),
        now=NOW + timedelta(seconds=30),
    )
    cp2 = run(sig2)
    assert planned(cp2) == []
    assert cp2.actions and all(a.codes[-1] == "backoff" for a in cp2.actions)
    # A second failure doubles the wait.
    plan3 = decide(
        signals(
            sig.clusters[0],
            list(sig.strategies),
            states=sig2.states,
            now=NOW + timedelta(seconds=61),
        ),
        cycle_id="3",
        dry_run=False,
    )
    assert planned(plan3.clusters[0])
    fail_all = ApplyResult(
        "3", True, results=tuple(ActionResult(a.id, "u10", "failed", "x") for a in plan3.actions())
    )
    st3 = next_states(plan3, fail_all)["u10"]
    assert st3.backoff is not None and st3.backoff.failures == 2
    assert st3.backoff.retry_at == NOW + timedelta(seconds=61 + 120)


def test_success_records_cooldown_for_every_strategy_that_acted_and_clears_backoff() -> None:
    sig = signals(
        cluster("c", replica("r_25cc", "25cc", hydrated=False)),
        [TS, row("u10", "burst", {"burst_replica_size": "800cc"})],
    )
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    payload = sig.states[-1].payload
    assert payload["strategies"]["target_size"] == {"last_action_at": NOW.isoformat()}  # type: ignore[index]
    assert payload["strategies"]["burst"]["last_action_at"] == NOW.isoformat()  # type: ignore[index]
    assert payload["owned"] == ["r_100cc", "burst"]  # type: ignore[index]


def test_not_executed_plan_writes_no_state() -> None:
    sig = signals(cluster("c"), [TS])
    plan = decide(sig, cycle_id="1", dry_run=True)
    result = ApplyResult(
        "1",
        False,
        reason="dry run",
        results=tuple(ActionResult(a.id, "u10", "not_executed") for a in plan.actions()),
    )
    assert next_states(plan, result) == {}


def test_scope_system_managed_scheduled_autoscaled() -> None:
    rows = [
        row(cid, "target_size", {"target_size": "50cc"}) for cid in ("s1", "u1", "u2", "u3", "u4")
    ]
    clusters = [
        cluster("mz_system", cid="s1", is_system=True),
        cluster(
            "m", replica("r1", "25cc"), cid="u1", managed=True, size="25cc", replication_factor=1
        ),
        cluster("refresh", cid="u2", managed=True, size="25cc", schedule_type="on-refresh"),
        cluster(
            "auto", replica("r1", "25cc"), cid="u3", managed=True, size="25cc", auto_scaling=True
        ),
        cluster("plain", cid="u4"),
        cluster("no rows", cid="u5"),
    ]
    plan = decide(signals(clusters, rows), cycle_id="c", dry_run=False)
    got = {c.cluster_name: c for c in plan.clusters}
    assert set(got) == {"mz_system", "m", "refresh", "auto", "plain"}
    assert [got[n].findings[0].code for n in ("mz_system", "refresh", "auto")] == [
        "system_cluster",
        "materialize_schedule",
        "materialize_auto_scaling",
    ]
    # The README quotes these two.
    assert "SCHEDULE on-refresh" in got["refresh"].findings[0].message
    assert "AUTO SCALING STRATEGY" in got["auto"].findings[0].message
    assert all(not got[n].actions for n in ("mz_system", "refresh", "auto"))
    # A managed cluster is driven with ALTER CLUSTER (tests/engine/test_managed_alter.py).
    assert [(a.kind, a.alter and a.alter.size) for a in got["m"].actions] == [
        ("alter_cluster", "50cc")
    ]
    assert planned(got["plain"]) == [("create_replica", "r_50cc", "50cc")]
    assert plan.errors() == []


def test_owned_scope_leaves_hand_made_replicas_alone() -> None:
    c = cluster("c", replica("handmade", "25cc"), replica("r_100cc", "100cc"))
    cp = run(
        signals(c, [row("u10", "target_size", {"target_size": "100cc", "replica_scope": "owned"})])
    )
    assert cp.actions == ()
    cp = run(signals(c, [TS]))
    assert planned(cp) == [("drop_replica", "handmade", "25cc")]


def test_shadow_strategy_plans_but_never_executes() -> None:
    c = cluster("c", replica("r_25cc", "25cc"), last_activity=NOW - timedelta(hours=2))
    rows = [
        row("u10", "target_size", {"target_size": "25cc"}),
        row("u10", "idle_suspend", {"idle_after_s": 60, "shadow": True}),
    ]
    sig = signals(c, rows)
    cp = run(sig)
    assert planned(cp) == []
    assert by_status(cp, "shadow") == [("drop_replica", "r_25cc", "25cc")]
    assert cp.credits_per_hour_after == cp.credits_per_hour_before == 0.25
    assert any(n.startswith("shadow idle_suspend: idle for") for n in cp.notes)


def test_predecessor_state_version_is_ignored_with_a_reason() -> None:
    old = StateRow(
        "u10",
        1,
        {"last_action": "whatever", "cooldown_until": "2020-01-01"},
        NOW - timedelta(days=3),
    )
    cp = run(signals(cluster("c", replica("r_100cc", "100cc")), [TS], states=(old,)))
    (finding,) = cp.findings
    assert (finding.kind, finding.code) == ("state_reset", "state_reset")
    assert cp.prev_state.strategies == {}


def test_filter_render_and_experimental_switch() -> None:
    a, b = cluster("alpha", cid="u1"), cluster("beta", cid="u2")
    rows = [
        row("u1", "target_size", {"target_size": "50cc"}),
        row("u2", "target_size", {"target_size": "50cc"}),
    ]
    plan = decide(
        signals([a, b], rows),
        cycle_id="c",
        dry_run=True,
        filter_clusters="alph",
        render=lambda x: f"-- {x.kind}",
    )
    assert plan.clusters == ()  # fullmatch, not search
    plan = decide(
        signals([a, b], rows),
        cycle_id="c",
        dry_run=True,
        filter_clusters="al.*",
        render=lambda x: f"-- {x.kind}",
    )
    assert [c.cluster_name for c in plan.clusters] == ["alpha"]
    assert plan.actions()[0].sql == "-- create_replica"

    shrink = [row("u10", "shrink_to_fit", {"max_replica_size": "100cc"})]
    c = cluster(
        "c", replica("r_25cc", "25cc", hydrated=False, status="offline", reason="oom-killed", oom=3)
    )
    cp = run(signals(c, shrink))
    assert cp.actions == () and cp.findings[0].kind == "experimental_off"
    cp = run(signals(c, shrink), experimental=True)
    assert ("drop_replica", "r_25cc", "25cc") in planned(cp)
    assert ("create_replica", "r_100cc", "100cc") in planned(cp)
    assert "25cc" in cp.state.strategies["shrink_to_fit"]["failed_sizes"]  # type: ignore[operator]


def test_downtime_replacement_runs_through_apply() -> None:
    c = cluster("c", replica("r_25cc", "25cc"), sources=1)
    sig = signals(c, [row("u10", "target_size", {"target_size": "100cc", "allow_downtime": True})])
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    assert [(r.name, r.size) for r in sig.clusters[0].replicas] == [("r_100cc", "100cc")]
    assert planned(run(sig)) == []
