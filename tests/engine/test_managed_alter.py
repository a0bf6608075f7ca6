"""Managed clusters: the strategies' wish becomes one ALTER CLUSTER (engine/managed.py).

Suspend = REPLICATION FACTOR 0 (the factor remembered by the suspending strategy), resume =
that factor back, resize = Materialize's graceful reconfiguration; nothing while one is in
progress, a timed-out one is a finding and a backoff counted once; burst is not applicable;
the rails (rate limit, backoff, sources/sinks, shadow) hold."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import jsonschema
import pytest
from mzfixtures import DAY, NOW, cluster, replica, row, run, signals

from mz_schedctl_provider.engine import (
    ActionResult,
    ApplyResult,
    Cluster,
    ClusterPlan,
    Plan,
    RecentAction,
    Signals,
    StateRow,
    decide,
    load_schema,
    next_states,
    plan_from_json,
    plan_to_json,
    signals_from_json,
    signals_to_json,
    state_to_payload,
)
from mz_schedctl_provider.engine.models import Alter, Reconfiguration
from mz_schedctl_provider.runtime.ddl import render

MINUTE = timedelta(minutes=1)
IDLE = {"idle_after_s": 1800}
BERLIN_OFFICE = {
    "timezone": "Europe/Berlin",
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "19:00"}],
}


def managed(
    name: str = "m",
    *,
    size: str = "25cc",
    rf: int = 1,
    cid: str = "u10",
    **kw: Any,
) -> Cluster:
    """A managed cluster with replicas r1..r<rf> of its size, all hydrated."""
    reps = [replica(f"r{i}", size) for i in range(1, rf + 1)]
    return cluster(name, *reps, cid=cid, managed=True, size=size, replication_factor=rf, **kw)


def alters(cp: ClusterPlan, status: str = "planned") -> list[Alter]:
    out = []
    for a in cp.actions:
        if a.status == status:
            assert a.kind == "alter_cluster" and a.replica_name == "" and a.alter is not None
            out.append(a.alter)
    return out


def persist(
    sig: Signals, plan: Plan, *, outcome: str = "succeeded", advance: timedelta = 2 * MINUTE
) -> Signals:
    """States as persist writes them when every planned action had ``outcome``; clock moved."""
    results = tuple(
        ActionResult(a.id, a.cluster_id, outcome, "boom" if outcome == "failed" else None)  # type: ignore[arg-type]
        for a in plan.actions()
        if a.status == "planned"
    )
    states = list(sig.states)
    result = ApplyResult(plan.cycle_id, True, results=results)
    for cid, st in next_states(plan, result).items():
        states.append(StateRow(cid, 2, state_to_payload(st), sig.now))
    recent = [*sig.recent_actions, *(RecentAction(r.cluster_id, sig.now) for r in results)]
    return replace(sig, now=sig.now + advance, states=tuple(states), recent_actions=tuple(recent))


def with_cluster(sig: Signals, **changes: Any) -> Signals:
    (c,) = sig.clusters
    return replace(sig, clusters=(replace(c, **changes),))


def run_plan(sig: Signals, **kw: Any) -> Plan:
    return decide(sig, cycle_id=kw.pop("cycle_id", "cycle"), dry_run=False, render=render, **kw)


# --- suspend and resume -------------------------------------------------------------------


def test_idle_suspend_sets_factor_zero_and_resume_restores_the_remembered_factor() -> None:
    c = managed(rf=2, last_activity=NOW - timedelta(hours=2))
    sig = signals(c, [row("u10", "idle_suspend", IDLE)])
    plan = run_plan(sig)
    (cp,) = plan.clusters
    assert alters(cp) == [Alter(replication_factor=0)]
    (action,) = cp.actions
    assert action.strategy == "idle_suspend"
    assert action.sql == 'ALTER CLUSTER "m" SET (REPLICATION FACTOR = 0)'
    assert cp.empty_on_purpose and cp.errors == ()
    assert (action.credits_per_hour_before, action.credits_per_hour_after) == (0.5, 0.0)
    idle = cp.state.strategies["idle_suspend"]
    assert idle["replication_factor"] == 2
    assert idle["remembered"] == [{"name": "r1", "size": "25cc"}, {"name": "r2", "size": "25cc"}]

    # Materialize ran it: factor 0, no replicas. Nothing changes while nobody asks.
    sig = with_cluster(persist(sig, plan), replication_factor=0, replicas=())
    cp = run(sig)
    assert cp.actions == ()
    assert any("suspended since" in n for n in cp.notes)

    # A query on the suspended cluster (refused, but logged) resumes it with factor 2.
    sig = with_cluster(sig, last_activity=sig.now - MINUTE)
    plan = run_plan(sig)
    (cp,) = plan.clusters
    assert alters(cp) == [Alter(replication_factor=2)]
    assert cp.actions[0].sql == 'ALTER CLUSTER "m" SET (REPLICATION FACTOR = 2)'
    assert cp.actions[0].credits_per_hour_after == 0.5
    assert any("REPLICATION FACTOR 2" in n for n in cp.notes)


def test_no_suspend_when_already_at_factor_zero_and_never_an_unintended_zero() -> None:
    # A cluster someone set to factor 0 by hand, with nothing to resume: left as it is.
    c = managed(rf=0, last_activity=NOW - timedelta(hours=2))
    assert run(signals(c, [row("u10", "idle_suspend", IDLE)])).actions == ()
    # Only a purposeful empty set (a suspend) ever sets factor 0.
    c = managed(rf=1)
    cp = run(signals(c, [row("u10", "target_size", {"target_size": "25cc"})]))
    assert cp.actions == ()
    assert any("nothing to change" in n for n in cp.notes)


def test_resume_at_another_size_sets_size_and_factor_without_waiting() -> None:
    """target_size changed while suspended: nothing serves, so SIZE and factor at once."""
    c = managed(rf=0, last_activity=NOW - MINUTE)
    idle_state = {
        "suspended_at": (NOW - timedelta(hours=1)).isoformat(),
        "remembered": [{"name": "r1", "size": "25cc"}, {"name": "r2", "size": "25cc"}],
        "replication_factor": 2,
    }
    state = StateRow("u10", 2, {"strategies": {"idle_suspend": idle_state}}, NOW - DAY)
    rows = [row("u10", "target_size", {"target_size": "100cc"}), row("u10", "idle_suspend", IDLE)]
    cp = only_plan(run_plan(signals(c, rows, states=(state,))))
    assert alters(cp) == [Alter(size="100cc", replication_factor=2)]
    assert cp.actions[0].sql == "ALTER CLUSTER \"m\" SET (SIZE = '100cc', REPLICATION FACTOR = 2)"
    assert cp.credits_per_hour_after == 2.0


def only_plan(plan: Plan) -> ClusterPlan:
    (cp,) = plan.clusters
    return cp


# --- resize ---------------------------------------------------------------------------------


def test_target_size_is_a_graceful_reconfiguration() -> None:
    sig = signals(managed(rf=2), [row("u10", "target_size", {"target_size": "100cc"})])
    cp = only_plan(run_plan(sig))
    assert alters(cp) == [Alter(size="100cc", wait=True, timeout_s=3600.0)]
    (action,) = cp.actions
    assert action.sql == (
        "ALTER CLUSTER \"m\" SET (SIZE = '100cc') "
        "WITH (WAIT UNTIL READY (TIMEOUT = '1h', ON TIMEOUT = 'ROLLBACK'))"
    )
    assert action.strategy == "target_size" and action.size == "100cc"
    assert action.codes == ("wanted_size", "graceful_resize")
    assert (cp.credits_per_hour_before, cp.credits_per_hour_after) == (0.5, 2.0)
    assert cp.state.strategies["target_size"] == {}

    # resize_timeout_s sets the TIMEOUT.
    sig = signals(
        managed(), [row("u10", "target_size", {"target_size": "100cc", "resize_timeout_s": 600})]
    )
    cp = only_plan(run_plan(sig))
    assert alters(cp) == [Alter(size="100cc", wait=True, timeout_s=600.0)]
    assert "TIMEOUT = '10m'" in (cp.actions[0].sql or "")


def test_nothing_more_while_a_reconfiguration_is_in_progress_then_nothing_to_change() -> None:
    rc = Reconfiguration(
        status="in-progress",
        deadline=NOW + timedelta(minutes=50),
        on_timeout="ROLLBACK",
        target_size="100cc",
        target_replication_factor=1,
    )
    pending = replica("r1-pending", "100cc", hydrated=False)
    c = replace(managed(), replicas=(*managed().replicas, pending), reconfiguration=rc)
    rows = [
        row("u10", "target_size", {"target_size": "100cc"}),
        row("u10", "idle_suspend", {"idle_after_s": 60}),
    ]
    cp = run(signals(c, rows))
    assert cp.actions == () and cp.errors == ()
    assert any("graceful reconfiguration to 100cc in progress" in n for n in cp.notes)
    assert cp.state == cp.prev_state

    # Finalized: the cluster runs at 100cc, nothing more to do.
    done = replace(rc, status="finalized")
    c = managed(size="100cc", reconfiguration=done)
    cp = run(signals(c, [row("u10", "target_size", {"target_size": "100cc"})]))
    assert cp.actions == () and cp.findings == ()


def test_a_timed_out_resize_is_a_finding_and_a_backoff_counted_once() -> None:
    rc = Reconfiguration(
        status="timed-out",
        deadline=NOW - MINUTE,
        on_timeout="ROLLBACK",
        target_size="100cc",
        target_replication_factor=1,
    )
    sig = signals(
        managed(reconfiguration=rc), [row("u10", "target_size", {"target_size": "100cc"})]
    )
    plan = run_plan(sig)
    cp = only_plan(plan)
    assert alters(cp) == [] and alters(cp, "deferred") == [
        Alter(size="100cc", wait=True, timeout_s=3600.0)
    ]
    assert cp.actions[0].codes[-1] == "backoff"
    (finding,) = [f for f in cp.findings if f.kind == "resize_timed_out"]
    assert (finding.severity, finding.code) == ("error", "resize_timed_out")
    assert "timed out" in finding.message  # the README quotes it
    assert plan.errors() and "graceful resize to 100cc timed out" in plan.errors()[0]
    assert cp.state.backoff is not None and cp.state.backoff.failures == 1
    assert cp.state.failed_resize is not None and cp.state.failed_resize.failures == 1

    # Next cycle, same reconfiguration: not counted again, a warning only, still waiting.
    sig = persist(sig, plan, advance=timedelta(seconds=30))
    cp = run(sig)
    assert [f.severity for f in cp.findings if f.kind == "resize_timed_out"] == ["warning"]
    assert cp.errors == ()
    assert alters(cp) == [] and len(alters(cp, "deferred")) == 1
    assert cp.state.failed_resize == cp.prev_state.failed_resize

    # The backoff over: retried once (not every cycle).
    sig = replace(sig, now=sig.now + timedelta(minutes=2))
    plan = run_plan(sig)
    assert alters(only_plan(plan)) == [Alter(size="100cc", wait=True, timeout_s=3600.0)]

    # It times out again: the second in a row waits twice as long.
    sig = persist(sig, plan, advance=timedelta(hours=1))
    again = replace(rc, deadline=sig.now - MINUTE)
    sig = with_cluster(sig, reconfiguration=again)
    cp = run(sig)
    assert cp.state.failed_resize is not None and cp.state.failed_resize.failures == 2
    assert cp.state.backoff is not None
    assert cp.state.backoff.retry_at == sig.now + timedelta(seconds=120)
    assert cp.errors and alters(cp) == []

    # Once the cluster runs at that size, the record is gone.
    sig = persist(sig, run_plan(sig))
    sig = with_cluster(
        sig,
        size="100cc",
        replicas=(replica("r1", "100cc"),),
        reconfiguration=replace(again, status="finalized", deadline=sig.now),
    )
    cp = run(sig)
    assert cp.actions == () and cp.state.failed_resize is None


def test_someone_elses_failed_resize_to_a_size_nobody_wants_is_not_ours() -> None:
    rc = Reconfiguration(status="timed-out", deadline=NOW - MINUTE, target_size="800cc")
    cp = run(signals(managed(reconfiguration=rc), [row("u10", "idle_suspend", IDLE)]))
    assert cp.errors == () and cp.state.backoff is None


def test_a_resize_on_a_cluster_with_a_source_is_impossible_unless_downtime_is_allowed() -> None:
    c = managed(sources=1, indexes=0)
    cp = run(signals(c, [row("u10", "target_size", {"target_size": "100cc"})]))
    assert alters(cp) == [] and len(alters(cp, "skipped")) == 1
    assert cp.actions[0].codes == ("wanted_size", "single_replica")
    assert [f.kind for f in cp.findings] == ["impossible"]
    assert cp.credits_per_hour_after == cp.credits_per_hour_before

    rows = [row("u10", "target_size", {"target_size": "100cc", "allow_downtime": True})]
    cp = only_plan(run_plan(signals(c, rows)))
    assert alters(cp) == [Alter(size="100cc")]  # no WAIT: Materialize replaces the replica
    assert cp.actions[0].sql == "ALTER CLUSTER \"m\" SET (SIZE = '100cc')"
    assert [f.kind for f in cp.findings] == ["downtime"]


def test_resume_of_a_cluster_with_a_source_is_capped_at_one_replica() -> None:
    c = managed(rf=0, sources=1, indexes=0)
    state = StateRow("u10", 2, {"strategies": {"schedule": {"replication_factor": 3}}}, NOW - DAY)
    cp = run(signals(c, [row("u10", "schedule", BERLIN_OFFICE)], states=(state,)))
    # Wednesday 13:00 in Berlin: inside the window, no remembered replica set but a factor.
    assert cp.errors  # no replica set known: the schedule says so
    state = StateRow(
        "u10",
        2,
        {
            "strategies": {
                "schedule": {
                    "replication_factor": 3,
                    "remembered": [{"name": "r1", "size": "25cc"}],
                }
            }
        },
        NOW - DAY,
    )
    cp = run(signals(c, [row("u10", "schedule", BERLIN_OFFICE)], states=(state,)))
    assert alters(cp) == [Alter(replication_factor=1)]
    assert cp.actions[0].codes == ("resume_remembered", "managed_resume", "resume_capped")


# --- schedule windows -------------------------------------------------------------------------


def test_schedule_turns_a_managed_cluster_off_outside_and_on_inside() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=NOW.tzinfo)
    sig = signals(managed(rf=2), [row("u10", "schedule", BERLIN_OFFICE)], now=saturday)
    plan = run_plan(sig)
    cp = only_plan(plan)
    assert alters(cp) == [Alter(replication_factor=0)]
    assert cp.actions[0].strategy == "schedule" and cp.empty_on_purpose
    assert cp.actions[0].codes == ("schedule_off", "managed_suspend")
    assert cp.state.strategies["schedule"]["replication_factor"] == 2

    sig = with_cluster(persist(sig, plan), replication_factor=0, replicas=())
    assert run(sig).actions == ()  # stays off all weekend

    monday = datetime(2026, 11, 30, 8, 0, tzinfo=NOW.tzinfo)  # 09:00 in Berlin
    cp = run(replace(sig, now=monday))
    assert alters(cp) == [Alter(replication_factor=2)]
    assert cp.actions[0].strategy == "schedule"


def test_schedule_window_size_resizes_a_running_managed_cluster_gracefully() -> None:
    windows = [dict(BERLIN_OFFICE["windows"][0], size="200cc")]  # type: ignore[index]
    config = dict(BERLIN_OFFICE, windows=windows)
    cp = run(signals(managed(), [row("u10", "schedule", config)]))
    assert alters(cp) == [Alter(size="200cc", wait=True, timeout_s=3600.0)]
    assert cp.actions[0].strategy == "schedule"
    assert cp.actions[0].codes == ("wanted_size", "graceful_resize")


# --- not applicable, rails ----------------------------------------------------------------


def test_burst_on_a_managed_cluster_is_a_warning_and_no_action() -> None:
    c = replace(managed(), replicas=(replica("r1", "25cc", hydrated=False),))
    rows = [
        row("u10", "burst", {"burst_replica_size": "800cc"}),
        row("u10", "target_size", {"target_size": "25cc"}),
    ]
    cp = run(signals(c, rows))
    assert cp.actions == () and cp.errors == ()
    (finding,) = cp.findings
    assert (finding.kind, finding.severity, finding.strategy) == (
        "not_applicable",
        "warning",
        "burst",
    )
    assert finding.code == "not_applicable"
    assert finding.message.startswith("burst is not applicable")  # the README quotes it
    assert "burst" not in cp.state.strategies


def test_rate_limit_and_shadow_hold_for_alter_cluster() -> None:
    recent = tuple(RecentAction("u10", NOW - timedelta(minutes=i + 1)) for i in range(10))
    sig = signals(managed(), [row("u10", "target_size", {"target_size": "100cc"})], recent=recent)
    cp = run(sig)
    assert alters(cp) == [] and len(alters(cp, "deferred")) == 1
    assert cp.actions[0].codes[-1] == "rate_limit"

    rows = [row("u10", "target_size", {"target_size": "100cc", "shadow": True})]
    cp = run(signals(managed(), rows))
    assert alters(cp) == [] and alters(cp, "shadow") == [
        Alter(size="100cc", wait=True, timeout_s=3600.0)
    ]


def test_cooldown_holds_for_a_managed_resize() -> None:
    rows = [row("u10", "target_size", {"target_size": "100cc", "cooldown_s": 600})]
    state = StateRow(
        "u10",
        2,
        {"strategies": {"target_size": {"last_action_at": (NOW - MINUTE).isoformat()}}},
        NOW - MINUTE,
    )
    cp = run(signals(managed(), rows, states=(state,)))
    assert cp.actions == ()
    assert any("in cooldown" in n for n in cp.notes)


def test_materialize_scheduled_and_auto_scaled_managed_clusters_are_left_alone() -> None:
    rows = [
        row(cid, s, c) for cid in ("u1", "u2") for s, c in [("idle_suspend", {"idle_after_s": 1})]
    ]
    clusters = [
        managed("refresh", rf=0, cid="u1", schedule_type="on-refresh"),
        managed("auto", cid="u2", auto_scaling=True, last_activity=NOW - DAY),
    ]
    plan = decide(signals(clusters, rows), cycle_id="c", dry_run=False)
    got = {c.cluster_name: c for c in plan.clusters}
    assert all(cp.actions == () for cp in got.values())
    assert got["refresh"].findings[0].code == "materialize_schedule"
    assert got["auto"].findings[0].code == "materialize_auto_scaling"
    # The README quotes these two.
    assert "SCHEDULE on-refresh" in got["refresh"].findings[0].message
    assert "AUTO SCALING STRATEGY" in got["auto"].findings[0].message
    assert plan.errors() == []


# --- contract ---------------------------------------------------------------------------------


def validate(doc: object, name: str) -> None:
    validator = jsonschema.Draft202012Validator(
        load_schema(name), format_checker=jsonschema.FormatChecker()
    )
    validator.validate(json.loads(json.dumps(doc)))


@pytest.mark.parametrize("status", ["in-progress", "timed-out"])
def test_documents_carry_alter_and_reconfiguration_and_round_trip(status: str) -> None:
    rc = Reconfiguration(status=status, deadline=NOW, on_timeout="ROLLBACK", target_size="100cc")
    sig = signals(
        managed(rf=2, reconfiguration=rc), [row("u10", "target_size", {"target_size": "100cc"})]
    )
    doc = signals_to_json(sig)
    validate(doc, "signals")
    assert signals_from_json(doc) == sig
    plan = run_plan(sig)
    pdoc = plan_to_json(plan)
    validate(pdoc, "plan")
    assert plan_from_json(pdoc) == plan


def test_alter_documents_are_compact_and_old_documents_still_load() -> None:
    sig = signals(managed(rf=2), [row("u10", "target_size", {"target_size": "100cc"})])
    pdoc = plan_to_json(run_plan(sig))
    (action,) = pdoc["clusters"][0]["actions"]  # type: ignore[index]
    assert action["alter"] == {"size": "100cc", "wait": True, "timeout_s": 3600.0}
    validate(pdoc, "plan")
    # A replica action has no "alter" key; a cluster without a reconfiguration none either.
    sdoc = signals_to_json(sig)
    assert "reconfiguration" not in sdoc["clusters"][0]  # type: ignore[index]
    plain = plan_to_json(
        run_plan(signals(cluster("u"), [row("u10", "target_size", {"target_size": "100cc"})]))
    )
    assert all("alter" not in a for a in plain["clusters"][0]["actions"])  # type: ignore[index]
