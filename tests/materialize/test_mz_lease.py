"""Single writer and kill switch against the emulator: of two cycles at once exactly one
applies and the other says who holds the lease (CLI exit code 3); with the kill switch on,
every action is audited as held back and the catalog does not change."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mzsupport import (
    REPO,
    add_strategy,
    audit,
    cli,
    connect,
    ddl_sent,
    make_cluster,
    replicas,
    run_cycle,
    server_now,
    snapshot,
    state_rows,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def test_two_claims_at_once_have_exactly_one_winner(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    one = cycle.CycleSettings(holder="deployment-one")
    two = cycle.CycleSettings(holder="deployment-two")
    other = connect(emulator, "psycopg2" if "psycopg2" in type(db.conn).__module__ else "psycopg")
    try:
        first = cycle.claim_lease(db, one, cycle_id="cycle-one")
        second = cycle.claim_lease(other, two, cycle_id="cycle-two")
        assert first.acquired and not second.acquired
        assert (second.holder, second.cycle_id) == ("deployment-one", "cycle-one")

        # The loser plans, applies nothing, and its result says who holds the lease.
        signals = cycle.collect(other, two, filter_clusters=name)
        plan = cycle.decide(signals, cycle_id="cycle-two", dry_run=False, filter_clusters=name)
        lost = cycle.apply(plan, other, two)
        assert lost["executed"] is False
        assert "another cycle holds the lease: deployment-one (cycle cycle-one)" in lost["reason"]
        cycle.persist(plan, lost, other, two)
        assert replicas(emulator, name) == {"r1": "25cc"}
        assert state_rows(emulator, cid) == 0

        # The winner applies; its persist releases the lease for the next cycle.
        signals = cycle.collect(db, one, filter_clusters=name)
        plan = cycle.decide(signals, cycle_id="cycle-one", dry_run=False, filter_clusters=name)
        won = cycle.apply(plan, db, one)
        assert won["executed"] is True
        cycle.persist(plan, won, db, one)
        assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
        assert cycle.claim_lease(other, two, cycle_id="cycle-three").acquired
        cycle.persist(plan | {"cycle_id": "cycle-three"}, won, other, two)
    finally:
        other.close()
    assert emulator.execute("SELECT count(*) FROM mz_cluster_strategy_leases")[0][0] == 0


def test_an_expired_claim_does_not_block(emulator: Emulator, db3: Database) -> None:
    short = cycle.CycleSettings(holder="crashed", lease_ttl_s=30)
    assert cycle.claim_lease(db3, short, cycle_id="crashed-cycle").acquired
    later = cycle.CycleSettings(holder="next")
    assert not cycle.claim_lease(db3, later, cycle_id="too-early").acquired
    emulator.advance(31)  # the crashed cycle never released its claim; it expires
    assert cycle.claim_lease(db3, later, cycle_id="next-cycle").acquired


# Started by both processes: wait for the start signal, then run the real CLI entry point.
_RACER = """
import os, sys, time
from mz_schedctl_provider import cli
open(sys.argv[1] + "." + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.001)
sys.exit(cli.main(sys.argv[2:]))
"""


def test_two_cli_processes_started_together(emulator: Emulator, name: str, tmp_path: Path) -> None:
    clusters = [f"{name}_{i}" for i in range(4)]
    for cluster in clusters:
        cid = make_cluster(emulator, cluster, objects="index")
        add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    emulator.advance(70)
    since = server_now(emulator)
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MZ_SCHEDCTL_PAUSED")}
    argv = [sys.executable, "-c", _RACER, str(go), "apply", "--database-url", emulator.url,
            "--filter-clusters", f"{name}_.*"]  # fmt: skip
    procs = [
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("go.*"))) < 2:  # both imported and waiting
        assert time.monotonic() < deadline, "the CLI processes did not start"
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)

    assert codes == [0, 3], outs
    winner = next(p for p in procs if p.returncode == 0)
    _, loser_err = next(o for p, o in zip(procs, outs, strict=True) if p.returncode == 3)
    assert "another cycle holds the lease" in loser_err
    assert f":{winner.pid} (cycle cli-" in loser_err  # the holder is named: host:pid
    # Exactly one replica per cluster was created, by exactly one CREATE each.
    for cluster in clusters:
        assert replicas(emulator, cluster) == {"r1": "25cc", "r_100cc": "100cc"}
    assert len([s for s in ddl_sent(emulator, since=since) if f'"{name}_' in s]) == 4


def test_kill_switch_audits_held_back_actions_and_changes_nothing(
    emulator: Emulator, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    before = snapshot(emulator)

    done = cli(
        "apply", "--filter-clusters", name, url=emulator.url, env={"MZ_SCHEDCTL_PAUSED": "1"}
    )

    assert done.returncode == 0, done.stderr
    assert "paused (MZ_SCHEDCTL_PAUSED is set)" in done.stdout
    after = snapshot(emulator)
    assert after["replicas"] == before["replicas"]
    assert after["mz_cluster_strategy_state"] == before["mz_cluster_strategy_state"]
    assert after["mz_cluster_strategy_leases"] == before["mz_cluster_strategy_leases"]
    assert not [s for s in ddl_sent(emulator, since=since) if f'"{name}"' in s]
    rows = audit(emulator, cid)
    assert [(r.phase, r.executed) for r in rows] == [("outcome", False)]
    assert rows[0].sql == f'CREATE CLUSTER REPLICA "{name}"."r_100cc" (SIZE = \'100cc\')'
    assert rows[0].ctx["note"] == "held back: paused by the kill switch"

    # Switched off again, the next run does the work.
    done = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stderr
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}


def test_kill_switch_before_init_still_audits(emulator: Emulator, name: str) -> None:
    """A paused first run in a schema without the tables: held back, audited, no traceback."""
    schema = f"fresh_{name}"
    emulator.execute(f"CREATE SCHEMA {schema}")
    cid = make_cluster(emulator, name, objects="index")
    printed = cli("init", "--print-sql", "--schema", schema).stdout
    emulator.execute(printed.split(";\n")[0])  # only the strategies table, by hand
    emulator.execute(
        f"INSERT INTO {schema}.mz_cluster_strategies (cluster_id, strategy_type, config)"
        " VALUES (%s, 'target_size', '{\"target_size\": \"100cc\"}')",
        (cid,),
    )

    done = cli("apply", "--schema", schema, "--filter-clusters", name, url=emulator.url,
               env={"MZ_SCHEDCTL_PAUSED": "yes"})  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert replicas(emulator, name) == {"r1": "25cc"}
    rows = emulator.execute(
        f"SELECT executed, decision_ctx ->> 'note' FROM {schema}.mz_cluster_strategy_actions"
    )
    assert rows == [(False, "held back: paused by the kill switch")]


def test_paused_api_cycle_with_either_driver(emulator: Emulator, db: Database, name: str) -> None:
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    run = run_cycle(db, only=name, paused=True)
    assert run.result["executed"] is False
    assert run.outcomes() == ["not_executed"]
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert [r.executed for r in audit(emulator, cid)] == [False]
    assert state_rows(emulator, cid) == 0


def test_the_cli_beside_an_in_process_cycle_reports_the_holder(
    emulator: Emulator, db3: Database, name: str
) -> None:
    """An Airflow cycle (in-process here) holds the lease between its tasks: a CLI apply in
    the meantime plans, applies nothing, exits 3 and names the holder; once the cycle's
    persist released the claim, the CLI applies normally."""
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    dag = cycle.CycleSettings(holder="airflow-deployment")
    assert cycle.claim_lease(db3, dag, cycle_id="dag-run-1").acquired
    signals = cycle.collect(db3, dag, filter_clusters=name)
    plan = cycle.decide(signals, cycle_id="dag-run-1", dry_run=False, filter_clusters=name)

    blocked = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert blocked.returncode == 3, blocked.stdout + blocked.stderr
    assert "another cycle holds the lease: airflow-deployment (cycle dag-run-1" in blocked.stderr
    assert "Traceback" not in blocked.stderr
    assert replicas(emulator, name) == {"r1": "25cc"}

    result = cycle.apply(plan, db3, dag)
    cycle.persist(plan, result, db3, dag)
    assert result["executed"] is True
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    emulator.advance(40)
    after = cli("apply", "--filter-clusters", name, url=emulator.url)
    assert after.returncode == 0, after.stdout + after.stderr
    assert replicas(emulator, name) == {"r_100cc": "100cc"}
    creates = [s for s in ddl_sent(emulator, since=since) if s.startswith("CREATE")]
    assert len([s for s in creates if f'"{name}"' in s]) == 1


def test_an_in_process_cycle_beside_a_running_cli_applies_nothing(
    emulator: Emulator, db3: Database, name: str
) -> None:
    """The other way round: the CLI is mid-apply (its DDL is slow), an in-process cycle
    claims, loses, names the CLI (host:pid) and applies nothing; the CLI finishes alone."""
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    since = server_now(emulator)
    emulator.inject_fault(rf'^CREATE CLUSTER REPLICA "{name}"', "delay", "2")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MZ_SCHEDCTL_PAUSED")}
    argv = [sys.executable, "-m", "mz_schedctl_provider.cli", "apply", "--database-url",
            emulator.url, "--filter-clusters", name]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        deadline = time.monotonic() + 30
        while not emulator.execute("SELECT 1 FROM mz_cluster_strategy_leases"):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        mine = cycle.CycleSettings(holder="in-process")
        claim = cycle.claim_lease(db3, mine, cycle_id="in-process-1")
        assert not claim.acquired
        assert claim.holder.endswith(f":{proc.pid}") and claim.cycle_id.startswith("cli-")
        signals = cycle.collect(db3, mine, filter_clusters=name)
        plan = cycle.decide(signals, cycle_id="in-process-1", dry_run=False, filter_clusters=name)
        lost = cycle.apply(plan, db3, mine)
        assert lost["executed"] is False
        assert f"another cycle holds the lease: {claim.holder}" in lost["reason"]
        cycle.persist(plan, lost, db3, mine)
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}
    creates = [s for s in ddl_sent(emulator, since=since) if f'"{name}"' in s]
    assert len(creates) == 1, creates
    assert emulator.execute("SELECT count(*) FROM mz_cluster_strategy_leases")[0][0] == 0
