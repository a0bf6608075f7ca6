"""One seam: the planner, managed.py and the signals reader ask what strategies declare
(base.StrategySpec) instead of naming them; shared remembered replicas and convergence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from mzfixtures import NOW, cluster, planned, replica, row, run, signals

from mz_schedctl_provider.engine import StateRow
from mz_schedctl_provider.engine.config import KeySpec, Values
from mz_schedctl_provider.engine.desired import Desired
from mz_schedctl_provider.engine.facts import ClusterContext
from mz_schedctl_provider.engine.lookback import activity_lookback_s
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.engine.strategies import (
    REGISTRY,
    SizeClaim,
    StrategyResult,
    StrategySpec,
    register,
    suspending_strategies,
)
from mz_schedctl_provider.engine.strategies.idle_suspend import IdleState
from mz_schedctl_provider.engine.strategies.remembered import RememberedReplicas
from mz_schedctl_provider.engine.strategies.schedule import ScheduleState


def _keep_all(
    *,
    params: str,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    return StrategyResult(desired=desired, state={}, reasons=(f"saw {params}",))


@pytest.fixture
def pinned() -> Iterator[StrategySpec[str]]:
    """A strategy that holds a size for good, declares a lookback and no managed support;
    registered for one test only."""
    spec: StrategySpec[str] = StrategySpec(
        name="pinned",
        priority=90,
        keys={"size": KeySpec("size", required=True)},
        build=lambda v: v.required_text("size"),
        run=_keep_all,
        not_applicable_to_managed="pinned is not applicable to a managed cluster",
        activity_lookback=lambda size: 7 * 86400.0,
        size_claims=lambda size: (SizeClaim(key="size", size=size, steady=True),),
    )
    register(spec)
    try:
        yield spec
    finally:
        del REGISTRY[spec.name]


def test_a_new_strategy_is_consulted_by_its_declarations_alone(
    pinned: StrategySpec[str],
) -> None:
    # Its steady size clashes with a burst of that size: the planner finds it from the claims.
    c = cluster("c", replica("r_25cc", "25cc"))
    clash = run(
        signals(
            c,
            [
                row("u10", "pinned", {"size": "800cc"}),
                row("u10", "burst", {"burst_replica_size": "800cc"}),
            ],
        )
    )
    assert len(clash.errors) == 1
    assert (
        "key 'burst_replica_size': equals size '800cc': a burst must be another size"
        in (clash.errors[0])
    )
    # On a managed cluster its declared reason becomes the warning; no action.
    m = cluster("m", replica("r1", "25cc"), managed=True, size="25cc", replication_factor=1)
    cp = run(signals(m, [row("u10", "pinned", {"size": "800cc"})]))
    assert [(f.kind, f.strategy, f.message) for f in cp.findings] == [
        ("not_applicable", "pinned", "pinned is not applicable to a managed cluster")
    ]
    assert planned(cp) == [] and cp.notes == ()
    # The signals reader's lookback comes from the declaration too.
    assert activity_lookback_s([row("u10", "pinned", {"size": "800cc"})], sizes={}) is None
    sized = {s.name: s for s in signals(c, []).sizes}
    assert activity_lookback_s([row("u10", "pinned", {"size": "800cc"})], sizes=sized) == (
        7 * 86400.0
    )


def test_activity_lookback_is_the_longest_valid_declared_one() -> None:
    rows = [
        row("u1", "idle_suspend", {"idle_after_s": 1800}),
        # Config stored as JSON text counts like an object.
        row("u2", "idle_suspend", json.dumps({"idle_after_s": 7200})),
        # Invalid rows never run: they do not widen the window.
        row("u3", "idle_suspend", {"idle_after_s": 99999, "bogus": 1}),
        row("u4", "idle_suspend", {"idle_after_s": True}),
        row("u5", "target_size", {"target_size": "25cc"}),  # declares no lookback
        row("u6", "no_such_strategy", {"idle_after_s": 10**6}),
    ]
    assert activity_lookback_s(rows) == 7200.0
    assert activity_lookback_s(rows[4:]) is None


def test_suspenders_are_those_that_declare_it() -> None:
    assert suspending_strategies() == frozenset({"idle_suspend", "schedule"})
    assert {n for n, s in REGISTRY.items() if s.not_applicable_to_managed} == {
        "burst",
        "shrink_to_fit",
    }


def test_old_remembered_payloads_load_and_dump_unchanged() -> None:
    idle_raw: JsonObject = {
        "suspended_at": NOW.isoformat(),
        "remembered": [{"name": "a", "size": "25cc"}, {"name": "b", "size": "100cc"}],
        "replication_factor": 2,
    }
    idle = IdleState.load(idle_raw)
    assert idle.remembered == RememberedReplicas((("a", "25cc"), ("b", "100cc")))
    assert idle.dump() == idle_raw
    # An empty remembered list is kept by idle_suspend (it marks a suspend of nothing).
    empty: JsonObject = {"suspended_at": NOW.isoformat(), "remembered": []}
    assert IdleState.load(empty).remembered == RememberedReplicas(())
    assert IdleState.load(empty).dump() == empty
    sched_raw: JsonObject = {
        "remembered": [{"name": "r_100cc", "size": "100cc"}, {"bad": 1}, "x"],
        "replication_factor": True,  # not a factor: dropped, as before
    }
    sched = ScheduleState.load(sched_raw)
    assert sched.remembered == RememberedReplicas((("r_100cc", "100cc"),))
    assert sched.replication_factor is None
    assert sched.dump() == {"remembered": [{"name": "r_100cc", "size": "100cc"}]}
    assert ScheduleState.load({"remembered": []}).dump() == {}


def test_a_state_row_written_before_the_seam_resumes_the_same_replicas() -> None:
    payload = {
        "strategies": {
            "idle_suspend": {
                "suspended_at": "2026-11-25T11:00:00+00:00",
                "remembered": [{"name": "my b", "size": "100cc"}],
            }
        }
    }
    c = cluster("c", last_activity=NOW)
    cp = run(
        signals(
            c,
            [row("u10", "idle_suspend", {"idle_after_s": 1800})],
            states=(StateRow("u10", 2, payload),),
        )
    )
    assert planned(cp) == [("create_replica", "my b", "100cc")]


def test_typed_params_reach_the_function_without_a_cast() -> None:
    spec = REGISTRY["target_size"]
    values = Values({"target_size": "100cc", "replica_name": None})
    bound = spec.configure(values)
    assert bound.size_claims() == (SizeClaim(key="target_size", size="100cc", steady=True),)
    assert bound.activity_lookback_s() is None
