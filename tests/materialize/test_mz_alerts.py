"""One alert per problem, remembered in the controller's alerts table (issue 17, part 4):
persist over real cycles against the emulator, on the emulator's (the server's) clock, through
both drivers."""

from __future__ import annotations

from typing import Any

import pytest
from mzsupport import add_strategy, cli, make_cluster, run_cycle

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import ALERTS

pytestmark = pytest.mark.usefixtures("tables")
BAD = {"burst_replica_size": "no_such_size"}


def alert_rows(emu: Emulator, cid: str) -> list[tuple[Any, ...]]:
    return emu.execute(
        f"SELECT alert_key, is_open FROM {ALERTS} WHERE cluster_id = %s ORDER BY recorded_at",
        (cid,),
    )


def alerting(db: Database, name: str, **kwargs: Any) -> bool:
    """One cycle of ``name``; whether its problem alerted (it is always listed)."""
    outcome = run_cycle(db, only=name, **kwargs).outcome
    assert len(outcome.problems) == 1 and "no_such_size" in outcome.problems[0]
    return bool(outcome.alerting)


def test_a_bad_row_alerts_once_per_interval_and_lost_memory_costs_one_alert(
    emulator: Emulator, db: Database, name: str
) -> None:
    """Every 2 minutes for 3 hours, with wipe-state at 30 min and the alert row lost at 90 min:
    alerts at 0, 60, 90 (the lost row: one extra) and 150 min (60 after the extra one)."""
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "burst", BAD)
    alerted = []
    for minute in range(0, 180, 2):
        if minute == 30:
            cycle.wipe_state(db, cycle.CycleSettings())
        if minute == 90:
            emulator.execute(f"DELETE FROM {ALERTS} WHERE cluster_id = %s", (cid,))
        if alerting(db, name):
            alerted.append(minute)
        emulator.advance(120)
    assert alerted == [0, 60, 90, 150]
    # One row per key: each new alert supersedes the last.
    assert len(alert_rows(emulator, cid)) == 1


def test_a_fixed_row_closes_its_problem_and_the_next_mistake_alerts_at_once(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "burst", BAD)
    assert alerting(db, name)
    emulator.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = %s", (cid,))
    emulator.advance(120)
    assert run_cycle(db, only=name).outcome.problems == []
    assert [open_ for _key, open_ in alert_rows(emulator, cid)] == [False]  # closed
    add_strategy(emulator, cid, "burst", BAD)
    emulator.advance(120)
    assert alerting(db, name)  # 4 minutes after the first alert, but a new occurrence


def test_an_install_without_the_alerts_table_gets_it_on_the_first_alert(
    emulator: Emulator, db: Database, name: str
) -> None:
    """Tables made by an older version (or the predecessor) lack the alerts table: the lease
    claim succeeds, so bootstrap never ran; the first alert creates it."""
    emulator.execute(f"DROP TABLE IF EXISTS {ALERTS}")
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "burst", BAD)
    assert alerting(db, name)
    assert len(alert_rows(emulator, cid)) == 1
    emulator.advance(60)
    assert not alerting(db, name)


def test_a_dry_run_reads_what_was_alerted_and_records_nothing(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "burst", BAD)
    assert alerting(db, name, dry_run=True)
    assert alert_rows(emulator, cid) == []
    assert alerting(db, name)
    assert not alerting(db, name, dry_run=True)  # alerted a moment ago by the real cycle


def test_the_cli_exits_1_every_time_and_records_no_alert(emulator: Emulator, name: str) -> None:
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "burst", BAD)
    for _ in range(2):
        done = cli("apply", "--filter-clusters", name, url=emulator.url)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "no_such_size" in done.stderr
    assert alert_rows(emulator, cid) == []
