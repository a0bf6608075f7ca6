"""A synthetic recorded week for the backtest (engine, emulator, CLI and browser tests).

W is the window start (a Monday 00:00); times are offsets from W; every cluster is unmanaged,
has r1 live since W - 1 h (recorded, until its drop) and one idle_suspend row; statements
last 1 s unless said:

bt_business (100cc, idle_after_s 3600): weekdays (d = 0..4) queries at 09:00:30 and every
  hour on the hour from 09:00 to 17:00; no objects.
bt_nightly (50cc, idle_after_s 1800): every day (d = 0..6) one batch 02:00:00 .. 02:20:00.
bt_idle (25cc, idle_after_s 3600): r1 dropped (by a person) Saturday 00:00; one query
  refused (no replica) Saturday 10:00 (d = 5).
bt_sources (25cc, idle_after_s 3600): hosts a source; no statements.
bt_hydrate (25cc, idle_after_s 600): hosts an index that hydrates in 30 s on 25cc (the
  recorded hydration time); one query Tuesday (d = 1) 09:00.

The figures it must give are in the tests' docstrings (worked out by hand there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

DAY = timedelta(days=1)
CLUSTERS = ("bt_business", "bt_hydrate", "bt_idle", "bt_nightly", "bt_sources")
SIZES = {
    "bt_business": "100cc", "bt_hydrate": "25cc", "bt_nightly": "50cc", "bt_idle": "25cc",
    "bt_sources": "25cc",
}  # fmt: skip
IDLE_AFTER = {
    "bt_business": 3600, "bt_hydrate": 600, "bt_nightly": 1800, "bt_idle": 3600,
    "bt_sources": 3600,
}  # fmt: skip
# bt_hydrate's index hydrates in this long on its 25cc replica (recorded by the emulator).
HYDRATION_S = 30


@dataclass(frozen=True)
class Query:
    cluster: str
    began: timedelta
    seconds: float = 1.0
    refused: bool = False


def hm(day: int, hour: int, minute: int, second: int = 0) -> timedelta:
    return day * DAY + timedelta(hours=hour, minutes=minute, seconds=second)


def queries() -> list[Query]:
    out: list[Query] = []
    for d in range(5):
        out.append(Query("bt_business", hm(d, 9, 0, 30)))
        for h in range(9, 18):
            out.append(Query("bt_business", hm(d, h, 0)))
    for d in range(7):
        out.append(Query("bt_nightly", hm(d, 2, 0), seconds=1200.0))
    out.append(Query("bt_idle", hm(5, 10, 0), seconds=0.0, refused=True))
    out.append(Query("bt_hydrate", hm(1, 9, 0)))
    return out


def drops() -> dict[str, timedelta | None]:
    return {"bt_idle": hm(5, 0, 0)}


def config(cluster: str) -> dict[str, Any]:
    return {"idle_after_s": IDLE_AFTER[cluster], "resume": True}


def window_start(now: datetime) -> datetime:
    """The Monday 00:00 UTC at least 8 days before ``now`` (the week ends before now)."""
    day = (now - timedelta(days=8)).astimezone(timezone.utc)
    monday = day - timedelta(days=day.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


def build_on_emulator(emu: Any) -> datetime:
    """The clusters (and the source) now, then the clock moved 9 days on and the week
    back-dated through the emulator's control functions; returns W."""
    for name in CLUSTERS:
        emu.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    emu.execute("CREATE SOURCE bt_counter IN CLUSTER bt_sources FROM LOAD GENERATOR COUNTER")
    emu.execute("CREATE TABLE bt_t (a int)")
    emu.execute("CREATE INDEX bt_t_idx IN CLUSTER bt_hydrate ON bt_t (a)")
    emu.execute(
        "SELECT mz_emulator.set_hydration_delay('bt_hydrate', make_interval(secs => %s))",
        (HYDRATION_S,),
    )
    created = emu.execute("SELECT now()")[0][0]
    emu.advance(20 * 86400)
    start = window_start(emu.execute("SELECT now()")[0][0])
    assert start - timedelta(hours=1) > created
    for name in CLUSTERS:
        drop = drops().get(name)
        emu.backdate_replica(
            name,
            "r1",
            SIZES[name],
            start - timedelta(hours=1),
            None if drop is None else start + drop,
        )
    for q in queries():
        at = start + q.began
        if q.refused:
            emu.backdate_refused_query(q.cluster, at)
        else:
            emu.backdate_statement(q.cluster, at, at + timedelta(seconds=q.seconds))
    return start
