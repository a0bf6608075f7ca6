"""One alert per problem (engine/alerts.py): which problems fail a run, on the server's clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mz_schedctl_provider.engine.alerts import (
    AlertMemory,
    Problem,
    decide_alert,
    decide_alerts,
    newest_memories,
    problems,
)
from mz_schedctl_provider.engine.models import (
    Action,
    ActionResult,
    ApplyResult,
    ClusterPlan,
    Finding,
    Plan,
)

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
HOUR = 3600.0
BAD_ROW = Problem("u1:config:abc", "u1", "a: invalid config")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def memory(first: float, last: float, *, open_: bool = True) -> AlertMemory:
    return AlertMemory(BAD_ROW.key, "u1", at(first), at(last), open_, BAD_ROW.message)


def test_a_new_problem_alerts_and_says_when_it_will_again() -> None:
    d = decide_alert(BAD_ROW, None, now=T0, interval_s=HOUR)
    assert (d.alert, d.code, d.first_seen, d.next_alert_at) == (True, "first_seen", T0, at(60))


def test_within_the_interval_it_is_listed_not_alerted() -> None:
    d = decide_alert(BAD_ROW, memory(0, 0), now=at(59.99), interval_s=HOUR)
    assert (d.alert, d.code, d.first_seen, d.next_alert_at) == (
        False,
        "alerted_recently",
        T0,
        at(60),
    )
    assert "next alert at 2026-12-02T09:00:00" in d.why


def test_at_exactly_the_interval_it_alerts_again() -> None:
    d = decide_alert(BAD_ROW, memory(0, 0), now=at(60), interval_s=HOUR)
    assert (d.alert, d.code, d.first_seen, d.next_alert_at) == (True, "realert_due", T0, at(120))


def test_a_closed_problem_that_comes_back_alerts_at_once() -> None:
    d = decide_alert(BAD_ROW, memory(0, 0, open_=False), now=at(5), interval_s=HOUR)
    assert (d.alert, d.code, d.first_seen) == (True, "first_seen", at(5))


def test_a_failed_action_alerts_every_time() -> None:
    failed = Problem("u1:failed:x", "u1", "a: create failed", every_time=True)
    recent = AlertMemory(failed.key, "u1", T0, T0, True)
    d = decide_alert(failed, recent, now=at(1), interval_s=HOUR)
    assert (d.alert, d.code, d.next_alert_at) == (True, "failed_action", None)


def test_interval_zero_alerts_every_run() -> None:
    assert decide_alert(BAD_ROW, memory(0, 0), now=T0, interval_s=0).alert


def test_rows_remember_alerts_sent_and_close_what_is_gone_in_scope() -> None:
    gone = AlertMemory("u2:stuck:burst", "u2", T0, T0, True, "b: stuck")
    elsewhere = AlertMemory("u3:stuck:burst", "u3", T0, T0, True, "c: stuck")
    failed = Problem("u1:failed:x", "u1", "a: failed", every_time=True)
    decisions, rows = decide_alerts(
        [BAD_ROW, failed],
        {gone.key: gone, elsewhere.key: elsewhere},
        now=at(2),
        in_scope=["u1", "u2"],  # u3 was filtered out: its problem is not known to be gone
        interval_s=HOUR,
    )
    assert [d.alert for d in decisions] == [True, True]
    assert rows == [
        AlertMemory(BAD_ROW.key, "u1", at(2), at(2), True, BAD_ROW.message),
        AlertMemory(gone.key, "u2", T0, T0, False, "b: stuck"),
    ]  # no row for the failed action: it alerts every time anyway
    _, unfiltered = decide_alerts([], {elsewhere.key: elsewhere}, now=at(2), in_scope=None)
    assert [r.open for r in unfiltered] == [False]


def test_a_quiet_cycle_writes_nothing() -> None:
    _, rows = decide_alerts([BAD_ROW], {BAD_ROW.key: memory(0, 0)}, now=at(10), in_scope=["u1"])
    assert rows == []


def test_the_newest_row_per_key_wins() -> None:
    old, new = memory(0, 0), memory(0, 60)
    assert newest_memories([new, old], [at(60), at(0)]) == {BAD_ROW.key: new}


def _stuck(waited: int) -> Finding:
    return Finding(
        kind="stuck",
        severity="error",
        strategy="burst",
        message=f"stuck: base not hydrated after {waited}s",
        code="stuck",
    )


def test_keys_stay_the_same_while_a_message_counts_up() -> None:
    def plan_with(finding: Finding, *errors: str) -> Plan:
        cp = ClusterPlan(
            cluster_id="u1",
            cluster_name="a",
            findings=(finding,),
            errors=(*errors, finding.message),
        )
        return Plan(cycle_id="c", now=T0, dry_run=False, clusters=(cp,))

    first = problems(plan_with(_stuck(600), "strategy burst: bad key"), None)
    later = problems(plan_with(_stuck(4200), "strategy burst: bad key"), None)
    assert [p.key for p in first] == [p.key for p in later]
    assert first[0].key.startswith("u1:config:") and first[1].key == "u1:stuck:burst"
    other = problems(plan_with(_stuck(600), "strategy burst: another key"), None)
    assert other[0].key != first[0].key  # another mistake is another problem
    assert [p.message for p in later] == [
        "a: strategy burst: bad key",
        "a: stuck: base not hydrated after 4200s",
    ]


def test_failed_actions_are_problems_every_time() -> None:
    action = Action(
        id="c:u1:0",
        cluster_id="u1",
        cluster_name="a",
        kind="create_replica",
        replica_name="r_100cc",
        size="100cc",
        strategy="target_size",
        reasons=("r",),
    )
    plan = Plan(
        cycle_id="c",
        now=T0,
        dry_run=False,
        clusters=(ClusterPlan(cluster_id="u1", cluster_name="a", actions=(action,)),),
    )
    result = ApplyResult(
        cycle_id="c",
        executed=True,
        results=(ActionResult(action.id, "u1", "failed", "out of credits"),),
    )
    assert problems(plan, result) == [
        Problem(
            "u1:failed:c:u1:0",
            "u1",
            "a: create_replica 'r_100cc' failed: out of credits",
            every_time=True,
        )
    ]
