"""burst against the emulator: a big replica while the base hydrates, gone once the base is
hydrated; and an OOM-looping base past max_burst_s, where the burst is kept (it is the only
hydrated replica) and the cluster is reported stuck with its OOM count (CLI exit code 1)."""

from __future__ import annotations

import pytest
from mzsupport import (
    add_strategy,
    cli,
    cluster_id,
    hydrated_replicas,
    make_cluster,
    replicas,
    run_cycle,
    state_payload,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def test_burst_appears_while_the_base_hydrates_and_goes_once_it_is_hydrated(
    emulator: Emulator, db: Database, name: str
) -> None:
    # Data as big as 60 s at 25cc: r1 hydrates after ~63 s, an 800cc burst after ~14 s.
    cid = make_cluster(emulator, name, size="25cc", objects="mv", hydration="60 seconds")
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc"})

    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}
    assert hydrated_replicas(emulator, name) == set()
    started = state_payload(emulator, cid)
    assert started is not None and "started_at" in started["strategies"]["burst"]

    emulator.advance(20)  # 800cc: online at 3 s, hydrated ~11 s later; r1 still hydrating
    assert hydrated_replicas(emulator, name) == {"burst"}
    run = run_cycle(db, only=name)
    assert run.actions() == []
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}

    emulator.advance(25)  # t = 45 s: r1 still not hydrated, the burst must stay
    run_cycle(db, only=name)
    assert "burst" in replicas(emulator, name)

    emulator.advance(25)  # t = 70 s: r1 is hydrated now
    assert hydrated_replicas(emulator, name) == {"r1", "burst"}
    run = run_cycle(db, only=name)
    assert [(a["kind"], a["replica_name"]) for a in run.actions()] == [("drop_replica", "burst")]
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert hydrated_replicas(emulator, name) == {"r1"}
    assert run.outcome.problems == []


def test_oom_looping_base_keeps_the_burst_and_reports_the_cluster_stuck(
    emulator: Emulator, db2: Database, name: str
) -> None:
    """Through psycopg2 (Airflow 2.11's driver); the CLI run at the end is psycopg 3."""
    db = db2
    cid = make_cluster(emulator, name, size="25cc", objects="mv")
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc", "max_burst_s": 120})
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}

    ooms = 0
    for _ in range(8):  # 160 s in all, the base killed every 20 s: it never hydrates
        emulator.advance(20)
        emulator.inject_oom(name, "r1")
        ooms += 1
        run = run_cycle(db, only=name)
        # The burst is the only hydrated replica: it is never dropped.
        assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}
        assert hydrated_replicas(emulator, name) == {"burst"}
        assert [a for a in run.actions() if a["status"] == "planned"] == []

    # Past max_burst_s the API's persist lists the cluster as stuck, with its OOM count.
    assert len(run.outcome.problems) == 1
    problem = run.outcome.problems[0]
    assert problem.startswith(f"{name}: stuck")
    # The count comes from the catalog's status history: compare with it.
    logged = emulator.execute(
        "SELECT count(*) FROM mz_internal.mz_cluster_replica_status_history h"
        " JOIN mz_catalog.mz_cluster_replicas r ON r.id = h.replica_id"
        " WHERE r.cluster_id = %s AND r.name = 'r1' AND h.reason = 'oom-killed'",
        (cid,),
    )[0][0]
    assert logged == ooms
    assert f"{ooms} OOM kill(s)" in problem
    # Each OOM is counted once: not again among the crashes.
    assert f"{ooms} OOM kill(s) and 0 other crash(es)" in problem

    # The CLI says the same and fails the run, without a traceback; the burst stays.
    done = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{ooms} OOM kill(s)" in done.stderr
    assert "stuck" in done.stderr
    assert "Traceback" not in done.stderr
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}
    assert cluster_id(emulator, name) == cid


def test_one_injected_oom_is_reported_as_one_oom(
    emulator: Emulator, db: Database, name: str
) -> None:
    """Defect 14: one inject_oom made the stuck message say "1 OOM kill(s) and 1 crash(es)".
    Both drivers (the db fixture); the CLI run is psycopg 3."""
    conn = db
    cid = make_cluster(emulator, name, size="25cc", objects="mv", hydration="600 seconds")
    add_strategy(emulator, cid, "burst", {"burst_replica_size": "800cc", "max_burst_s": 60})
    run_cycle(conn, only=name)
    assert replicas(emulator, name) == {"r1": "25cc", "burst": "800cc"}
    emulator.advance(30)
    emulator.inject_oom(name, "r1")
    emulator.advance(40)  # 70 s > max_burst_s; r1 (600 s of data) is still hydrating
    run = run_cycle(conn, only=name)
    (problem,) = run.outcome.problems
    assert problem.startswith(f"{name}: stuck")
    assert "1 OOM kill(s) and 0 other crash(es)" in problem
    done = cli("plan", "--filter-clusters", name, url=emulator.url)
    assert "1 OOM kill(s) and 0 other crash(es)" in done.stdout + done.stderr
    assert cluster_id(emulator, name) == cid
