"""The schedule strategy's windows, pure: parsing them from the config, their occurrences as
instants in an IANA time zone (the DST rules of ``resolve``), the verdict at an instant and the
text that explains it. No strategy logic: ``schedule`` decides what the verdict means for a
cluster, and states the semantics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import pendulum
from pendulum.tz.timezone import Timezone

from ..models import JsonValue

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW_KEYS = ("days", "end", "mode", "size", "start")
MAX_WINDOWS = 50
DAY_MINUTES = 24 * 60
# Occurrences are computed for local days [today - 2, today + 9]: enough for a window that
# started yesterday and crosses midnight, a pre-warm of up to a day (on a 23-hour DST day),
# and the next transition within a week.
DAYS_BEFORE, DAYS_AFTER = 2, 9
HORIZON = timedelta(days=7)
_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")

Mode = Literal["on", "off"]
State = Literal["on", "off", "outside"]
Fault = tuple[str, str]


# --- config ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One validated window: days (0 = Monday), minutes of the day, mode, optional size."""

    days: tuple[int, ...]
    start: int
    end: int  # 1..1440; not after start: crosses midnight
    mode: Mode
    size: str | None

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def describe(self) -> str:
        days = _day_ranges(self.days)
        size = f", {self.size}" if self.size else ""
        return f"{days} {_hhmm(self.start)}-{_hhmm(self.end)}, {self.mode}{size}"


@dataclass(frozen=True)
class ScheduleParams:
    """Validated schedule config."""

    timezone: str
    tz: Timezone
    prewarm_s: float
    outside: Literal["suspend", "leave"]
    windows: tuple[Window, ...]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_ranges(days: tuple[int, ...]) -> str:
    """mon-fri, sat, sun style (consecutive days joined)."""
    parts: list[str] = []
    run: list[int] = []
    for d in sorted(days):
        if run and d != run[-1] + 1:
            parts.append(_span(run))
            run = []
        run.append(d)
    if run:
        parts.append(_span(run))
    return ",".join(parts)


def _span(run: list[int]) -> str:
    if len(run) <= 2:
        return ",".join(DAY_NAMES[d] for d in run)
    return f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}"


def load_timezone(name: str) -> Timezone | None:
    """The IANA zone of that name (pendulum), or None when there is none."""
    try:
        tz = pendulum.timezone(name)
    except (ValueError, OSError, TypeError):  # InvalidTimezone is a ValueError
        return None
    return tz if isinstance(tz, Timezone) else None


def shown(value: JsonValue) -> str:
    """A config value as a fault message names it: a string quoted, anything else its type."""
    return repr(value) if isinstance(value, str) else type(value).__name__


def parse_windows(raw: JsonValue) -> tuple[tuple[Window, ...], Fault | None]:
    """The windows, or the first fault (path, why). Sizes are checked by check_windows."""
    if not isinstance(raw, list) or not raw:
        return (), ("windows", "must be a non-empty list of windows")
    if len(raw) > MAX_WINDOWS:
        return (), ("windows", f"has {len(raw)} windows, at most {MAX_WINDOWS}")
    out: list[Window] = []
    seen: dict[tuple[int, int, int, str], int] = {}
    for i, item in enumerate(raw):
        window, fault = parse_window(item, f"windows[{i}]")
        if fault is not None:
            return (), fault
        assert window is not None
        for d in window.days:
            key = (d, window.start, window.end, window.mode)
            if key in seen:
                return (), (
                    f"windows[{i}]",
                    f"duplicates windows[{seen[key]}] on {DAY_NAMES[d]} (same start, end and "
                    "mode): the later one could never take effect",
                )
            seen[key] = i
        out.append(window)
    return tuple(out), None


