"""idle_suspend and the statement log's flush lag (defect 15).

Materialize writes its statement log every 5 s, so the rows of the last few seconds before
``now`` are not visible yet. The idle clock must not declare idle inside that blind spot, and a
late row of a query made just before a suspend must still resume the cluster.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from mzfixtures import NOW, apply, cluster, planned, replica, row, run, signals, with_cluster

from mz_schedctl_provider.engine import StateRow, decide

IDLE = row("u10", "idle_suspend", {"idle_after_s": 1800})
SUSPENDED_AT = NOW - timedelta(minutes=1)


def suspended() -> StateRow:
    payload = {
        "strategies": {
            "idle_suspend": {
                "suspended_at": SUSPENDED_AT.isoformat(),
                "remembered": [{"name": "a", "size": "25cc"}],
            }
        }
    }
    return StateRow("u10", 2, payload, SUSPENDED_AT)


def test_not_idle_inside_the_flush_lag() -> None:
    # Last visible activity 1803 s ago: idle by now (1800 s), but not by now - 5 s, and a query
    # in those 5 s would not be visible yet.
    c = cluster("c", replica("a", "25cc"), last_activity=NOW - timedelta(seconds=1803))
    cp = run(signals(c, [IDLE]))
    assert cp.actions == ()
    at = (NOW + timedelta(seconds=2)).isoformat()
    assert cp.notes == (f"idle_suspend: idle for 1798s of 1800s: would suspend at {at}",)


def test_idle_once_the_lag_has_passed_too() -> None:
    c = cluster("c", replica("a", "25cc"), last_activity=NOW - timedelta(seconds=1805))
    cp = run(signals(c, [IDLE]))
    assert planned(cp) == [("drop_replica", "a", "25cc")]
    assert [a.codes for a in cp.actions] == [("idle",)]


def test_a_late_row_of_a_query_just_before_the_suspend_resumes() -> None:
    # The query ran 3 s before the suspend; its row became visible at the next flush, after
    # the suspend: its activity is before suspended_at, yet the suspend never saw it.
    c = cluster("c", last_activity=SUSPENDED_AT - timedelta(seconds=3))
    cp = run(signals(c, [IDLE], states=(suspended(),)))
    assert planned(cp) == [("create_replica", "a", "25cc")]
    assert [a.codes for a in cp.actions] == [("resume_remembered",)]
    assert "after suspend" in cp.notes[0]


def test_activity_older_than_the_lag_before_the_suspend_does_not_resume() -> None:
    c = cluster("c", last_activity=SUSPENDED_AT - timedelta(seconds=6))
    cp = run(signals(c, [IDLE], states=(suspended(),)))
    assert cp.actions == ()


def test_what_the_suspend_saw_never_resumes_it() -> None:
    # Suspend exactly when idle by now - lag; the same visible activity must not resume it.
    c = cluster("c", replica("a", "25cc"), last_activity=NOW - timedelta(seconds=1805))
    sig = signals(c, [IDLE])
    sig = apply(sig, decide(sig, cycle_id="1", dry_run=False))
    assert sig.clusters[0].replicas == ()
    later = replace(sig, now=sig.now + timedelta(seconds=120))
    assert run(later).actions == ()
    # A query in the blind spot just before that suspend, flushed late: resumes.
    late: datetime = NOW - timedelta(seconds=2)
    cp = run(with_cluster(later, last_activity=late))
    assert planned(cp) == [("create_replica", "a", "25cc")]


def test_a_lag_of_zero_is_the_plain_rule() -> None:
    c = cluster("c", replica("a", "25cc"), last_activity=NOW - timedelta(seconds=1801))
    assert planned(run(replace(signals(c, [IDLE]), log_flush_lag_s=0.0))) == [
        ("drop_replica", "a", "25cc")
    ]
    late = cluster("c", last_activity=SUSPENDED_AT - timedelta(seconds=3))
    sig = replace(signals(late, [IDLE], states=(suspended(),)), log_flush_lag_s=0.0)
    assert run(sig).actions == ()
