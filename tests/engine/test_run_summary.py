"""The run's summary (runtime/run_summary.py): its kind and figures from plan and apply result."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from mz_schedctl_provider.engine.contract import apply_result_to_json, plan_to_json
from mz_schedctl_provider.engine.models import (
    Action,
    ActionResult,
    ApplyResult,
    ClusterPlan,
    Plan,
)
from mz_schedctl_provider.runtime.cycle import HELD_BACK_REASON, LEASE_HELD_PREFIX
from mz_schedctl_provider.runtime.run_summary import run_kind, summary

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)


def _action(i: int, cid: str, name: str, delta: float, status: Any = "planned") -> Action:
    return Action(
        id=f"c:{cid}:{i}",
        cluster_id=cid,
        cluster_name=name,
        kind="create_replica",
        replica_name=f"r{i}",
        size="100cc",
        strategy="target_size",
        reasons=("r",),
        status=status,
        credits_per_hour_before=0.0,
        credits_per_hour_after=delta,
    )


A1 = _action(0, "u1", "a", 1.0)
A2 = _action(1, "u1", "a", 2.0)
B1 = _action(0, "u2", "b", 4.0, status="deferred")
PLAN = Plan(
    cycle_id="c",
    now=NOW,
    dry_run=False,
    clusters=(
        ClusterPlan(
            "u1", "a", actions=(A1, A2), credits_per_hour_before=1, credits_per_hour_after=4
        ),
        ClusterPlan("u2", "b", actions=(B1,), credits_per_hour_before=2, credits_per_hour_after=6),
    ),
)


def _result(*outcomes: str, executed: bool = True, reason: str | None = None) -> Any:
    results = tuple(
        ActionResult(a.id, a.cluster_id, o)  # type: ignore[arg-type]
        for a, o in zip((A1, A2, B1), outcomes, strict=False)
    )
    return apply_result_to_json(ApplyResult("c", executed, reason, results))


@pytest.mark.parametrize(
    ("result", "kind"),
    [
        (_result("succeeded", "failed", "not_executed"), "failed_actions"),
        (_result("succeeded", "succeeded", "not_executed"), "applied"),
        (_result("already_true", "not_executed", "not_executed"), "nothing_to_do"),
        (_result(executed=False, reason=HELD_BACK_REASON), "held_back"),
        (_result(executed=False, reason=f"{LEASE_HELD_PREFIX}: x (cycle y)"), "lease_held"),
        (None, "apply_failed"),
    ],
)
def test_the_kind_of_a_run(result: Any, kind: str) -> None:
    assert run_kind(plan_to_json(PLAN), result) == kind


def test_a_dry_run_is_a_dry_run_whatever_apply_says() -> None:
    from dataclasses import replace

    doc = plan_to_json(replace(PLAN, dry_run=True))
    assert run_kind(doc, _result(executed=False, reason="dry run")) == "dry_run"


def test_figures_count_what_ran_and_price_only_that() -> None:
    """a: 1 credits/h, +1 succeeded, +2 failed -> 2; b: 2, its +4 deferred -> 2: fleet 3 -> 4
    (planned 3 -> 10)."""
    run = summary(plan_to_json(PLAN), _result("succeeded", "failed", "not_executed"))
    assert run["actions"] == {
        "planned": 3,
        "ran": 1,
        "already_true": 0,
        "failed": 1,
        "not_executed": 0,
        "deferred": 1,
        "shadow": 0,
    }
    assert run["credits_per_hour"] == {"before": 3.0, "after": 4.0, "planned_after": 10.0}
    assert run["changed_clusters"] == [
        {
            "cluster": "a",
            "cluster_id": "u1",
            "credits_per_hour_before": 1,
            "credits_per_hour_after": 2.0,
            "actions": ["create_replica 'r0' succeeded", "create_replica 'r1' failed"],
            "ran": True,
        }
    ]
    assert run["headline"] == (
        "failed actions: 1 action(s) ran on 1 cluster(s), 1 failed, 1 deferred, 0 not executed;"
        " fleet 3 -> 4 credits/h"
    )


def test_problems_say_whether_they_alerted() -> None:
    outcome = {
        "problems": ["a: bad row", "a: apply did not finish"],
        "alerts": [{"message": "a: bad row", "alert": False, "why": "alerted at 08:00"}],
        "states_written": 0,
    }
    run = summary(plan_to_json(PLAN), None, outcome)
    assert run["problems"] == [
        {"message": "a: bad row", "alerted": False, "why": "alerted at 08:00"},
        {"message": "a: apply did not finish", "alerted": True, "why": "this run"},
    ]
    assert run["headline"].endswith("; 2 problem(s), 1 alerting this run")
