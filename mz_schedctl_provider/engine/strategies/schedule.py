"""schedule (priority 4): time windows by weekday and time of day in an IANA time zone.

Config::

    {"timezone": "Europe/Berlin", "prewarm_s": 900, "outside": "suspend",
     "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                  "start": "08:00", "end": "19:00", "mode": "on", "size": "200cc"}]}

Semantics (the decision is a pure function of the server's ``now`` and the config):

- A window occurs on each listed day (the day it *starts*, in ``timezone``): from ``start``
  (inclusive) to ``end`` (exclusive). An ``end`` not after ``start`` crosses midnight and ends
  on the next day; ``"24:00"`` is the end of the day (``"00:00"``-``"24:00"`` is a whole day).
- Local times are resolved as "the first instant whose local wall time is at or after it":
  a time that does not exist (spring forward) means the next instant that does (02:30 on a
  02:00->03:00 night is 03:00), a repeated one (fall back) means its first occurrence. A window
  that a gap swallows whole (02:00-02:30 that night) does not occur, pre-warm included.
- ``mode: "on"`` (keep-on, the default): from ``prewarm_s`` before the window opens until it
  closes the cluster must have replicas: the window's ``size`` (a zero-downtime resize through
  the usual rails), else what earlier strategies want (undoing idle_suspend's suspend), else
  the replica set remembered by this strategy.
- ``mode: "off"`` (force-off): suspend, even if other strategies want replicas.
- Outside every window: suspend (``outside: "suspend"``, the default) or leave the decision
  to the other strategies (``outside: "leave"``).
- Precedence: an ``on`` window (its pre-warm included) beats an ``off`` window; among several
  active windows of the same mode the first listed governs (its size).
- A suspend by this strategy is "empty on purpose" (the safety rail lets the last hydrated
  replica go); keep-on never is. The replica set seen last is remembered in this strategy's
  own state, so a schedule suspend is resumed with the same replicas.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

import pendulum
from pendulum.tz.timezone import Timezone

from ..config import KeySpec, Values, check_size
from ..desired import Desired, Removal
from ..facts import ClusterContext
from ..managed import want_size
from ..models import Finding, JsonObject, JsonValue, Size
from .base import StrategyResult, StrategySpec
from .converge import converge_to_one
from .remembered import FACTOR_KEY, REMEMBERED_KEY, RememberedReplicas, load_factor

NAME = "schedule"
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW_KEYS = ("days", "end", "mode", "size", "start")
MAX_WINDOWS = 50
MAX_PREWARM_S = 24 * 3600
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


def check_timezone(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    if not isinstance(value, str) or not value:
        return "timezone", "must be an IANA time zone name such as 'Europe/Berlin'"
    if "\x00" in value or load_timezone(value) is None:
        return "timezone", f"unknown time zone {value!r} (an IANA name such as 'Europe/Berlin')"
    return None


def check_outside(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    if value not in ("suspend", "leave"):
        return "outside", f'must be "suspend" or "leave", not {_show(value)}'
    return None


def check_prewarm(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    # The "duration" kind already refused non-numbers and negatives.
    if isinstance(value, int | float) and value > MAX_PREWARM_S:
        return "prewarm_s", f"is too large (got {value} seconds, at most {MAX_PREWARM_S}: a day)"
    return None


def check_cooldown(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    if isinstance(value, int | float) and value != 0:
        return (
            "cooldown_s",
            "must be 0 for schedule: a strategy in cooldown is not consulted, so the other "
            "strategies would undo the window until it ends (the schedule is a function of time)",
        )
    return None


def check_windows(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    windows, fault = parse_windows(value)
    if fault is not None:
        return fault
    for i, w in enumerate(windows):
        if w.size is not None:
            ok, why = check_size(value=w.size, sizes=sizes)
            if not ok:
                return f"windows[{i}].size", why
    return None


def _show(value: JsonValue) -> str:
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
        return None, (f"{path}.start", f'must be "HH:MM" from 00:00 to 23:59, not {_show(start)}')
    if not isinstance(end, str) or not _HHMM.fullmatch(end):
        return None, (f"{path}.end", f'must be "HH:MM" from 00:00 to 24:00, not {_show(end)}')
    s, e = _minutes(start), _minutes(end)
    if s == e:
        return None, (
            f"{path}.end",
            f'zero-length window (start and end are both {start}); a whole day is "00:00" to '
            '"24:00"',
        )
    mode = item.get("mode", "on")
    if mode not in ("on", "off"):
        return None, (f"{path}.mode", f'must be "on" or "off", not {_show(mode)}')
    size = item.get("size")
    if size is not None and not isinstance(size, str):
        return None, (f"{path}.size", f"must be a size name (a string), not {_show(size)}")
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
            return (), (path, f"unknown day {_show(value)} (use {allowed})")
        day = DAY_NAMES.index(name)
        if day in days:
            return (), (path, f"lists {name!r} twice")
        days.append(day)
    return tuple(days), None


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def build(values: Values) -> ScheduleParams:
    name = values.required_text("timezone")
    tz = load_timezone(name)
    windows, fault = parse_windows(values.values.get("windows"))
    if tz is None or fault is not None:  # validation guarantees both; this guards misuse
        raise ValueError(f"unvalidated schedule config: {fault or name}")
    return ScheduleParams(
        timezone=name,
        tz=tz,
        prewarm_s=values.number("prewarm_s") or 0.0,
        outside="leave" if values.text("outside") == "leave" else "suspend",
        windows=windows,
    )


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


def local(params: ScheduleParams, t: datetime) -> str:
    return f"{pendulum.instance(t).in_tz(params.tz).format('ddd HH:mm')} {params.timezone}"


def local_hm(params: ScheduleParams, t: datetime) -> str:
    return pendulum.instance(t).in_tz(params.tz).format("HH:mm")


def describe(params: ScheduleParams, now: datetime, cur: Verdict, nxt: Verdict | None) -> str:
    """E.g. "outside windows at Sat 10:00 Europe/Berlin (next opens Mon 08:00 Europe/Berlin,
    pre-warm from 07:45)"."""
    at = local(params, now)
    o = cur.occurrence
    if o is None:
        head = f"outside windows at {at}"
    elif cur.prewarm:
        head = (
            f"pre-warm for windows[{o.index}] ({o.window.describe()}) at {at}, "
            f"opens {local(params, o.opens)}"
        )
    else:
        head = f"inside windows[{o.index}] ({o.window.describe()}) at {at}"
    return f"{head} ({change_text(params, nxt)})"


