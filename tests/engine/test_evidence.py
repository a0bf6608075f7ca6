"""Evidence that survives a lost state row (defects 2, 6 and 7 of issue 14): ownership from the
audit's creates, resume from the newest suspend's drops (audit trail, then Materialize's replica
history, then the strategy rows, then the documented default), and a suspend that only partly
ran remembering what it already removed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from mzfixtures import NOW, apply, cluster, hydrate, planned, replica, row, run, signals

from mz_schedctl_provider.engine import StateRow
from mz_schedctl_provider.engine.models import ReplicaEvent, Signals

HOUR = timedelta(hours=1)
IDLE = row("u10", "idle_suspend", {"idle_after_s": 1800})


def created(name: str, size: str, at: datetime, strategy: str = "burst") -> ReplicaEvent:
    return ReplicaEvent("u10", "audit", "created", name, size, at, strategy)


def dropped(
    name: str, size: str, at: datetime, strategy: str = "idle_suspend", source: str = "audit"
) -> ReplicaEvent:
    return ReplicaEvent("u10", source, "dropped", name, size, at, strategy)  # type: ignore[arg-type]


def with_events(sig: Signals, *events: ReplicaEvent) -> Signals:
    return replace(sig, replica_events=events)


# Defect 2: replica_scope "owned" keeps its replicas without a state row ---------------------

OWNED_ROWS = [
    row("u10", "target_size", {"target_size": "100cc", "replica_scope": "owned"}),
    row("u10", "burst", {"burst_replica_size": "400cc", "replica_scope": "owned"}),
]


def owned_cluster() -> Signals:
    c = cluster(
        "c",
        replica("r_100cc", "100cc", hydrated=False, created_at=NOW - HOUR),
        replica("burst", "400cc", created_at=NOW - HOUR),
    )
    return signals(c, OWNED_ROWS)  # no state row: persist failed, crashed, or wipe-state


def test_owned_replicas_come_from_the_audit_when_the_state_row_is_lost() -> None:
    sig = with_events(
        owned_cluster(),
        created("r_100cc", "100cc", NOW - HOUR, "target_size"),
        created("burst", "400cc", NOW - HOUR),
    )
    cp = run(sig)
    assert planned(cp) == [], "no burst_2 while the audit says 'burst' is ours"
    assert set(cp.state.owned) == {"r_100cc", "burst"}
    # Once the base hydrates, the burst goes: nothing runs that no plan accounts for.
    cp = run(hydrate(sig, "r_100cc"))
    assert planned(cp) == [("drop_replica", "burst", "400cc")]


def test_without_evidence_the_lost_state_still_disowns_them() -> None:
    # The defect as it was: the burst is a stranger, a second one is created beside it.
    assert planned(run(owned_cluster())) == [("create_replica", "burst_2", "400cc")]


def test_a_namesake_created_after_our_replica_was_dropped_is_not_ours() -> None:
    sig = with_events(
        owned_cluster(),
        created("r_100cc", "100cc", NOW - 3 * HOUR, "target_size"),
        created("burst", "400cc", NOW - 3 * HOUR),
        # Someone dropped our burst (Materialize's history shows it) and made their own.
        dropped("burst", "400cc", NOW - 2 * HOUR, "", source="replica_history"),
    )
    cp = run(sig)
    assert "burst" not in cp.state.owned
    assert "r_100cc" in cp.state.owned


# Defect 6: a suspended cluster without a remembered set resumes on activity -----------------


def suspended(**kw: object) -> Signals:
    kw.setdefault("last_activity", NOW - timedelta(minutes=1))  # a refused query
    return signals(cluster("c", **kw), [IDLE])  # type: ignore[arg-type]


def test_resumes_from_the_audit_trail_after_wipe_state() -> None:
    sig = with_events(
        suspended(),
        created("r1", "25cc", NOW - 30 * 24 * HOUR, "target_size"),
        dropped("r1", "25cc", NOW - 29 * 24 * HOUR),  # suspended a month ago
        dropped("r2", "100cc", NOW - 29 * 24 * HOUR),
    )
    cp = run(sig)
    assert planned(cp) == [("create_replica", "r1", "25cc"), ("create_replica", "r2", "100cc")]
    assert any("replica set from the audit trail" in n for n in cp.notes), cp.notes


def test_no_activity_since_the_evidenced_suspend_stays_suspended() -> None:
    sig = with_events(suspended(last_activity=NOW - 2 * HOUR), dropped("r1", "25cc", NOW - HOUR))
    cp = run(sig)
    assert planned(cp) == []
    remembered = cp.state.strategies["idle_suspend"]["remembered"]
    assert remembered == [{"name": "r1", "size": "25cc"}], "the rebuilt set becomes the hint"


def test_predecessor_suspend_resumes_from_materialize_replica_history() -> None:
    sig = with_events(
        suspended(),
        dropped("r_50cc", "50cc", NOW - 3 * HOUR, "", source="replica_history"),
        dropped("old", "800cc", NOW - 9 * HOUR, "", source="replica_history"),  # long before
    )
    predecessor = StateRow("u10", 1, {"suspended": True}, NOW - 3 * HOUR)
    sig = replace(sig, states=(predecessor,))
    cp = run(sig)
    assert planned(cp) == [("create_replica", "r_50cc", "50cc")]
    assert any("replica set from mz_cluster_replica_history" in n for n in cp.notes), cp.notes


def test_managed_cluster_resumes_at_its_evidenced_replication_factor() -> None:
    sig = with_events(
        signals(
            cluster(
                "c",
                managed=True,
                size="25cc",
                replication_factor=0,
                last_activity=NOW - timedelta(minutes=1),
            ),
            [IDLE],
        ),
        dropped("r1", "25cc", NOW - HOUR, "", source="replica_history"),
        dropped("r2", "25cc", NOW - HOUR, "", source="replica_history"),
    )
    cp = run(sig)
    [action] = [a for a in cp.actions if a.status == "planned"]
    assert action.kind == "alter_cluster" and action.alter is not None
    assert action.alter.replication_factor == 2, "not factor 1"


def test_no_evidence_at_all_resumes_the_documented_default() -> None:
    cp = run(suspended())
    assert planned(cp) == [("create_replica", "r1", "25cc")]
    assert any("replica set from the default" in n for n in cp.notes), cp.notes


# Defect 7: a suspend that only partly ran remembers what it already removed ----------------


def test_a_partial_suspend_remembers_the_union_of_removed_and_left() -> None:
    # One of two drops ran (the other failed: the state row kept nothing).
    sig = with_events(
        signals(cluster("c", replica("b", "100cc"), last_activity=NOW - 2 * HOUR), [IDLE]),
        created("a", "25cc", NOW - 5 * HOUR, "target_size"),
        created("b", "100cc", NOW - 5 * HOUR, "target_size"),
        dropped("a", "25cc", NOW - timedelta(minutes=10)),
    )
    cp = run(sig)
    assert planned(cp) == [("drop_replica", "b", "100cc")]
    assert cp.state.strategies["idle_suspend"]["remembered"] == [
        {"name": "b", "size": "100cc"},
        {"name": "a", "size": "25cc"},
    ]
    # Activity after the suspend brings back both, not only the one left at the end.
    after = apply(sig, replace(_plan(sig), clusters=(cp,)))
    (c,) = after.clusters
    after = replace(after, clusters=(replace(c, last_activity=after.now),))
    assert planned(run(after)) == [
        ("create_replica", "b", "100cc"),
        ("create_replica", "a", "25cc"),
    ]


def test_a_completed_suspend_followed_by_a_resume_is_not_evidence() -> None:
    sig = with_events(
        signals(cluster("c", replica("b", "100cc"), last_activity=NOW - 2 * HOUR), [IDLE]),
        dropped("a", "25cc", NOW - 5 * HOUR),
        dropped("b", "100cc", NOW - 5 * HOUR),
        created("b", "100cc", NOW - 4 * HOUR, "idle_suspend"),  # the resume
    )
    cp = run(sig)
    assert cp.state.strategies["idle_suspend"]["remembered"] == [{"name": "b", "size": "100cc"}]


def _plan(sig: Signals):  # type: ignore[no-untyped-def]
    from mz_schedctl_provider.engine import decide

    return decide(sig, cycle_id="test-cycle", dry_run=False)


def test_managed_cluster_without_evidence_resumes_at_factor_1_of_its_size() -> None:
    c = cluster("c", managed=True, size="100cc", replication_factor=0)
    cp = run(signals(c, [IDLE]))
    [action] = [a for a in cp.actions if a.status == "planned"]
    assert action.alter is not None and action.alter.replication_factor == 1
    assert any("replica set from the default" in n for n in cp.notes), cp.notes
