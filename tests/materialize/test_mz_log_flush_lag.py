"""Late statement-log rows (defect 15), on the emulator with Materialize's flush lag on
(log_flush_s=5: the statement log is written every 5 s, as Materialize does).

A query made just before a cycle's now() is not in the log yet, so that cycle suspends the
cluster; the row appears at the next flush with a began_at before suspended_at. The cluster must
still resume on it (behaviour.md "Liveness": a cluster serves again after activity)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from mzsupport import (
    add_strategy,
    connect,
    drop_strategies,
    init_tables,
    make_cluster,
    replicas,
    run_cycle,
    server_now,
)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime.cycle import CycleSettings

FLUSH_S = 5.0


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with run_emulator(port=0, sample_rate=1.0, log_flush_s=FLUSH_S) as emulator:
        init_tables(emulator)
        yield emulator
        drop_strategies(emulator)


def _query_just_after_a_flush(emu: Emulator, name: str) -> Any:
    """Move the emulated clock just past a flush tick, then query the cluster: the row stays
    unwritten until the next tick, FLUSH_S later. Returns the query's time."""
    epoch = server_now(emu).timestamp()
    emu.advance(math.ceil(epoch / FLUSH_S) * FLUSH_S - epoch + 0.05)
    with psycopg.connect(emu.url, autocommit=True, application_name="analyst") as user:
        user.execute(f"SET cluster = {name}")
        user.execute(f"SELECT a FROM t_{name}").fetchall()
    return server_now(emu)


def _logged(emu: Emulator) -> int:
    rows = emu.execute(
        "SELECT count(*) FROM mz_internal.mz_statement_execution_history_redacted"
        " WHERE application_name = 'analyst' AND cluster_name = 'lagged'"
    )
    return int(rows[0][0])


def _suspend_then_late_row(emu: Emulator, driver: str, settings: CycleSettings) -> Any:
    cid = make_cluster(emu, "lagged", objects="index")
    add_strategy(emu, cid, "idle_suspend", {"idle_after_s": 60})
    emu.advance(600)
    _query_just_after_a_flush(emu, "lagged")
    assert _logged(emu) == 0  # not flushed yet: the cycle cannot see it
    db = connect(emu, driver)
    try:
        first = run_cycle(db, only="lagged", settings=settings)
        assert [(a["kind"], a["codes"]) for a in first.actions(status="planned")] == [
            ("drop_replica", ["idle"])
        ], first.plan
        assert first.outcomes() == ["succeeded"]
        assert replicas(emu, "lagged") == {}
        emu.advance(2 * FLUSH_S)  # the row is flushed now, its began_at before suspended_at
        assert _logged(emu) >= 1
        return run_cycle(db, only="lagged", settings=settings)
    finally:
        db.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_late_row_of_a_query_just_before_the_suspend_resumes(emu: Emulator, driver: str) -> None:
    second = _suspend_then_late_row(emu, driver, CycleSettings())
    assert [(a["kind"], a["replica_name"], a["codes"]) for a in second.actions()] == [
        ("create_replica", "r1", ["resume_remembered"])
    ], second.plan
    assert second.outcomes() == ["succeeded"]
    assert replicas(emu, "lagged") == {"r1": "25cc"}
    notes = second.cluster("lagged")["notes"]
    assert any("after suspend" in n for n in notes), notes


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_the_old_rule_never_resumes_on_the_late_row(emu: Emulator, driver: str) -> None:
    # log_flush_lag_s=0 is the rule before the fix (activity after suspended_at, idle to now):
    # the same story leaves the cluster suspended although it was used just before.
    second = _suspend_then_late_row(emu, driver, CycleSettings(log_flush_lag_s=0.0))
    assert second.actions() == [], second.plan
    assert replicas(emu, "lagged") == {}
