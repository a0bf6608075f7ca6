"""``mz-schedctl plan`` (a dry run) changes nothing at all: not the catalog, not a single row of
the controller's tables, and it does not even create them when they do not exist yet. The
emulator's statement log confirms that no write reached it from the controller."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from mzsupport import (
    CONTROLLER_TABLES,
    add_strategy,
    cli,
    connect,
    init_tables,
    json_docs,
    make_cluster,
    run_cycle,
    snapshot,
    statement_log,
)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|CREATE|DROP|ALTER)\b", re.I)


@pytest.fixture(scope="module")
def blank() -> Iterator[Emulator]:
    """An emulator nobody ran ``init`` on."""
    with run_emulator(port=0, log_flush_s=0) as emu:
        yield emu


def controller_writes(emu: Emulator) -> list[str]:
    return [s for s, _status, _at in statement_log(emu) if _WRITE.match(s or "")]


def test_plan_before_init_creates_no_table(blank: Emulator) -> None:
    make_cluster(blank, "untouched", objects="mv")
    before = snapshot(blank)
    assert all(before[t] is None for t in CONTROLLER_TABLES)

    done = cli("plan", "--json", url=blank.url)
    assert done.returncode == 0, done.stderr
    (plan,) = json_docs(done.stdout)
    assert plan["dry_run"] is True and plan["clusters"] == []
    text = cli("plan", url=blank.url)
    assert text.returncode == 0, text.stderr
    assert "no clusters with enabled strategies" in text.stdout
    for driver in ("psycopg", "psycopg2"):
        db = connect(blank, driver)
        try:
            run_cycle(db, dry_run=True)
        finally:
            db.close()

    assert snapshot(blank) == before
    assert controller_writes(blank) == []


def test_plan_with_only_the_strategies_table_creates_the_others_not(blank: Emulator) -> None:
    # A user who created the strategies table by hand (from the printed SQL) and wrote rows,
    # but never ran init.
    printed = cli("init", "--print-sql").stdout
    blank.execute(printed.split(";\n")[0])
    cid = make_cluster(blank, "only_rows", objects="index")
    add_strategy(blank, cid, "target_size", {"target_size": "100cc"})
    before = snapshot(blank)
    assert before["mz_cluster_strategies#count"] == 1
    assert all(before[t] is None for t in CONTROLLER_TABLES[1:])

    done = cli("plan", url=blank.url)

    assert done.returncode == 0, done.stderr
    assert 'CREATE CLUSTER REPLICA "only_rows"."r_100cc"' in done.stdout
    assert snapshot(blank) == before
    assert controller_writes(blank) == []


def test_plan_with_pending_actions_changes_nothing(emulator: Emulator, name: str) -> None:
    init_tables(emulator)
    resize = make_cluster(emulator, f"{name}_resize", objects="mv")
    emulator.advance(70)
    burst = make_cluster(emulator, f"{name}_burst", objects="mv")
    idle = make_cluster(emulator, f"{name}_idle", objects="index")
    add_strategy(emulator, resize, "target_size", {"target_size": "100cc"})
    add_strategy(emulator, burst, "burst", {"burst_replica_size": "800cc"})
    add_strategy(emulator, idle, "idle_suspend", {"idle_after_s": 60})
    # Some history in every table, so a stray write or delete would show in the counts.
    applied = cli("apply", "--filter-clusters", f"{name}_resize", url=emulator.url)
    assert applied.returncode == 0, applied.stderr
    emulator.advance(120)
    writes_before = len(controller_writes(emulator))
    before = snapshot(emulator)
    assert before["mz_cluster_strategy_actions#count"] > 0
    assert before["mz_cluster_strategy_state#count"] > 0

    done = cli("plan", "--filter-clusters", f"{name}_.*", url=emulator.url)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("DRY RUN")
    assert f'DROP CLUSTER REPLICA "{name}_resize"."r1"' in out  # r_100cc is hydrated now
    assert f'CREATE CLUSTER REPLICA "{name}_burst"."burst"' not in out  # its r1 is hydrated
    assert f'DROP CLUSTER REPLICA "{name}_idle"."r1"' in out  # idle: would suspend
    assert snapshot(emulator) == before
    assert len(controller_writes(emulator)) == writes_before
