"""engine/cost.py's rules one by one, on hand-made inputs (the known-answer test on the
emulator is tests/materialize/test_mz_cost_report.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mz_schedctl_provider.engine.cost import (
    OUTSIDE,
    AuditRow,
    CostRules,
    ReplicaSpan,
    Window,
    cluster_cost,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
SIZES = {"25cc": 0.25, "100cc": 1.0}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def span(
    name: str, size: str, start: float, end: float | None, rid: str | None = None
) -> ReplicaSpan:
    return ReplicaSpan(
        replica_id=rid or f"u-{name}-{start}",
        cluster_id="u9",
        cluster_name="c",
        replica_name=name,
        size=size,
        created_at=at(start),
        dropped_at=None if end is None else at(end),
        credits_per_hour=SIZES.get(size),
    )


def audit(
    aid: str, minutes: float, kind: str, replica: str, strategy: str, *, executed: bool = True
) -> list[AuditRow]:
    """An action's outcome 1 s after ``minutes`` and, if it ran, its intent 2 s before."""
    rows = [
        AuditRow(
            aid,
            "u9",
            at(minutes) + timedelta(seconds=1),
            "outcome",
            executed,
            strategy,
            kind,
            replica,
        )
    ]
    if executed:
        rows.append(
            AuditRow(
                aid,
                "u9",
                at(minutes) - timedelta(seconds=2),
                "intent",
                None,
                strategy,
                kind,
                replica,
            )
        )
    return rows


WINDOW = Window(at(0), at(120))


def test_an_error_while_a_replica_is_live_is_no_refusal_and_the_gap_is_inclusive() -> None:
    spans = [span("r1", "25cc", -10, 30), span("r1", "25cc", 90, None)]
    errors = [at(10), at(40), at(41), at(42) + timedelta(seconds=0), at(44) + timedelta(seconds=1)]
    c = cluster_cost(cluster_id="u9", name="c", spans=spans, audit=[], errors=errors,
                     sizes=SIZES, window=WINDOW, rules=CostRules(cold_start_gap_s=60))  # fmt: skip
    # at(10): r1 was live, not a refusal. 40, 41, 42: 60 s apart each (inclusive: one cold
    # start); 44:01 is 121 s after 42: another.
    assert c.refused_queries == 4
    assert [s.queries for s in c.cold_starts] == [3, 1]


def test_a_not_executed_action_neither_dates_the_baseline_nor_attributes() -> None:
    spans = [span("r1", "25cc", -10, None), span("big", "100cc", 30, 60)]
    rows = audit("a1", 30, "create_replica", "big", "target_size", executed=False)
    c = cluster_cost(cluster_id="u9", name="c", spans=spans, audit=rows, errors=[],
                     sizes=SIZES, window=WINDOW)  # fmt: skip
    assert c.baseline_at is None and c.savings == 0.0
    assert {s.replica_name: made for s, made, _ in c.replicas} == {"r1": OUTSIDE, "big": OUTSIDE}


def test_attribution_needs_the_audit_row_within_the_slack() -> None:
    spans = [span("r1", "25cc", -10, None), span("big", "100cc", 30, None)]
    near = audit("a1", 31, "create_replica", "big", "target_size")
    far = audit("a2", 35, "create_replica", "big", "target_size")
    rules = CostRules(attribution_slack_s=120)
    for rows, expected in ((near, "target_size"), (far, OUTSIDE)):
        c = cluster_cost(cluster_id="u9", name="c", spans=spans, audit=rows, errors=[],
                         sizes=SIZES, window=WINDOW, rules=rules)  # fmt: skip
        assert dict((s.replica_name, m) for s, m, _ in c.replicas)["big"] == expected


def test_a_gone_cluster_is_observed_until_its_last_drop_and_unknown_sizes_cost_zero() -> None:
    spans = [span("r1", "25cc", -10, 60), span("odd", "7cc", 0, 30)]
    c = cluster_cost(cluster_id="u9", name="c", spans=spans, audit=[], errors=[],
                     sizes=SIZES, window=WINDOW, exists=False)  # fmt: skip
    assert c.observed_s == 3600 and c.seconds["suspended"] == 0
    assert c.credits == 0.25  # 25cc for 1 h; 7cc is in no size catalog
    assert any("7cc" in r for r in c.reasons)


def test_baseline_is_the_set_just_before_the_first_executed_action() -> None:
    # Two 100cc replicas; the controller drops one at +60 (intent at 59:58): baseline both.
    spans = [span("a", "100cc", -10, None), span("b", "100cc", -10, 60)]
    rows = audit("d1", 60, "drop_replica", "b", "target_size")
    c = cluster_cost(cluster_id="u9", name="c", spans=spans, audit=rows, errors=[],
                     sizes=SIZES, window=WINDOW)  # fmt: skip
    assert c.baseline_credits_per_hour == 2.0 and c.baseline_credits == 4.0
    assert c.credits == 3.0 and c.savings == 1.0
    assert dict((s.replica_name, g) for s, _, g in c.replicas) == {"a": None, "b": "target_size"}
