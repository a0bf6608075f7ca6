"""Cooldowns against the emulator: no flap. With config, activity and catalog unchanged over
many cycles (2 minutes apart, a cooldown on every strategy), at most one suspend and no other
DDL, counted in the emulator's statement log; a query on the suspended cluster still resumes
it while idle_suspend's cooldown runs."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from mzsupport import add_strategy, make_cluster, q, replicas, run_cycle, statement_log

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")

COOLDOWN = {"cooldown_s": 3600}
CYCLES = 40  # 80 minutes: the suspend, its whole cooldown, and past its end


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """Statement logging at rate 1: the log is the record of every DDL that reached the
    emulator (at Cloud's 0.99 it misses one statement in a hundred)."""
    with run_emulator(port=0, log_flush_s=0, sample_rate=1.0) as emu:
        yield emu


def ddl_on(emu: Emulator, name: str) -> list[str]:
    """Replica DDL and ALTER CLUSTER on this cluster that reached the emulator."""
    cluster = re.escape(q(name))
    pattern = re.compile(
        rf"\s*((CREATE|DROP)\s+CLUSTER\s+REPLICA\s+{cluster}\.|ALTER\s+CLUSTER\s+{cluster}\s)",
        re.I,
    )
    return [s for s, _status, _at in statement_log(emu, application=None) if pattern.match(s)]


def cycles(emu: Emulator, db: Database, name: str, n: int) -> None:
    for _ in range(n):
        emu.advance(120)
        run = run_cycle(db, only=name)
        assert run.outcome.problems == [] and run.cluster(name)["errors"] == []


def test_no_flap_target_size_burst_idle_suspend_all_in_cooldown(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc", **COOLDOWN})
    add_strategy(
        emulator, cid, "burst", {"burst_replica_size": "400cc", "max_burst_s": 600, **COOLDOWN}
    )
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300, **COOLDOWN})
    run_cycle(db, only=name)
    cycles(emulator, db, name, CYCLES)
    assert ddl_on(emulator, name) == [f"DROP CLUSTER REPLICA {q(name)}.{q('r1')}"]
    assert replicas(emulator, name) == {}


def test_no_flap_on_a_managed_cluster(emulator: Emulator, db: Database, name: str) -> None:
    emulator.execute(f"CREATE CLUSTER {q(name)} (SIZE = '25cc', REPLICATION FACTOR = 1)")
    emulator.execute(f"CREATE TABLE {q(f't_{name}')} (a int)")
    emulator.execute(f"CREATE INDEX IN CLUSTER {q(name)} ON {q(f't_{name}')} (a)")
    cid = str(
        emulator.execute("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (name,))[0][0]
    )
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc", **COOLDOWN})
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300, **COOLDOWN})
    run_cycle(db, only=name)
    cycles(emulator, db, name, CYCLES)
    assert ddl_on(emulator, name) == [f"ALTER CLUSTER {q(name)} SET (REPLICATION FACTOR = 0)"]


def test_activity_resumes_while_idle_suspends_cooldown_runs(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "25cc", **COOLDOWN})
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300, **COOLDOWN})
    run_cycle(db, only=name)
    cycles(emulator, db, name, 4)
    assert replicas(emulator, name) == {}, "suspended after idle_after_s"
    emulator.advance(120)
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error, match="has no replicas available"),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert list(replicas(emulator, name).values()) == ["25cc"], "resumed within the cooldown"
    assert any("idle_suspend: in cooldown until" in n for n in run.cluster(name)["notes"])