def change_text(params: ScheduleParams, nxt: Verdict | None) -> str:
    """The next change of verdict within the horizon, as text."""
    if nxt is None:
        return f"no change within {HORIZON.days} days"
    o = nxt.occurrence
    if o is None:
        return f"closes {local(params, nxt.at)}"
    if nxt.state == "on" and nxt.at < o.opens:
        return f"next opens {local(params, o.opens)}, pre-warm from {local_hm(params, nxt.at)}"
    if nxt.state == "on" and nxt.at == o.opens:
        return f"next opens {local(params, o.opens)}"
    return f"then windows[{o.index}] ({o.window.mode}) from {local(params, nxt.at)}"


# --- state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleState:
    """Own state: the replica set seen last, to resume after a suspend (and, for a managed
    cluster, its replication factor seen last)."""

    remembered: RememberedReplicas | None = None
    replication_factor: int | None = None

    @classmethod
    def load(cls, raw: JsonObject) -> ScheduleState:
        remembered = RememberedReplicas.load(raw.get(REMEMBERED_KEY))
        return cls(
            remembered=remembered if remembered is not None and remembered.replicas else None,
            replication_factor=load_factor(raw.get(FACTOR_KEY)),
        )

    def dump(self) -> JsonObject:
        out: JsonObject = {}
        if self.remembered is not None and self.remembered.replicas:
            out[REMEMBERED_KEY] = self.remembered.dump()
        if self.replication_factor is not None:
            out[FACTOR_KEY] = self.replication_factor
        return out


