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

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from ..config import KeySpec, Values, check_size
from ..desired import Desired, Removal
from ..facts import ClusterContext
from ..managed import want_size
from ..models import Finding, JsonObject, JsonValue, Size
from .base import SizeClaim, StrategyResult, StrategySpec
from .converge import converge_to_one
from .remembered import FACTOR_KEY, REMEMBERED_KEY, RememberedReplicas, load_factor
from .schedule_windows import (
    Evaluation,
    Fault,
    ScheduleParams,
    evaluate,
    load_timezone,
    parse_windows,
    shown,
)

NAME = "schedule"
MAX_PREWARM_S = 24 * 3600


def check_timezone(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    if not isinstance(value, str) or not value:
        return "timezone", "must be an IANA time zone name such as 'Europe/Berlin'"
    if "\x00" in value or load_timezone(value) is None:
        return "timezone", f"unknown time zone {value!r} (an IANA name such as 'Europe/Berlin')"
    return None


def check_outside(value: JsonValue, sizes: Mapping[str, Size]) -> Fault | None:
    if value not in ("suspend", "leave"):
        return "outside", f'must be "suspend" or "leave", not {shown(value)}'
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


def size_claims(params: ScheduleParams) -> tuple[SizeClaim, ...]:
    """A window's size is kept while it is open, and taken by size (any replica of it counts):
    a burst of that size would be taken for the window's replica."""
    return tuple(
        SizeClaim(key=f"windows[{i}].size", size=w.size, steady=True)
        for i, w in enumerate(params.windows)
        if w.size is not None
    )


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
    size_claims=size_claims,
)
