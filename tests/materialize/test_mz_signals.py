"""The signals stage reads everything in a constant number of statements, whatever the number
of clusters: counted by the connection wrapper and by the emulator's own statement log (here
sampled at rate 1, so every statement is logged)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mzsupport import DRIVERS, add_strategy, connect, make_cluster, statement_log

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.materialize import cycle
from mz_schedctl_provider.materialize.db import Database

pytestmark = pytest.mark.usefixtures("tables")

STRATEGIES = {
    "target_size": {"target_size": "100cc"},
    "burst": {"burst_replica_size": "800cc"},
    "idle_suspend": {"idle_after_s": 600},
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """This module's own emulator, logging every statement."""
    with run_emulator(port=0, log_flush_s=0, sample_rate=1.0) as emu:
        yield emu


def add_clusters(emu: Emulator, prefix: str, first: int, last: int) -> None:
    for i in range(first, last):
        kind = ("mv", "index", "source", None)[i % 4]
        cid = make_cluster(emu, f"{prefix}{i}", objects=kind)
        for strategy, config in STRATEGIES.items():
            add_strategy(emu, cid, strategy, config)
        emu.record_activity(f"{prefix}{i}")


def measure(emu: Emulator, db: Database) -> tuple[int, int, dict[str, object]]:
    """(statements the wrapper sent, statements the emulator logged, the signals document)."""
    sent, logged = db.statements, len(statement_log(emu))
    doc = cycle.collect(db, cycle.CycleSettings())
    return db.statements - sent, len(statement_log(emu)) - logged, doc


def test_signals_cost_the_same_for_1_and_20_clusters(emulator: Emulator, name: str) -> None:
    prefix = f"{name}_"
    drivers = {driver: connect(emulator, driver) for driver in DRIVERS}
    try:
        add_clusters(emulator, prefix, 0, 1)
        one = {d: measure(emulator, db) for d, db in drivers.items()}
        add_clusters(emulator, prefix, 1, 20)
        emulator.advance(30)
        many = {d: measure(emulator, db) for d, db in drivers.items()}
    finally:
        for db in drivers.values():
            db.close()

    for driver in DRIVERS:
        (sent_one, logged_one, doc_one), (sent_many, logged_many, doc_many) = (
            one[driver],
            many[driver],
        )
        mine_one = [c for c in doc_one["clusters"] if c["name"].startswith(prefix)]  # type: ignore[attr-defined,index]
        mine_many = [c for c in doc_many["clusters"] if c["name"].startswith(prefix)]  # type: ignore[attr-defined,index]
        assert len(mine_one) == 1 and len(mine_many) == 20
        assert sent_one == sent_many, (driver, sent_one, sent_many)
        assert logged_one == logged_many == sent_one, (driver, logged_one, logged_many, sent_one)
        assert sent_one <= 15
        # The per-cluster facts are really there: replicas and activity of every cluster.
        assert all(c["replicas"] for c in mine_many)
        assert all(c["last_activity"] for c in mine_many)
