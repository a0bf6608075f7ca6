"""The approval gate, pure (engine/approval.py): the rule, what waits, what never waits, and how
an approval is matched and expires on the plan's server clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from mzfixtures import NOW, cluster, replica, row, run, signals

from mz_schedctl_provider.engine import (
    StateRow,
    plan_from_json,
    plan_to_json,
    signals_from_json,
    signals_to_json,
)
from mz_schedctl_provider.engine.approval import (
    ApprovalRule,
    ApprovalRuleError,
    fingerprint,
    needs_approval,
    parse_rule,
)
from mz_schedctl_provider.engine.models import Action, Approval, Cluster, ClusterPlan, Signals

DROPS = ApprovalRule(drops=True)
HOUR = timedelta(hours=1)
IDLE = row("u10", "idle_suspend", {"idle_after_s": 1800})


def idle() -> Signals:
    """A cluster idle for 2 h: idle_suspend drops both replicas."""
    c = cluster("c", replica("a", "25cc"), replica("b", "100cc"), last_activity=NOW - 2 * HOUR)
    return signals(c, [IDLE])


def managed(*, rf: int = 1, size: str = "25cc", **kw: Any) -> Cluster:
    reps = [replica(f"r{i}", size) for i in range(1, rf + 1)]
    return cluster("m", *reps, managed=True, size=size, replication_factor=rf, **kw)


def approval(action: Action, status: str = "approved", **kw: Any) -> Approval:
    kw.setdefault("expires_at", NOW + HOUR)
    return Approval(
        request_id=kw.pop("request_id", "req-1"),
        cluster_id=action.cluster_id,
        fingerprint=fingerprint(action),
        status=status,  # type: ignore[arg-type]
        decided_by=kw.pop("decided_by", "alice"),
        decided_at=kw.pop("decided_at", NOW - timedelta(minutes=5)),
        **kw,
    )


def statuses(cp: ClusterPlan) -> list[tuple[str, str, str]]:
    return [(a.kind, a.replica_name, a.status) for a in cp.actions]


# ---- the rule, from text -------------------------------------------------------------------


def test_the_rule_is_off_by_default_and_parsed_from_text() -> None:
    assert parse_rule({}) is None
    assert parse_rule({"approve_drops": "false", "approve_cost_increase_over": ""}) is None
    rule = parse_rule(
        {
            "approve_drops": "True",
            "approve_managed_resizes": "no",
            "approve_cost_increase_over": "1.5",
            "approval_timeout_s": "600",
        }
    )
    assert rule == ApprovalRule(drops=True, cost_increase_over=1.5, timeout_s=600.0)
    assert parse_rule({"approve_cost_increase_over": "0"}) == ApprovalRule(cost_increase_over=0.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"approve_drops": "sometimes"}, "approve_drops: expected true or false"),
        ({"approve_managed_resizes": "2"}, "approve_managed_resizes: expected true or false"),
        ({"approve_cost_increase_over": "lots"}, "approve_cost_increase_over: expected a number"),
        ({"approve_cost_increase_over": "-1"}, "approve_cost_increase_over: expected a number >="),
        ({"approve_cost_increase_over": "nan"}, "approve_cost_increase_over: expected a finite"),
        ({"approve_drops": "on", "approval_timeout_s": "0"}, "approval_timeout_s: expected a"),
        ({"approve_drop": "on"}, "unknown approval setting(s): approve_drop"),
    ],
)
def test_a_bad_setting_is_a_named_error(settings: dict[str, str], message: str) -> None:
    with pytest.raises(
        ApprovalRuleError, match="^" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        parse_rule(settings)


# ---- what waits ------------------------------------------------------------------------------


def test_a_drop_waits_and_costs_nothing_while_it_waits() -> None:
    sig = idle()
    assert [a.status for a in run(sig).actions] == ["planned", "planned"]
    cp = run(sig, approval=DROPS)
    assert statuses(cp) == [("drop_replica", "a", "deferred"), ("drop_replica", "b", "deferred")]
    assert all(a.codes[-1] == "awaiting_approval" for a in cp.actions)
    assert all(a.approval_id is None for a in cp.actions)  # nobody was asked yet
    assert cp.actions[0].reasons[-1] == (
        "awaiting approval: a drop (approve_drops); if approved: -0.25 credits/h"
    )
    # Nothing executes, so the cluster costs what it costs now.
    assert cp.credits_per_hour_after == cp.credits_per_hour_before == 1.25
    assert any(n.startswith("approval: drop_replica 'a' waits") for n in cp.notes)
    # Other rules do not hold a drop.
    assert [a.status for a in run(sig, approval=ApprovalRule(managed_resizes=True)).actions] == [
        "planned",
        "planned",
    ]


def test_a_managed_suspend_lowers_the_factor_and_counts_as_a_drop() -> None:
    sig = signals(managed(rf=2, last_activity=NOW - 2 * HOUR), [IDLE])
    (action,) = run(sig, approval=DROPS).actions
    assert action.kind == "alter_cluster" and action.status == "deferred"
    assert action.codes[-1] == "awaiting_approval"


def test_a_managed_resize_waits() -> None:
    sig = signals(managed(rf=2), [row("u10", "target_size", {"target_size": "100cc"})])
    (action,) = run(sig, approval=ApprovalRule(managed_resizes=True)).actions
    assert action.status == "deferred" and action.codes[-1] == "awaiting_approval"
    assert "a managed resize (approve_managed_resizes)" in action.reasons[-1]
    (action,) = run(sig, approval=DROPS).actions
    assert action.status == "planned"


def test_a_cost_increase_over_n_waits_and_under_n_does_not() -> None:
    # 25cc -> 100cc, unmanaged: the create of 100cc adds 1 credit/h while 25cc serves.
    c = cluster("c", replica("c_25cc", "25cc"))
    sig = signals(c, [row("u10", "target_size", {"target_size": "100cc"})])
    (create,) = run(sig, approval=ApprovalRule(cost_increase_over=0.5)).actions
    assert create.kind == "create_replica" and create.status == "deferred"
    assert "a cost increase of 1 credits/h, over 0.5" in create.reasons[-1]
    (create,) = run(sig, approval=ApprovalRule(cost_increase_over=1.0)).actions
    assert create.status == "planned"  # strictly over N waits: exactly N does not
    (create,) = run(sig, approval=ApprovalRule(cost_increase_over=2.0)).actions
    assert create.status == "planned"


def test_a_resume_never_waits() -> None:
    # Suspended by idle_suspend (no replicas), a query resumes it: creates, cost up.
    state = StateRow(
        "u10",
        2,
        {
            "strategies": {
                "idle_suspend": {
                    "suspended_at": (NOW - HOUR).isoformat(),
                    "remembered": [{"name": "a", "size": "100cc"}],
                }
            },
            "owned": [],
        },
        NOW - HOUR,
    )
    sig = signals(cluster("c", last_activity=NOW - timedelta(minutes=1)), [IDLE], states=(state,))
    everything = ApprovalRule(drops=True, managed_resizes=True, cost_increase_over=0.0)
    cp = run(sig, approval=everything)
    assert statuses(cp) == [("create_replica", "a", "planned")]
    assert "awaiting_approval" not in cp.actions[0].codes
    verdict = needs_approval(cp.actions[0], cluster=sig.clusters[0], rule=everything)
    assert (verdict.waits, verdict.code) == (False, "restores_service")
    # A managed cluster at factor 0: the factor back (even at another size) never waits.
    m = managed(rf=0, last_activity=NOW - timedelta(minutes=1))
    idle_state = {
        "suspended_at": (NOW - HOUR).isoformat(),
        "remembered": [{"name": "r1", "size": "25cc"}],
        "replication_factor": 1,
    }
    mstate = StateRow("u10", 2, {"strategies": {"idle_suspend": idle_state}}, NOW - HOUR)
    rows = [row("u10", "target_size", {"target_size": "100cc"}), IDLE]
    (action,) = run(signals(m, rows, states=(mstate,)), approval=everything).actions
    assert action.kind == "alter_cluster" and action.status == "planned"
    assert action.alter is not None and action.alter.size == "100cc"


def test_a_restore_of_a_cluster_with_nothing_hydrated_never_waits() -> None:
    # The only replica is gone (dropped by someone): target_size creates one; nothing serves.
    sig = signals(cluster("c"), [row("u10", "target_size", {"target_size": "800cc"})])
    (create,) = run(sig, approval=ApprovalRule(cost_increase_over=0.0)).actions
    assert create.kind == "create_replica" and create.status == "planned"
    # The same create while a hydrated replica serves does wait.
    sig = signals(
        cluster("c", replica("c_25cc", "25cc")),
        [row("u10", "target_size", {"target_size": "800cc"})],
    )
    (create,) = run(sig, approval=ApprovalRule(cost_increase_over=0.0)).actions
    assert create.status == "deferred"


# ---- approvals: matched by fingerprint, expiring at expires_at ------------------------------


def test_an_approved_drop_runs_with_who_and_when_in_its_reasons() -> None:
    sig = idle()
    a, _b = run(sig, approval=DROPS).actions
    ok = approval(a, request_id="req-a")
    cp = run(replace(sig, approvals=(ok,)), approval=DROPS, cycle_id="a-later-cycle")
    first, second = cp.actions
    assert first.status == "planned" and first.codes[-1] == "approved"
    assert first.approval_id == "req-a"
    assert first.reasons[-1].startswith("approved by alice at ")
    assert second.status == "deferred"  # b was not approved
    assert cp.credits_per_hour_after == 1.0  # only a's 0.25 goes


def test_an_approval_expires_at_exactly_expires_at_on_the_server_clock() -> None:
    sig = idle()
    a = run(sig, approval=DROPS).actions[0]
    at_now = approval(a, expires_at=NOW)
    assert run(replace(sig, approvals=(at_now,)), approval=DROPS).actions[0].status == "deferred"
    just_after = approval(a, expires_at=NOW + timedelta(microseconds=1))
    cp = run(replace(sig, approvals=(just_after,)), approval=DROPS)
    assert cp.actions[0].status == "planned"
    # The clock that counts is the signals' now (the server's), not the request's.
    later = replace(sig, now=NOW + timedelta(microseconds=1), approvals=(just_after,))
    assert run(later, approval=DROPS).actions[0].status == "deferred"


def test_pending_and_rejected_requests_keep_the_action_waiting_and_name_the_request() -> None:
    sig = idle()
    a = run(sig, approval=DROPS).actions[0]
    pending = approval(a, "pending", request_id="req-p", decided_by=None, decided_at=None)
    got = run(replace(sig, approvals=(pending,)), approval=DROPS).actions[0]
    assert (got.status, got.codes[-1], got.approval_id) == (
        "deferred",
        "awaiting_approval",
        "req-p",
    )
    rejected = approval(a, "rejected", request_id="req-r", decided_by="bob")
    got = run(replace(sig, approvals=(rejected,)), approval=DROPS).actions[0]
    assert (got.status, got.codes[-1], got.approval_id) == (
        "deferred",
        "approval_rejected",
        "req-r",
    )
    assert got.reasons[-1].startswith("rejected by bob at ")
    # Used and expired requests authorize nothing.
    for status in ("used", "expired"):
        got = run(replace(sig, approvals=(approval(a, status),)), approval=DROPS).actions[0]
        assert (got.status, got.approval_id) == ("deferred", None)


def test_an_approval_of_another_action_or_cluster_does_not_count() -> None:
    sig = idle()
    a, b = run(sig, approval=DROPS).actions
    other_cluster = replace(approval(a), cluster_id="u99")
    cp = run(replace(sig, approvals=(other_cluster, approval(b, expires_at=NOW))), approval=DROPS)
    assert [x.status for x in cp.actions] == ["deferred", "deferred"]


def test_the_fingerprint_is_stable_across_cycles_and_tells_actions_apart() -> None:
    sig = idle()
    one = run(sig, approval=DROPS, cycle_id="one").actions
    two = run(sig, approval=DROPS, cycle_id="two").actions
    assert [x.id for x in one] != [x.id for x in two]
    assert [fingerprint(x) for x in one] == [fingerprint(x) for x in two]
    assert fingerprint(one[0]) != fingerprint(one[1])
    # A recreated namesake (another replica id) is another drop.
    assert fingerprint(one[0]) != fingerprint(replace(one[0], replica_id="u-other"))


def test_approvals_and_approval_ids_travel_in_the_documents() -> None:
    sig = idle()
    a = run(sig, approval=DROPS).actions[0]
    sig = replace(sig, approvals=(approval(a, request_id="req-a"),))
    assert signals_from_json(signals_to_json(sig)) == sig
    from mz_schedctl_provider.engine import decide

    plan = decide(sig, cycle_id="c", dry_run=False, approval=DROPS)
    assert plan_from_json(plan_to_json(plan)) == plan
    assert plan_to_json(plan)["clusters"][0]["actions"][0]["approval_id"] == "req-a"  # type: ignore[index,call-overload]
    # Without the gate nothing in the documents changes.
    assert "approvals" not in signals_to_json(idle())
    plain = plan_to_json(decide(idle(), cycle_id="c", dry_run=False))
    assert "approval_id" not in str(plain)
