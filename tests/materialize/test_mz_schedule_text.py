"""The schedule's reason text against the emulator (defect 14): a window that opens on another
day reads with its local date and UTC offset ("next opens Mon 2026-12-07 08:00 CET (+01:00)"),
never a bare weekday that may be a week ahead; the plan and the CLI say the same."""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from mzsupport import add_strategy, cli, make_cluster, run_cycle, server_now

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def test_next_opening_on_another_day_shows_its_date_and_offset(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(70)
    # Six local days ahead: the weekday alone would read as this week's.
    today = pendulum.instance(server_now(emulator)).in_tz("Europe/Berlin")
    opens = (today + timedelta(days=6)).replace(hour=8, minute=0, second=0, microsecond=0)
    window = {"days": [DAYS[opens.weekday()]], "start": "08:00", "end": "09:00"}
    add_strategy(
        emulator,
        cid,
        "schedule",
        {"timezone": "Europe/Berlin", "windows": [window], "outside": "leave"},
    )
    # Computed here independently: abbreviation and offset of that instant in Berlin.
    expected = (
        f"next opens {opens.format('ddd YYYY-MM-DD')} 08:00 {opens.tzname()} ({opens.format('Z')})"
    )

    run = run_cycle(db, only=name)

    notes = run.cluster(name)["notes"]
    assert any(expected in n for n in notes), notes
    done = cli("plan", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert expected in done.stdout + done.stderr
