"""The CLI when things go wrong around the cycle: the kill switch on an install without the
controller's tables, the one reading of the kill switch's value, and a persist that fails after
DDL ran (the plan and what ran are still printed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mzsupport import add_strategy, cli, init_tables, make_cluster, replicas

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime.flags import PAUSED_ENV, kill_switch_on, parse_flag


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    with run_emulator(port=0, log_flush_s=0) as emu:
        yield emu


def test_kill_switch_on_an_install_without_tables_plans_and_exits_0(fresh: Emulator) -> None:
    """Persist used to release a lease no table holds: exit 1 and no plan, every run."""
    make_cluster(fresh, "k")
    done = cli("apply", url=fresh.url, env={PAUSED_ENV: "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("APPLY plan for cycle")
    assert "nothing executed: paused by the kill switch" in done.stdout


@pytest.mark.parametrize(
    ("value", "paused"),
    [
        (None, False), ("", False), ("  ", False), ("0", False), ("false", False),
        ("Off", False), ("no", False), ("none", False),
        ("1", True), ("true", True), ("YES", True), ("on", True),
        ("ture", True), ("paused", True), ("2", True),
    ],
)  # fmt: skip
def test_one_reading_of_the_kill_switch_erring_on_paused(value: str | None, paused: bool) -> None:
    """The Airflow Variable and MZ_SCHEDCTL_PAUSED are read by this one function (the
    operators and the CLI both call it): empty means not set, a typo means paused."""
    assert kill_switch_on(value) is paused


def test_other_flags_name_a_value_that_is_neither() -> None:
    assert parse_flag("TRUE") is True and parse_flag("off") is False and parse_flag("") is None
    with pytest.raises(ValueError, match="'ture' is neither a true nor a false word"):
        parse_flag("ture")


@pytest.mark.parametrize(("value", "held_back"), [("ture", True), ("", False), ("off", False)])
def test_the_cli_reads_the_kill_switch_that_way(
    emulator: Emulator, name: str, value: str, held_back: bool
) -> None:
    init_tables(emulator)
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    done = cli("apply", "--filter-clusters", name, url=emulator.url, env={PAUSED_ENV: value})
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("paused by the kill switch" in done.stdout) is held_back
    assert ("r_50cc" in replicas(emulator, name)) is not held_back
    emulator.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = %s", (cid,))


def test_a_failed_persist_still_shows_the_plan_and_what_ran(emulator: Emulator, name: str) -> None:
    init_tables(emulator)
    cid = make_cluster(emulator, name)
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    emulator.inject_fault(r"^\s*INSERT INTO .*mz_cluster_strategy_state", "error", "disk full")
    try:
        done = cli("apply", "--filter-clusters", name, url=emulator.url)
    finally:
        emulator.execute("SELECT mz_emulator.clear_faults()")
        emulator.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = %s", (cid,))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "disk full" in done.stderr
    row = next(ln.split() for ln in done.stdout.splitlines() if "create_replica" in ln)
    assert row[:6] == [name, "create_replica", "r_50cc", "50cc", "+0.5", "succeeded"], row
    assert "r_50cc" in replicas(emulator, name)
