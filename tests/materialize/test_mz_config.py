"""Strategy rows as users write them, through the CLI against the emulator: invalid rows give
their cluster no actions and a clear error naming cluster, strategy and key while the other
clusters go on (exit code 1, no traceback); mz-clusterctl's rows work unchanged."""

from __future__ import annotations

import json

import pytest
from mzsupport import (
    add_strategy,
    audit,
    cli,
    make_cluster,
    replicas,
    run_cycle,
    state_payload,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")

# (suffix, strategy, config stored as JSONB text, key the error must name)
BAD_ROWS = [
    ("size", "target_size", json.dumps({"target_size": "999cc"}), "target_size"),
    ("type", "target_size", json.dumps({"target_size": 100}), "target_size"),
    ("neg", "idle_suspend", json.dumps({"idle_after_s": -5}), "idle_after_s"),
    ("key", "burst", json.dumps({"burst_replica_size": "800cc", "max_burst": 5}), "max_burst"),
    # A JSON string whose text is not JSON (a config pasted with a quote missing).
    ("json", "target_size", json.dumps('{"target_size": "100cc"'), None),
    ("strategy", "autoscale", json.dumps({"target_size": "100cc"}), None),
]


def test_one_bad_row_holds_back_only_its_own_cluster(emulator: Emulator, name: str) -> None:
    ids = {}
    for suffix, strategy, config, _key in BAD_ROWS:
        ids[suffix] = make_cluster(emulator, f"{name}_{suffix}", objects="index")
        add_strategy(emulator, ids[suffix], strategy, config, raw=True)
    good = make_cluster(emulator, f"{name}_good", objects="index")
    add_strategy(emulator, good, "target_size", {"target_size": "100cc"})
    emulator.advance(70)

    done = cli("apply", "--filter-clusters", f"{name}_.*", url=emulator.url)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"{len(BAD_ROWS)} problem(s)" in done.stderr
    problems = [ln.strip() for ln in done.stderr.splitlines() if "invalid config" in ln]
    for suffix, strategy, _config, key in BAD_ROWS:
        cluster = f"{name}_{suffix}"
        line = next(p for p in problems if f"cluster {cluster!r}" in p)
        assert f"({ids[suffix]})" in line
        assert f"strategy {strategy!r}" in line
        if key is not None:
            assert f"key {key!r}" in line
        # No action for that cluster: the catalog and the audit trail agree.
        assert replicas(emulator, cluster) == {"r1": "25cc"}
        assert audit(emulator, ids[suffix]) == []
    assert "not valid JSON" in next(p for p in problems if f"'{name}_json'" in p)
    assert "unknown strategy" in next(p for p in problems if f"'{name}_strategy'" in p)
    assert "unknown size '999cc'" in next(p for p in problems if f"'{name}_size'" in p)
    # The good cluster went on as if nothing was wrong.
    assert replicas(emulator, f"{name}_good") == {"r1": "25cc", "r_100cc": "100cc"}
    assert [r.executed for r in audit(emulator, good)] == [None, True]

    # The next run proceeds normally too (same errors, the good cluster continues).
    emulator.advance(40)
    again = cli("apply", "--filter-clusters", f"{name}_.*", url=emulator.url)
    assert again.returncode == 1
    assert replicas(emulator, f"{name}_good") == {"r_100cc": "100cc"}


def test_a_bad_row_is_reported_through_the_api_with_either_driver(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    add_strategy(emulator, cid, "burst", {"burst_replica_size": True})
    emulator.advance(70)

    run = run_cycle(db, only=name)

    assert run.actions() == []
    (problem,) = run.outcome.problems
    assert f"cluster {name!r} ({cid}), strategy 'burst': key 'burst_replica_size'" in problem
    assert replicas(emulator, name) == {"r1": "25cc"}


def test_predecessor_rows_work_unchanged(emulator: Emulator, name: str) -> None:
    # Data as big as 60 s at 25cc: 200cc needs ~24 s, so the cycles below see it hydrating.
    resize = make_cluster(emulator, f"{name}_resize", objects="index", hydration="60 seconds")
    idle = make_cluster(emulator, f"{name}_idle", objects="index", hydration="60 seconds")
    emulator.advance(70)
    # A cluster the predecessor was bursting: its "<cluster>_burst" replica is still there.
    burst = make_cluster(emulator, f"{name}_burst", objects="index", hydration="60 seconds")
    emulator.execute(f"CREATE CLUSTER REPLICA {name}_burst.{name}_burst_burst (SIZE = '800cc')")
    add_strategy(emulator, resize, "target_size", {"target_size": "200cc"})
    # mz-clusterctl stored some configs as JSON text: still an object once parsed.
    add_strategy(
        emulator, burst, "burst", json.dumps({"burst_replica_size": "800cc", "cooldown_s": 60})
    )
    add_strategy(emulator, idle, "idle_suspend", {"idle_after_s": 1800})
    # The predecessor's own state row (version 1): ignored with a clear line, fresh state.
    emulator.execute(
        "INSERT INTO mz_cluster_strategy_state (cluster_id, state_version, payload)"
        " VALUES (%s, 1, %s::jsonb)",
        (resize, json.dumps({"last_action_at": "2020-01-01T00:00:00Z"})),
    )

    def apply() -> str:
        done = cli("apply", "--filter-clusters", f"{name}_.*", url=emulator.url)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    out = apply()
    assert "ignored a state row of version 1" in out
    assert replicas(emulator, f"{name}_resize") == {"r1": "25cc", "r_200cc": "200cc"}
    # The predecessor's burst replica is recognised: kept while r1 hydrates, no second burst.
    assert replicas(emulator, f"{name}_burst") == {"r1": "25cc", f"{name}_burst_burst": "800cc"}
    assert replicas(emulator, f"{name}_idle") == {"r1": "25cc"}

    emulator.advance(30)  # r_200cc hydrated (~24 s); the burst cluster's r1 not yet
    apply()
    assert replicas(emulator, f"{name}_resize") == {"r_200cc": "200cc"}
    assert replicas(emulator, f"{name}_burst") == {"r1": "25cc", f"{name}_burst_burst": "800cc"}

    emulator.advance(40)  # the burst cluster's r1 is hydrated: the old burst goes
    apply()
    assert replicas(emulator, f"{name}_burst") == {"r1": "25cc"}

    emulator.advance(1800)  # idle for idle_after_s since the row was written
    apply()
    assert replicas(emulator, f"{name}_idle") == {}
    assert replicas(emulator, f"{name}_resize") == {"r_200cc": "200cc"}
    assert state_payload(emulator, resize) is not None  # a version 2 row supersedes version 1


def test_a_managed_cluster_is_resized_with_alter_cluster(emulator: Emulator, name: str) -> None:
    """Managed clusters are driven with ALTER CLUSTER (tests/materialize/test_managed.py):
    through the CLI, a target_size row starts a graceful reconfiguration, audited."""
    emulator.execute(f"CREATE CLUSTER {name} (SIZE = '25cc', REPLICATION FACTOR = 1)")
    cid = emulator.execute("SELECT id FROM mz_clusters WHERE name = %s", (name,))[0][0]
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})

    done = cli("apply", "--filter-clusters", name, url=emulator.url)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "WAIT UNTIL READY" in done.stdout
    assert replicas(emulator, name) == {"r1": "25cc", "r1-pending": "100cc"}
    rows = audit(emulator, cid)
    assert [r.phase for r in rows] == ["intent", "outcome"]
    assert rows[1].executed and rows[1].ctx["kind"] == "alter_cluster"


def test_a_burst_named_like_the_target_replica_is_refused_by_row(
    emulator: Emulator, db: Database, name: str
) -> None:
    """Defect 10: burst replica_name equal to target_size's: the resize never happened. Now the
    cross-row check names both rows' keys, the cluster is left alone, and the CLI fails the
    run with the same line (no traceback)."""
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "replica_name": "main"})
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc", "replica_name": "main"})
    emulator.advance(70)

    run = run_cycle(db, only=name)

    assert run.actions() == []
    (problem,) = run.outcome.problems
    assert (
        f"cluster {name!r} ({cid}), strategy 'target_size': key 'replica_name': "
        "equals burst's replica_name 'main'"
    ) in problem
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert audit(emulator, cid) == []

    done = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "equals burst's replica_name 'main'" in done.stderr
    assert replicas(emulator, name) == {"r1": "25cc"}
