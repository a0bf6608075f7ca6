"""Rows for an unknown cluster id (defect 12): a cluster's name where its id belongs, a typo,
a dropped cluster's leftovers. Each is a plan-level warning naming the row, with a hint when
the value is a cluster's name; never a run-failing error, and the other clusters go on."""

from __future__ import annotations

import re
from dataclasses import replace

from mzfixtures import cluster, planned, replica, row, signals

from mz_schedctl_provider.engine import decide
from mz_schedctl_provider.engine.contract import plan_from_json, plan_to_json
from mz_schedctl_provider.engine.unknown_rows import stray_rows
from mz_schedctl_provider.runtime.plan_text import plan_lines

TARGET = {"target_size": "100cc"}


def test_a_cluster_name_in_cluster_id_is_reported_with_its_id() -> None:
    analytics = cluster("analytics", replica("r1", "25cc"), cid="u7")
    plan = decide(
        signals(analytics, [row("analytics", "target_size", TARGET)]), cycle_id="c", dry_run=False
    )
    assert plan.clusters == ()  # the row acts on nothing
    (finding,) = plan.findings
    assert finding.code == "unknown_cluster" and finding.severity == "warning"
    assert finding.strategy == "target_size"
    assert "cluster_id 'analytics' is a cluster's name; its id is u7" in finding.message
    assert finding.details == {"cluster_id": "analytics", "hint": "u7"}
    assert plan.errors() == []  # a warning: the run does not fail


def test_a_typo_and_a_dropped_cluster_are_reported_by_row_and_others_go_on() -> None:
    good = cluster("good", replica("r1", "25cc"), cid="u1")
    rows = [
        row("u1", "target_size", TARGET),
        row("U1", "idle_suspend", {"idle_after_s": 600}),  # wrong case
        row("u99", "target_size", TARGET),  # a dropped cluster's leftovers
        row("u99", "burst", {"burst_replica_size": "800cc"}),
        row("u98", "target_size", {**TARGET, "enabled": False}),  # switched off: no word
    ]
    plan = decide(signals(good, rows), cycle_id="c", dry_run=False)
    (cp,) = plan.clusters
    assert planned(cp) == [("create_replica", "r_100cc", "100cc")]
    messages = [(f.strategy, f.message) for f in plan.findings]
    assert messages == [
        (
            "idle_suspend",
            "strategy row 'idle_suspend': cluster_id 'U1' is no cluster's id; "
            "did you mean u1 ('good')?: the row is ignored",
        ),
        (
            "burst",
            "strategy row 'burst': cluster_id 'u99' is no cluster's id "
            "(a typo, or the cluster was dropped): the row is ignored",
        ),
        (
            "target_size",
            "strategy row 'target_size': cluster_id 'u99' is no cluster's id "
            "(a typo, or the cluster was dropped): the row is ignored",
        ),
    ]
    assert plan.errors() == []


def test_under_a_filter_only_rows_it_selects_are_reported() -> None:
    analytics = cluster("analytics", replica("r1", "25cc"), cid="u7")
    rows = [row("analytics", "target_size", TARGET), row("u99", "target_size", TARGET)]
    plan = decide(
        signals(analytics, rows), cycle_id="c", dry_run=False, filter_clusters="analytics"
    )
    assert [f.details["cluster_id"] for f in plan.findings] == ["analytics"]
    other = decide(signals(analytics, rows), cycle_id="c", dry_run=False, filter_clusters="x.*")
    assert other.findings == ()


def test_the_warning_survives_the_document_and_is_printed() -> None:
    analytics = cluster("analytics", replica("r1", "25cc"), cid="u7")
    plan = decide(
        signals(analytics, [row("analytics", "target_size", TARGET)]), cycle_id="c", dry_run=False
    )
    doc = plan_to_json(plan)
    assert plan_from_json(doc).findings == plan.findings
    lines = plan_lines(doc)
    assert (
        "warning",
        "  warning: strategy row 'target_size': cluster_id 'analytics' is a cluster's name; "
        "its id is u7: the row is ignored",
    ) in lines


def test_a_plan_without_such_rows_has_no_findings_key() -> None:
    # Older readers and the golden bytes: the key is absent when empty.
    c = cluster("c", replica("r1", "25cc"))
    doc = plan_to_json(
        decide(signals(c, [row("u10", "target_size", TARGET)]), cycle_id="x", dry_run=False)
    )
    assert "findings" not in doc


def test_the_hint_comes_from_the_signals_cluster_names_when_out_of_scope() -> None:
    # The runtime keeps out-of-scope clusters out of Signals.clusters but names the ones a
    # stray row points at in Signals.cluster_names.
    good = cluster("good", replica("r1", "25cc"), cid="u1")
    sig = replace(
        signals(good, [row("analytics", "burst", {"burst_replica_size": "800cc"})]),
        cluster_names={"u7": "analytics"},
    )
    (finding,) = decide(sig, cycle_id="c", dry_run=False).findings
    assert "cluster_id 'analytics' is a cluster's name; its id is u7" in finding.message


def test_stray_rows_keeps_only_rows_for_no_cluster_and_names_their_clusters() -> None:
    rows = [
        row("u1", "target_size", TARGET),
        row("analytics", "target_size", TARGET),
        row("u99", "burst", {"burst_replica_size": "800cc"}),
    ]
    clusters = {"u1": "good", "u7": "analytics"}
    stray, names = stray_rows(rows=rows, clusters=clusters, pattern=None)
    assert [r.cluster_id for r in stray] == ["analytics", "u99"]
    assert names == {"u7": "analytics"}
    stray, names = stray_rows(rows=rows, clusters=clusters, pattern=re.compile("analytics"))
    assert [r.cluster_id for r in stray] == ["analytics"]