def parse_window(item: JsonValue, path: str) -> tuple[Window | None, Fault | None]:
    if not isinstance(item, dict):
        return None, (path, f"must be an object with {', '.join(WINDOW_KEYS)}")
    for key in sorted(item):
        if key not in WINDOW_KEYS:
            return None, (f"{path}.{key}", f"unknown key (accepted: {', '.join(WINDOW_KEYS)})")
    for key in ("days", "start", "end"):
        if key not in item:
            return None, (f"{path}.{key}", "is required")
    days, fault = parse_days(item["days"], f"{path}.days")
    if fault is not None:
        return None, fault
    start, end = item["start"], item["end"]
    if not isinstance(start, str) or not _HHMM.fullmatch(start) or start == "24:00":
        return None, (f"{path}.start", f'must be "HH:MM" from 00:00 to 23:59, not {shown(start)}')
    if not isinstance(end, str) or not _HHMM.fullmatch(end):
        return None, (f"{path}.end", f'must be "HH:MM" from 00:00 to 24:00, not {shown(end)}')
    s, e = _minutes(start), _minutes(end)
    if s == e:
        return None, (
            f"{path}.end",
            f'zero-length window (start and end are both {start}); a whole day is "00:00" to '
            '"24:00"',
        )
    mode = item.get("mode", "on")
    if mode not in ("on", "off"):
        return None, (f"{path}.mode", f'must be "on" or "off", not {shown(mode)}')
    size = item.get("size")
    if size is not None and not isinstance(size, str):
        return None, (f"{path}.size", f"must be a size name (a string), not {shown(size)}")
    if size is not None and mode == "off":
        return None, (f"{path}.size", 'applies only to mode "on" windows')
    return Window(days=days, start=s, end=e, mode="on" if mode == "on" else "off", size=size), None


def parse_days(raw: JsonValue, path: str) -> tuple[tuple[int, ...], Fault | None]:
    allowed = ", ".join(DAY_NAMES)
    if not isinstance(raw, list) or not raw:
        return (), (path, f"must be a non-empty list of day names ({allowed})")
    days: list[int] = []
    for value in raw:
        name = value.lower() if isinstance(value, str) else None
        if name not in DAY_NAMES:
            return (), (path, f"unknown day {shown(value)} (use {allowed})")
        day = DAY_NAMES.index(name)
        if day in days:
            return (), (path, f"lists {name!r} twice")
        days.append(day)
    return tuple(days), None


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


# --- time --------------------------------------------------------------------------------


def resolve(tz: Timezone, day: date, minute: int) -> pendulum.DateTime:
    """The first instant (UTC) whose wall time in tz is at or after ``day`` + ``minute``.

    Existing times: their first occurrence (fold 0). Times in a spring-forward gap: the
    instant the gap ends, found by bisection over pendulum's conversions.
    """
    if minute >= DAY_MINUTES:
        day, minute = day + timedelta(days=1), minute - DAY_MINUTES
    hour, mins = divmod(minute, 60)
    wanted = datetime(day.year, day.month, day.day, hour, mins)
    first = pendulum.datetime(day.year, day.month, day.day, hour, mins, tz=tz, fold=0)
    if first.naive() == wanted:
        return first.in_tz("UTC")
    # In a gap: fold 0 reads it with the old offset (before the gap), fold 1 with the new.
    later = pendulum.datetime(day.year, day.month, day.day, hour, mins, tz=tz, fold=1)
    lo, hi = int(min(first, later).timestamp()), int(max(first, later).timestamp())
    while hi - lo > 1:  # invariant: wall(lo) < wanted <= wall(hi)
        mid = (lo + hi) // 2
        if pendulum.from_timestamp(mid, tz=tz).naive() >= wanted:
            hi = mid
        else:
            lo = mid
    return pendulum.from_timestamp(hi, tz="UTC")


@dataclass(frozen=True)
class Occurrence:
    """One window on one local day, as instants (UTC)."""

    index: int
    window: Window
    day: date
    opens: pendulum.DateTime
    closes: pendulum.DateTime
    # When it starts to count: opens minus prewarm_s for "on" windows.
    begins: pendulum.DateTime

    def active(self, t: datetime) -> bool:
        return self.begins <= t < self.closes


def occurrences(params: ScheduleParams, today: date) -> list[Occurrence]:
    out: list[Occurrence] = []
    prewarm = timedelta(seconds=params.prewarm_s)
    for offset in range(-DAYS_BEFORE, DAYS_AFTER + 1):
        day = today + timedelta(days=offset)
        for i, w in enumerate(params.windows):
            if day.weekday() not in w.days:
                continue
            opens = resolve(params.tz, day, w.start)
            end_minute = w.end + DAY_MINUTES if w.crosses_midnight else w.end
            closes = resolve(params.tz, day, end_minute)
            if closes <= opens:
                continue  # swallowed by a DST gap (e.g. 02:00-02:30 on a spring-forward night)
            begins = opens - prewarm if w.mode == "on" else opens
            out.append(Occurrence(i, w, day, opens, closes, begins))
    return out