def remember(st: ScheduleState, desired: Desired, ctx: ClusterContext) -> ScheduleState:
    """The replicas not on their way out (all if every one is), else what was remembered."""
    c = ctx.cluster
    factor = c.current_replication_factor if c.managed else 0
    seen = RememberedReplicas.of(desired, stable_only=True)
    return ScheduleState(
        remembered=seen if seen.replicas else st.remembered,
        replication_factor=factor or st.replication_factor,
    )


# --- decisions ---------------------------------------------------------------------------


def run(
    *,
    params: ScheduleParams,
    ctx: ClusterContext,
    state: JsonObject,
    now: datetime,
    desired: Desired,
    row_updated_at: datetime | None,
) -> StrategyResult:
    st = ScheduleState.load(state)
    ev = evaluate(params, now)
    if ev.verdict.state == "on":
        return keep_on(ctx=ctx, st=st, ev=ev, desired=desired)
    if ev.verdict.state == "off" or params.outside == "suspend":
        return force_off(ctx=ctx, st=st, ev=ev, desired=desired)
    why = f"{ev.where}: leave it to the other strategies (outside: leave)"
    return StrategyResult(desired=desired, state=remember(st, desired, ctx).dump(), reasons=(why,))


def force_off(
    *, ctx: ClusterContext, st: ScheduleState, ev: Evaluation, desired: Desired
) -> StrategyResult:
    """Suspend, on purpose, whatever earlier strategies want."""
    c = ctx.cluster
    if ctx.controller_cluster is not None and c.name == ctx.controller_cluster:
        why = f"{ev.where}: not suspended: the controller's own session runs on this cluster"
        finding = Finding(
            kind="schedule_refused",
            severity="warning",
            strategy=NAME,
            message=why,
            code="schedule_refused",
        )
        return StrategyResult(
            desired=desired,
            state=remember(st, desired, ctx).dump(),
            reasons=(why,),
            findings=(finding,),
        )
    verb = "suspend" if ctx.owned_replicas() else "stay suspended"
    extra = []
    wanted = [r for r in desired.replicas if not ctx.exists(r.name)]
    if wanted:
        extra.append(f"overrides {', '.join(f'{r.name!r} ({r.strategy})' for r in wanted)}")
    if c.hosts_sources_or_sinks and ctx.owned_replicas():
        extra.append(f"stops its {c.sources} source(s) and {c.sinks} sink(s)")
    reason = f"{ev.where}: {verb}" + (f"; {'; '.join(extra)}" if extra else "")
    out = desired.emptied(strategy=NAME, reason=reason, code="schedule_off")
    return StrategyResult(desired=out, state=remember(st, desired, ctx).dump(), reasons=(reason,))


def keep_on(
    *, ctx: ClusterContext, st: ScheduleState, ev: Evaluation, desired: Desired
) -> StrategyResult:
    """Replicas, whatever earlier strategies decided: the window's size, theirs, or ours."""
    occ = ev.verdict.occurrence
    assert occ is not None
    verb = "resume" if not ctx.owned_replicas() else "keep on"
    base, undone = undo_suspend(ctx=ctx, desired=desired, reason=f"{ev.where}: {verb}")
    findings: tuple[Finding, ...] = ()
    if occ.window.size is not None:
        out, what = resize(ctx=ctx, desired=base, size=occ.window.size, where=ev.where)
    elif base.replicas:
        out = base
        what = "with " + ", ".join(f"{r.name!r} ({r.size})" for r in base.replicas)
    else:
        out, restored = resume_remembered(ctx=ctx, st=st, desired=base, where=ev.where)
        what = f"with the remembered replica set: {', '.join(restored)}"
        if not restored:
            what = "impossible: no replica set known"
            message = (
                f"{ev.where}: the window wants replicas but none is known (no size on the "
                "window, no other strategy wants one, none remembered): set a size on the window"
            )
            findings = (
                Finding(
                    kind="schedule_unresolved",
                    severity="error",
                    strategy=NAME,
                    message=message,
                    code="schedule_unresolved",
                ),
            )
    if undone:
        who = " and ".join(f"{s}'s" for s in dict.fromkeys(r.strategy for r in undone))
        what += f"; overrides {who} suspend"
    out = replace(out, empty_on_purpose=False)  # keep-on is never an intended empty cluster
    if verb == "resume" and out.replication_factor is None and st.replication_factor:
        # A managed cluster resumes with the replication factor it had (idle_suspend's, if it
        # set one, wins: it suspended the cluster last).
        out = replace(out, replication_factor=st.replication_factor)
        what += f" (REPLICATION FACTOR {st.replication_factor})"
    return StrategyResult(
        desired=out,
        state=remember(st, out, ctx).dump(),
        reasons=(f"{ev.where}: {verb} {what}",),
        findings=findings,
    )


