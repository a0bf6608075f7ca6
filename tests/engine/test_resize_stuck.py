"""Unmanaged resizes whose new replica never hydrates (defect 9): past resize_timeout_s from
its creation the cluster is reported stuck (an error finding, code resize_stuck); nothing is
dropped, the old replica keeps serving."""

from __future__ import annotations

from datetime import timedelta

from mzfixtures import NOW, cluster, planned, replica, row, run, signals

MIN = timedelta(minutes=1)


def resizing(new_age: timedelta, *, hydrated: bool = False) -> object:
    return cluster(
        "c",
        replica("old", "25cc"),
        replica("r_100cc", "100cc", hydrated=hydrated, created_at=NOW - new_age),
    )


def target(**extra: object) -> object:
    return row("u10", "target_size", {"target_size": "100cc", **extra})


def test_within_resize_timeout_both_are_kept_without_a_finding() -> None:
    cp = run(signals(resizing(59 * MIN), [target()]))  # type: ignore[arg-type]
    assert cp.actions == ()
    assert cp.errors == () and cp.findings == ()


def test_past_resize_timeout_the_cluster_is_reported_stuck_and_nothing_is_dropped() -> None:
    cp = run(signals(resizing(61 * MIN), [target()]))  # type: ignore[arg-type]
    assert cp.actions == ()  # the old replica is the only hydrated one: it stays
    assert [(f.code, f.severity, f.strategy) for f in cp.findings] == [
        ("resize_stuck", "error", "target_size")
    ]
    assert len(cp.errors) == 1
    found = cp.findings[0]
    assert found.details["replica"] == "r_100cc" and found.details["waiting"] == ["old"]
    assert "raise resize_timeout_s" in found.message and "nothing is dropped" in found.message


def test_resize_timeout_is_the_rows_setting() -> None:
    rows = [target(resize_timeout_s=600)]
    assert run(signals(resizing(9 * MIN), rows)).findings == ()  # type: ignore[arg-type]
    stuck = run(signals(resizing(11 * MIN), rows))  # type: ignore[arg-type]
    assert [f.code for f in stuck.findings] == ["resize_stuck"]
    assert stuck.findings[0].details["resize_timeout_s"] == 600


def test_a_late_hydration_completes_the_resize_and_clears_the_finding() -> None:
    cp = run(signals(resizing(5 * 60 * MIN, hydrated=True), [target()]))  # type: ignore[arg-type]
    assert planned(cp) == [("drop_replica", "old", "25cc")]
    assert cp.findings == () and cp.errors == ()


def test_a_burst_while_the_base_hydrates_is_not_a_stuck_resize() -> None:
    # burst reports its own stuck (max_burst_s); no resize is in progress here.
    c = cluster(
        "c",
        replica("r_100cc", "100cc", hydrated=False, created_at=NOW - 30 * MIN),
        replica("burst", "400cc", created_at=NOW - 30 * MIN),
    )
    rows = [target(resize_timeout_s=60), row("u10", "burst", {"burst_replica_size": "400cc"})]
    cp = run(signals(c, rows))
    assert [f.code for f in cp.findings if f.code == "resize_stuck"] == []


def test_a_shadow_target_size_never_reports_a_stuck_resize() -> None:
    cp = run(signals(resizing(61 * MIN), [target(shadow=True)]))  # type: ignore[arg-type]
    assert [f.code for f in cp.findings] == []
    assert cp.errors == ()
