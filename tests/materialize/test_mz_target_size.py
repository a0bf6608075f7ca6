"""target_size against the emulator: a zero-downtime resize, checked step by step from the
catalog's own hydration statuses; and a cluster hosting a source, where the plan says the
resize is impossible without downtime instead of failing at apply time."""

from __future__ import annotations

import pytest
from mzsupport import (
    add_strategy,
    audit,
    cli,
    ddl_sent,
    hydrated_replicas,
    make_cluster,
    replicas,
    run_cycle,
    server_now,
    state_payload,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def test_resize_drops_the_old_replica_only_after_the_new_one_is_hydrated(
    emulator: Emulator, db: Database, name: str
) -> None:
    # Data as big as 60 s at 25cc (30 s at 100cc), so the cycles see the resize mid-way.
    cid = make_cluster(emulator, name, size="25cc", objects="mv", hydration="60 seconds")
    emulator.advance(70)  # the 25cc replica hydrates its materialized view after ~63 s
    assert hydrated_replicas(emulator, name) == {"r1"}
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    started = server_now(emulator)

    history: list[tuple[set[str], dict[str, str], set[str]]] = []
    for _ in range(20):
        hydrated_before = hydrated_replicas(emulator, name)
        run = run_cycle(db, only=name)
        assert run.outcome.problems == []
        after = replicas(emulator, name)
        hydrated_after = hydrated_replicas(emulator, name)
        history.append((hydrated_before, after, hydrated_after))
        # Ground truth after every cycle: some replica always serves the view.
        assert hydrated_after, f"no hydrated replica after a cycle: {history}"
        if after == {"r_100cc": "100cc"}:
            break
        emulator.advance(5)
        assert hydrated_replicas(emulator, name), "no hydrated replica between cycles"
    else:
        pytest.fail(f"the resize did not converge: {history}")

    # The first cycle created the 100cc replica next to the old one.
    assert history[0][1] == {"r1": "25cc", "r_100cc": "100cc"}
    # The cycle that dropped r1 ran when r_100cc was already hydrated; none before it dropped.
    drop_step = next(i for i, (_, reps, _) in enumerate(history) if "r1" not in reps)
    assert "r_100cc" in history[drop_step][0]
    assert all("r_100cc" not in h for h, _, _ in history[:drop_step])
    assert drop_step >= 3, "100cc needs ~33 s to hydrate: r1 went too early"
    # What reached Materialize: one create, then one drop, nothing else.
    sent = ddl_sent(emulator, since=started)
    mine = [s for s in sent if f'"{name}"' in s]
    assert mine == [
        f'CREATE CLUSTER REPLICA "{name}"."r_100cc" (SIZE = \'100cc\')',
        f'DROP CLUSTER REPLICA "{name}"."r1"',
    ]
    # Each DDL has its intent and its executed outcome in the audit trail.
    rows = audit(emulator, cid)
    assert [(r.phase, r.executed, r.ctx["kind"]) for r in rows] == [
        ("intent", None, "create_replica"),
        ("outcome", True, "create_replica"),
        ("intent", None, "drop_replica"),
        ("outcome", True, "drop_replica"),
    ]
    # The audit carries the reason codes beside the prose, in both phases.
    assert [r.ctx["codes"] for r in rows] == [
        ["wanted_size"],
        ["wanted_size"],
        ["replaced"],
        ["replaced"],
    ]
    payload = state_payload(emulator, cid)
    assert payload is not None
    assert "last_action_at" in payload["strategies"]["target_size"]
    assert payload["owned"] == ["r_100cc"]


def test_source_cluster_resize_is_reported_impossible_not_failed(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="source")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    started = server_now(emulator)

    run = run_cycle(db, only=name)

    plan = run.cluster(name)
    (create,) = plan["actions"]
    assert create["kind"] == "create_replica"
    assert create["status"] == "skipped"
    assert create["codes"] == ["wanted_size", "single_replica"]
    assert [f["kind"] for f in plan["findings"]] == ["impossible"]
    assert "failed" not in run.outcomes()
    assert run.outcome.problems == []
    # Nothing was attempted: the catalog and the statement log agree.
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert not [s for s in ddl_sent(emulator, since=started) if f'"{name}"' in s]
    assert [r for r in audit(emulator, cid) if r.executed] == []

    done = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stderr
    assert "impossible without downtime" in done.stdout
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_source_cluster_resize_with_allow_downtime_replaces_the_replica(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="source")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "allow_downtime": True})
    started = server_now(emulator)

    run = run_cycle(db, only=name)

    assert run.outcome.problems == [], run.outcome.problems
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    mine = [s for s in ddl_sent(emulator, since=started) if f'"{name}"' in s]
    assert mine == [
        f'DROP CLUSTER REPLICA "{name}"."r1"',
        f'CREATE CLUSTER REPLICA "{name}"."r_100cc" (SIZE = \'100cc\')',
    ]