def undo_suspend(
    *, ctx: ClusterContext, desired: Desired, reason: str
) -> tuple[Desired, list[Removal]]:
    """Put back what a suspending strategy (one that declares suspends_on_purpose, e.g.
    idle_suspend) removed this cycle."""
    if desired.replicas or not desired.empty_on_purpose:
        return desired, []
    out = desired
    undone: list[Removal] = []
    for removal in desired.removed:
        if removal.strategy not in ctx.suspenders or removal.replica is None:
            continue
        out = out.add(replace(removal.replica, strategy=NAME, reason=reason, code="schedule_on"))
        undone.append(removal)
    return out, undone


def resume_remembered(
    *, ctx: ClusterContext, st: ScheduleState, desired: Desired, where: str
) -> tuple[Desired, list[str]]:
    remembered = st.remembered or RememberedReplicas()
    return remembered.restore(
        ctx=ctx, desired=desired, strategy=NAME, reason=f"{where}: resume remembered replica"
    )


def resize(*, ctx: ClusterContext, desired: Desired, size: str, where: str) -> tuple[Desired, str]:
    """One replica of the window's size; others go once it is hydrated (zero downtime).
    A managed cluster runs at the window's size (a graceful ALTER CLUSTER)."""
    if ctx.cluster.managed:
        out, what = want_size(
            desired=desired, size=size, strategy=NAME, reason=f"{where}: window size {size}"
        )
        return out, f"at {size}: {what}"
    done = converge_to_one(
        ctx=ctx,
        desired=desired,
        size=size,
        strategy=NAME,
        preferred=f"r_{size}",
        prefer_name=False,
        prefix=f"{where}: ",
        kept_reason=f"{where}: window size {size}",
        created_reason=f"{where}: window size {size}",
        dropped_reason=f"{where}: not created: the window wants {size}",
        # A replica of the window's size that an earlier strategy retired is taken back
        # rather than another created (no churn with target_size).
        retake_reason=where,
    )
    what = f"at {size}: create {done.target!r}" if done.created else f"at {size} ({done.target!r})"
    if done.retired:
        what += f"; retire {', '.join(done.retired)}"
    if done.waiting:
        what += f"; keep {', '.join(done.waiting)} until it is hydrated"
    return done.desired, what


SPEC: StrategySpec[ScheduleParams] = StrategySpec(
    name=NAME,
    priority=4,
    keys={
        "timezone": KeySpec("custom", required=True, check=check_timezone),
        "windows": KeySpec("custom", required=True, check=check_windows),
        "prewarm_s": KeySpec("duration", default=0, check=check_prewarm),
        "outside": KeySpec("custom", default="suspend", check=check_outside),
        # A common key, narrowed: see check_cooldown.
        "cooldown_s": KeySpec("duration", default=0, check=check_cooldown),
    },
    build=build,
    run=run,
    # A force-off window or the outside time empties the cluster on purpose.
    suspends_on_purpose=True,
)