@dataclass(frozen=True)
class Verdict:
    """What the windows say at one instant, and which occurrence governs."""

    state: State
    at: datetime
    occurrence: Occurrence | None = None

    @property
    def key(self) -> tuple[State, int | None]:
        return self.state, (self.occurrence.index if self.occurrence else None)

    @property
    def prewarm(self) -> bool:
        o = self.occurrence
        return self.state == "on" and o is not None and self.at < o.opens


def verdict_at(occs: list[Occurrence], t: datetime) -> Verdict:
    """on beats off; among active windows of a mode the first listed governs."""
    for mode in ("on", "off"):
        active = [o for o in occs if o.window.mode == mode and o.active(t)]
        if active:
            best = min(active, key=lambda o: (o.index, o.opens))
            return Verdict("on" if mode == "on" else "off", t, best)
    return Verdict("outside", t)


@dataclass(frozen=True)
class Evaluation:
    """The verdict now, the next change within a week, and the texts for the reasons."""

    verdict: Verdict
    next_change: Verdict | None
    where: str


def evaluate(params: ScheduleParams, now: datetime) -> Evaluation:
    """The schedule's verdict at ``now`` (server time), with its reason text."""
    t = pendulum.instance(now).in_tz("UTC")
    today = t.in_tz(params.tz).date()
    occs = occurrences(params, today)
    current = verdict_at(occs, t)
    boundaries = sorted(
        {b for o in occs for b in (o.begins, o.opens, o.closes) if t < b <= t + HORIZON}
    )
    nxt = next((v for v in (verdict_at(occs, b) for b in boundaries) if v.key != current.key), None)
    return Evaluation(current, nxt, describe(params, t, current, nxt))


def local(params: ScheduleParams, t: datetime, now: datetime) -> str:
    """A local time a reader cannot misplace: the date unless it is today's (a weekday alone
    may be a week ahead), and the UTC offset with its abbreviation (across a daylight-saving
    change the same wall-clock time is another instant), e.g. "Sun 2026-03-29 03:05 CEST
    (+02:00)"."""
    lt = pendulum.instance(t).in_tz(params.tz)
    today = pendulum.instance(now).in_tz(params.tz).date()
    day = lt.format("ddd") if lt.date() == today else lt.format("ddd YYYY-MM-DD")
    abbr = lt.format("zz")
    # Zones without an abbreviation spell the offset ("-03"): shown once, in the parentheses.
    named = f" {abbr}" if abbr and abbr[0] not in "+-" else ""
    return f"{day} {lt.format('HH:mm')}{named} ({lt.format('Z')})"


def local_hm(params: ScheduleParams, t: datetime) -> str:
    return pendulum.instance(t).in_tz(params.tz).format("HH:mm")


def describe(params: ScheduleParams, now: datetime, cur: Verdict, nxt: Verdict | None) -> str:
    """E.g. "outside windows at Sat 10:00 CET (+01:00) Europe/Berlin (next opens Mon
    2026-11-30 08:00 CET (+01:00), pre-warm from 07:45)"."""
    at = f"{local(params, now, now)} {params.timezone}"
    o = cur.occurrence
    if o is None:
        head = f"outside windows at {at}"
    elif cur.prewarm:
        head = (
            f"pre-warm for windows[{o.index}] ({o.window.describe()}) at {at}, "
            f"opens {local(params, o.opens, now)}"
        )
    else:
        head = f"inside windows[{o.index}] ({o.window.describe()}) at {at}"
    return f"{head} ({change_text(params, nxt, now)})"


def change_text(params: ScheduleParams, nxt: Verdict | None, now: datetime) -> str:
    """The next change of verdict within the horizon, as text."""
    if nxt is None:
        return f"no change within {HORIZON.days} days"
    o = nxt.occurrence
    if o is None:
        return f"closes {local(params, nxt.at, now)}"
    opens = local(params, o.opens, now)
    if nxt.state == "on" and nxt.at < o.opens:
        return f"next opens {opens}, pre-warm from {local_hm(params, nxt.at)}"
    if nxt.state == "on" and nxt.at == o.opens:
        return f"next opens {opens}"
    return f"then windows[{o.index}] ({o.window.mode}) from {local(params, nxt.at, now)}"
