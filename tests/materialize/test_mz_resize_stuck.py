"""An unmanaged resize whose new replica never hydrates (defect 9), on the emulator: a
per-cluster hydration delay far above resize_timeout_s. Within the timeout both replicas are
kept quietly; past it the cluster is reported stuck (the run fails, code resize_stuck), both
replicas are still kept and no DDL is sent; the CLI exits 1 and prints the message."""

from __future__ import annotations

import pytest
from mzsupport import (
    add_strategy,
    cli,
    ddl_sent,
    hydrated_replicas,
    json_docs,
    make_cluster,
    replicas,
    run_cycle,
    server_now,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def _stuck(plan: dict[str, object], name: str) -> list[dict[str, object]]:
    clusters = plan["clusters"]
    assert isinstance(clusters, list)
    (cp,) = [c for c in clusters if c["cluster_name"] == name]
    return [f for f in cp["findings"] if f["code"] == "resize_stuck"]


def test_a_resize_that_never_hydrates_is_reported_stuck_and_keeps_both(
    emulator: Emulator, db: Database, name: str
) -> None:
    # Data as big as 2 hours at 25cc (1 hour at 100cc): far above resize_timeout_s (120 s).
    cid = make_cluster(emulator, name, size="25cc", objects="index", hydration="2 hours")
    emulator.advance(2 * 3600 + 60)
    assert hydrated_replicas(emulator, name) == {"r1"}
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "resize_timeout_s": 120})

    first = run_cycle(db, only=name)
    assert [a["kind"] for a in first.actions()] == ["create_replica"]
    assert first.outcome.problems == []
    emulator.advance(60)
    assert hydrated_replicas(emulator, name) == {"r1"}
    within = run_cycle(db, only=name)
    assert within.actions() == [] and within.outcome.problems == []
    assert _stuck(within.plan, name) == []

    emulator.advance(120)  # the new replica is 180 s old, resize_timeout_s is 120
    since = server_now(emulator)
    past = run_cycle(db, only=name)
    assert past.actions() == [], past.plan
    (finding,) = _stuck(past.plan, name)
    assert finding["severity"] == "error" and finding["strategy"] == "target_size"
    (problem,) = past.outcome.problems
    assert problem.startswith(f"{name}: resize to 100cc stuck: 'r_100cc' (100cc)")
    assert "raise resize_timeout_s" in problem
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    assert hydrated_replicas(emulator, name) == {"r1"}
    assert ddl_sent(emulator, since=since) == []

    # The real CLI: the run fails (exit 1) and says what to do; still nothing is dropped.
    done = cli("apply", "--json", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 1, done.stdout + done.stderr
    plan = json_docs(done.stdout)[0]
    assert len(_stuck(plan, name)) == 1
    assert "resize to 100cc stuck" in done.stderr + done.stdout
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
