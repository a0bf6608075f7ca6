"""engine/backtest.py on the synthetic week (tests/backtest_week.py), figures by hand.

Rules used below: cycles every 120 s from W; the statement log's lag 5 s; a row is in place
from W, so the idle clock starts at W; a suspend happens at the first cycle t with
(t - 5 s) - idle clock start >= idle_after_s; a resume at the first cycle t with a statement
begun by t - 5 s after the suspend; no cluster has objects to hydrate (bt_sources never
resumes), so a resumed replica serves at once; credits/h 25cc 0.25, 50cc 0.5, 100cc 1.

bt_business: suspend Mon 01:02 (W + 3600 + 5 s -> cycle 01:02). Each weekday: resume 09:02
  (the 09:00:00 query is visible at 09:00:05 -> cycle 09:02); the 09:00:00 and 09:00:30
  queries are one cold start (30 s apart <= 60 s), waiting 120 s; each hourly query is seen
  before the hour of idleness is up (e.g. at 10:02: 10:00:01 end); the clock restarts at the
  17:00:01 end: suspend at 18:00:06 -> 18:02. Live: 62 min + 5 x 9 h = 46 h 02 min =
  46.033333 credits; recorded 168 h x 1 = 168. Suspends 6, resumes 5, cold starts 5.
bt_nightly: suspend Mon 00:32 (W + 1800 + 5 s). Each day: the 02:00 batch is visible at
  02:02 and still running (its end 02:20:00 is unflushed): resume 02:02, one cold start of
  120 s; end visible from 02:20:05; suspend at 02:20:00 + 1800 + 5 s -> 02:52. Live: 32 min +
  7 x 50 min = 382 min = 6.366667 h x 0.5 = 3.183333 credits; recorded 168 x 0.5 = 84.
  Suspends 8, resumes 7, cold starts 7.
bt_idle: suspend Mon 01:02; the recorded refusal Saturday 10:00 is demand: resume 10:02 (a
  cold start of 120 s), clock from the resume 10:02, suspend at 11:02:05 -> 11:04. Live: 62 +
  62 min = 124 min x 0.25 = 0.516667 credits; recorded W - 1 h .. Sat 00:00 in the window:
  120 h x 0.25 = 30. Suspends 2, resumes 1, cold starts 1, recorded refusals 1.
bt_sources: never suspended (hosts a source): 168 x 0.25 = 42 both ways, nothing else.
bt_hydrate: suspend Mon 00:12 (W + 600 + 5 s); the Tuesday 09:00 query: resume 09:02, the
  replica hydrated 30 s later (its recorded hydration time): a cold start waiting 150 s; clock
  from the resume 09:02: suspend at 09:12:05 -> 09:14. Live: 12 + 12 min = 24 min x 0.25 =
  0.1 credits; recorded 42. Suspends 2, resumes 1, cold starts 1.
No flaps (every resume is hours after its suspend), nothing deferred.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import backtest_week as week
import pytest

from mz_schedctl_provider.engine.backtest import (
    BacktestRules,
    ClusterHistory,
    Statement,
)
from mz_schedctl_provider.engine.backtest_report import backtest, report_json
from mz_schedctl_provider.engine.cost import ReplicaSpan, Window
from mz_schedctl_provider.engine.models import Cluster, Size, StrategyRow

W = datetime(2026, 11, 16, tzinfo=timezone.utc)  # a Monday
WINDOW = Window(W, W + 7 * week.DAY)
CREDITS = {"25cc": 0.25, "50cc": 0.5, "100cc": 1.0, "200cc": 2.0}
SIZES = tuple(Size(n, c, 1 << 30) for n, c in CREDITS.items())

EXPECTED = {
    # name: (recorded, simulated, suspends, resumes, cold starts, cold-start waits)
    "bt_business": (168.0, 46.033333, 6, 5, 5, [120.0] * 5),
    "bt_hydrate": (42.0, 0.1, 2, 1, 1, [150.0]),
    "bt_idle": (30.0, 0.516667, 2, 1, 1, [120.0]),
    "bt_nightly": (84.0, 3.183333, 8, 7, 7, [120.0] * 7),
    "bt_sources": (42.0, 42.0, 0, 0, 0, []),
}


def histories() -> list[ClusterHistory]:
    out = []
    for i, name in enumerate(week.CLUSTERS):
        cid = f"u{i + 10}"
        drop = week.drops().get(name)
        span = ReplicaSpan(
            replica_id=f"u{i + 100}",
            cluster_id=cid,
            cluster_name=name,
            replica_name="r1",
            size=week.SIZES[name],
            created_at=W - timedelta(hours=1),
            dropped_at=None if drop is None else W + drop,
            credits_per_hour=CREDITS[week.SIZES[name]],
        )
        statements = tuple(
            Statement(W + q.began, W + q.began + timedelta(seconds=q.seconds), q.refused)
            for q in week.queries()
            if q.cluster == name
        )
        cluster = Cluster(
            id=cid,
            name=name,
            sources=1 if name == "bt_sources" else 0,
            indexes=1 if name == "bt_hydrate" else 0,
        )
        hydration = {"25cc": float(week.HYDRATION_S)} if name == "bt_hydrate" else {}
        out.append(
            ClusterHistory(
                cluster=cluster, spans=(span,), statements=statements, hydration_s=hydration
            )
        )
    return out


def rows(hs: list[ClusterHistory]) -> list[StrategyRow]:
    return [
        StrategyRow(h.cluster.id, "idle_suspend", week.config(h.cluster.name), updated_at=None)
        for h in hs
    ]


@pytest.mark.parametrize("skip", [True, False])
def test_synthetic_week_hand_figures(skip: bool) -> None:
    hs = histories()
    results = backtest(
        histories=hs,
        rows=rows(hs),
        sizes=SIZES,
        window=WINDOW,
        rules=BacktestRules(skip_unchanged=skip),
    )
    got = {
        c.replay.name: (
            round(c.recorded_credits, 6),
            round(c.simulated_credits, 6),
            len(c.suspends),
            len(c.resumes),
            len(c.cold_starts),
            [s.wait_s for s in c.cold_starts],
        )
        for c in results
    }
    assert got == EXPECTED
    by = {c.replay.name: c for c in results}
    assert [t - W for t in by["bt_idle"].suspends] == [week.hm(0, 1, 2), week.hm(5, 11, 4)]
    assert [t - W for t in by["bt_nightly"].resumes] == [week.hm(d, 2, 2) for d in range(7)]
    assert [s.queries for s in by["bt_business"].cold_starts] == [2] * 5
    assert by["bt_idle"].recorded_refusals == 1
    assert all(c.flaps == 0 and c.deferred == 0 for c in results)
    assert all(not c.replay.errors for c in results)


def test_skipping_gives_the_same_replay_with_fewer_cycles() -> None:
    """Everything the replay produced (replicas, actions, hence every figure) is equal with and
    without skipping; skipping ran fewer planner cycles."""
    hs = histories()
    full = backtest(
        histories=hs, rows=rows(hs), sizes=SIZES, window=WINDOW,
        rules=BacktestRules(skip_unchanged=False),
    )  # fmt: skip
    fast = backtest(histories=hs, rows=rows(hs), sizes=SIZES, window=WINDOW)
    for a, b in zip(full, fast, strict=True):
        assert (a.replay.replicas, a.replay.actions) == (b.replay.replicas, b.replay.actions)
        assert a.replay.cycles_skipped == 0 and a.replay.cycles_run == 7 * 720 + 1
        assert b.replay.cycles_run + b.replay.cycles_skipped == 7 * 720 + 1
        assert b.replay.cycles_run < a.replay.cycles_run / 5
    strip = ("cycles_run", "cycles_skipped")
    doc_a = report_json(full, WINDOW, BacktestRules())
    doc_b = report_json(fast, WINDOW, BacktestRules())
    for ca, cb in zip(doc_a["clusters"], doc_b["clusters"], strict=True):  # type: ignore[arg-type]
        assert {k: v for k, v in ca.items() if k not in strip} == {
            k: v for k, v in cb.items() if k not in strip
        }


def test_rate_limit_deferral_is_counted_and_changes_nothing() -> None:
    """A limit of 0 actions per hour: every action is deferred, so bt_idle keeps r1 to the
    window end (168 h x 0.25 = 42 credits, no suspend), and every idle cycle defers its drop:
    all 7 x 720 + 1 cycles but 00:00 .. 01:00 (31 cycles, not idle yet) and Saturday
    10:02 .. 11:00 (30 cycles: the 10:00 refusal restarted the idle clock)."""
    from mz_schedctl_provider.engine.safety import Limits

    hs = [h for h in histories() if h.cluster.name == "bt_idle"]
    (c,) = backtest(
        histories=hs, rows=rows(hs), sizes=SIZES, window=WINDOW,
        rules=BacktestRules(limits=Limits(max_actions_per_window=0)),
    )  # fmt: skip
    assert round(c.simulated_credits, 6) == 42.0
    assert len(c.suspends) == 0
    assert c.deferred == 7 * 720 + 1 - 31 - 30


def test_a_resume_soon_after_a_suspend_is_a_flap() -> None:
    """idle_after_s 600 on a 25cc cluster, one query at Mon 00:20: suspend 00:12 (W + 600 +
    5 s), the query resumes it at 00:22, 600 s after the suspend (<= 900 s: one flap, and a
    cold start waiting 120 s); clock from the resume: suspend 00:32:05 -> 00:34. Live 12 + 12
    min = 0.4 h x 0.25 = 0.1 credits; suspends 2, resumes 1."""
    (h,) = [h for h in histories() if h.cluster.name == "bt_idle"]
    h = ClusterHistory(
        cluster=h.cluster,
        spans=tuple(replace(s, dropped_at=None) for s in h.spans),
        statements=(Statement(W + week.hm(0, 0, 20), W + week.hm(0, 0, 20, 1)),),
    )
    row = StrategyRow(h.cluster.id, "idle_suspend", {"idle_after_s": 600})
    (c,) = backtest(histories=[h], rows=[row], sizes=SIZES, window=WINDOW)
    assert [t - W for t in c.suspends] == [week.hm(0, 0, 12), week.hm(0, 0, 34)]
    assert [t - W for t in c.resumes] == [week.hm(0, 0, 22)]
    assert c.flaps == 1
    assert [(s.queries, s.wait_s) for s in c.cold_starts] == [(1, 120.0)]
    assert round(c.simulated_credits, 6) == 0.1
