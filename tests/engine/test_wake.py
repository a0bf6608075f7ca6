"""engine/wake.py: which cheap conditions wake the cycle, and the rate limit after a cycle."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mz_schedctl_provider.engine.facts import iso
from mz_schedctl_provider.engine.models import StateRow, StrategyRow
from mz_schedctl_provider.engine.wake import (
    ReplicaSeen,
    WakeFacts,
    decide_wake,
    watched_clusters,
)

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)


def facts(
    *,
    now: datetime,
    cursor: datetime | None = T0,
    strategies: tuple[StrategyRow, ...] = (),
    states: tuple[StateRow, ...] = (),
    statements: dict[str, datetime] | None = None,
    replicas: tuple[ReplicaSeen, ...] = (),
) -> WakeFacts:
    return WakeFacts(
        now=now,
        cursor=cursor,
        strategies=strategies,
        states=states,
        statements=statements or {},
        replicas=replicas,
    )


def suspended(cid: str, at: datetime) -> StateRow:
    payload = {"strategies": {"idle_suspend": {"suspended_at": iso(at)}}}
    return StateRow(cid, 2, payload, at)


IDLE = StrategyRow("u1", "idle_suspend", {"idle_after_s": 300})


def test_a_statement_on_a_suspended_cluster_wakes_once_the_rate_limit_allows() -> None:
    base = facts(
        now=T0 + timedelta(seconds=60),
        strategies=(IDLE,),
        states=(suspended("u1", T0),),
        statements={"u1": T0 + timedelta(seconds=50)},
    )
    decision = decide_wake(base, min_interval_s=30)
    assert decision.wake
    assert [(w.cluster_id, w.reason) for w in decision.reasons] == [("u1", "refused_query")]
    held = decide_wake(base, min_interval_s=120)
    assert not held.wake and held.reasons and held.held_until == T0 + timedelta(seconds=120)


def test_no_wake_without_a_new_statement_with_replicas_or_with_resume_off() -> None:
    quiet = facts(now=T0 + timedelta(seconds=60), strategies=(IDLE,), states=(suspended("u1", T0),))
    assert not decide_wake(quiet).wake and not decide_wake(quiet).reasons
    old = facts(
        now=T0 + timedelta(seconds=60),
        strategies=(IDLE,),
        states=(suspended("u1", T0),),
        statements={"u1": T0 - timedelta(seconds=600)},
    )
    assert not decide_wake(old).reasons
    late_row = facts(
        now=T0 + timedelta(seconds=60),
        strategies=(IDLE,),
        states=(suspended("u1", T0),),
        statements={"u1": T0 - timedelta(seconds=2)},  # within the flush lag: a late row
    )
    assert decide_wake(late_row).wake
    serving = facts(
        now=T0 + timedelta(seconds=60),
        strategies=(IDLE,),
        states=(suspended("u1", T0),),
        statements={"u1": T0 + timedelta(seconds=50)},
        replicas=(ReplicaSeen("u1", "r1", "25cc", hydrated=True),),
    )
    assert not decide_wake(serving).reasons
    off = StrategyRow("u1", "idle_suspend", {"idle_after_s": 300, "resume": False})
    no_resume = facts(
        now=T0 + timedelta(seconds=60),
        strategies=(off,),
        states=(suspended("u1", T0),),
        statements={"u1": T0 + timedelta(seconds=50)},
    )
    assert not decide_wake(no_resume).reasons
    assert not decide_wake(facts(now=T0, cursor=None, strategies=(IDLE,))).wake


def test_a_hydrated_base_wakes_a_cluster_that_keeps_a_burst() -> None:
    row = StrategyRow("u2", "burst", {"burst_replica_size": "800cc"})
    state = StateRow(
        "u2", 2, {"strategies": {"burst": {"started_at": iso(T0), "replica_name": "burst"}}}, T0
    )
    assert watched_clusters((row,), (state,)) == ["u2"]
    only_burst = (
        ReplicaSeen("u2", "r1", "25cc", hydrated=False),
        ReplicaSeen("u2", "burst", "800cc", hydrated=True),
    )
    now = T0 + timedelta(seconds=90)
    waiting = facts(now=now, strategies=(row,), states=(state,), replicas=only_burst)
    assert not decide_wake(waiting).reasons
    base = (ReplicaSeen("u2", "r1", "25cc", hydrated=True), only_burst[1])
    ready = facts(now=now, strategies=(row,), states=(state,), replicas=base)
    assert [w.reason for w in decide_wake(ready).reasons] == ["burst_base_hydrated"]
    dropped = StateRow("u2", 2, {"strategies": {"burst": {}}}, now)
    assert not decide_wake(facts(now=now, strategies=(row,), states=(dropped,))).reasons


def test_a_hydrated_target_size_replica_wakes_while_old_ones_remain() -> None:
    row = StrategyRow("u3", "target_size", {"target_size": "50cc"})
    old = ReplicaSeen("u3", "r1", "25cc", hydrated=True)
    new = ReplicaSeen("u3", "r_50cc", "50cc", hydrated=True)
    now = T0 + timedelta(seconds=90)
    assert decide_wake(facts(now=now, strategies=(row,), replicas=(old, new))).wake
    assert not decide_wake(facts(now=now, strategies=(row,), replicas=(new,))).reasons
    cold = ReplicaSeen("u3", "r_50cc", "50cc", hydrated=False)
    assert not decide_wake(facts(now=now, strategies=(row,), replicas=(old, cold))).reasons


def test_a_window_pre_warm_opening_after_the_cursor_wakes() -> None:
    # 2026-12-02 is a Wednesday; the window opens 10:15 UTC, pre-warm 10 min: begins 10:05.
    row = StrategyRow(
        "u4",
        "schedule",
        {
            "timezone": "UTC",
            "prewarm_s": 600,
            "windows": [
                {
                    "days": ["mon", "tue", "wed", "thu", "fri"],
                    "start": "10:15",
                    "end": "18:00",
                    "mode": "on",
                }
            ],
        },
    )
    before = facts(now=T0 + timedelta(minutes=4), strategies=(row,))
    assert not decide_wake(before).reasons
    after = facts(now=T0 + timedelta(minutes=6), strategies=(row,))
    assert [w.reason for w in decide_wake(after).reasons] == ["window_opens"]
    later_cursor = facts(
        now=T0 + timedelta(minutes=7), cursor=T0 + timedelta(minutes=6), strategies=(row,)
    )
    assert not decide_wake(later_cursor).reasons
