"""The cost report against a known history (tests/cost_history.py) on the emulator, read by the
controller's own runtime through both drivers, and ``mz-schedctl report``'s three outputs."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cost_history import FILTER, WINDOW_H, History, build_history
from mzsupport import cli, init_tables

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime.cost_reads import read_cost_report
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import Store


@pytest.fixture(scope="module")
def history(emulator: Emulator) -> History:
    init_tables(emulator)
    return build_history(emulator)


def _report(db: Database, history: History) -> JsonObject:
    return read_cost_report(
        db, Store(db), hours=WINDOW_H, until=history.until, filter_clusters=FILTER
    ).json()


def _by_name(doc: JsonObject) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["clusters"]}  # type: ignore[index,union-attr]


def test_known_history_figures(db: Database, history: History) -> None:
    """Hand figures (minutes from A; window A .. A+240, 4 h; 25cc 0.25, 50cc 0.5, 100cc 1,
    200cc 2 credits/h):

    cost_a: r1 100cc live A .. A+60 (1 h = 1.0) and A+150 .. A+240 (1.5 h = 1.5): credits 2.5.
      First executed action: idle_suspend's drop, intent at A+59:58; r1 100cc live then:
      baseline 1 credit/h x 4 h = 4.0; savings 1.5. Time: serving 60 + 90 = 150 min,
      suspended A+60 .. A+150 = 90 min. Suspend at A+60 and resume at A+150, both by
      idle_suspend. Refusals at A+120:00, :20, :50 (gaps 20 s, 30 s <= 60 s: one cold start of
      3) and A+140:00 (19 min later: another of 1): 4 refused queries, 2 cold starts. The dry
      run's not-executed row at A+30 neither dates the baseline nor attributes anything.
    cost_b: A .. A+60 r1 25cc (0.25 x 1 h = 0.25); A+60 .. A+75 r1 + r50 + burst
      (0.25 + 0.5 + 2 = 2.75/h x 0.25 h = 0.6875, bursting); A+75 .. A+90 r1 + r50 (0.75/h x
      0.25 h = 0.1875, resizing: r50 is new, r1 of another size is dropped later); A+90 ..
      A+240 r50 (0.5 x 2.5 h = 1.25). Credits 2.375. Baseline: r1 25cc before the first
      executed action (A+59:58): 0.25 x 4 = 1.0; savings -1.375 (the resize and burst cost
      more). Time: serving 60 + 150 = 210 min, bursting 15, resizing 15. By maker: target_size
      r50 0.5 x 3 h = 1.5, burst 2 x 0.25 h = 0.5, outside the controller r1 0.25 x 1.5 h =
      0.375.
    cost_c: r1 50cc the whole window (0.5 x 4 = 2.0) and a person's manual 100cc A+120 ..
      A+180 (1.0): credits 3.0; no executed action: baseline 3.0 (its own history), savings 0.
      Serving 240 min (r1 is never dropped, so the manual replica is no resize).
    Totals: credits 7.875, baseline 8.0, savings 0.125, 2 cold starts, 4 refused queries.
    """
    doc = _report(db, history)
    assert doc["window"]["hours"] == 4
    assert doc["totals"] == {
        "credits": 7.875,
        "baseline_credits": 8.0,
        "savings": 0.125,
        "cold_starts": 2,
        "refused_queries": 4,
    }
    c = _by_name(doc)
    assert set(c) == {"cost_a", "cost_b", "cost_c"}

    a = c["cost_a"]
    assert (a["credits"], a["baseline"]["credits"], a["savings"]) == (2.5, 4.0, 1.5)
    assert a["baseline"]["replicas"] == {"100cc": 1}
    assert a["baseline"]["at"] == (history.anchor + timedelta(minutes=59, seconds=58)).isoformat()
    assert a["seconds"] == {"serving": 9000, "suspended": 5400, "bursting": 0, "resizing": 0}
    assert [(m["kind"], m["by"]) for m in a["markers"]] == [
        ("suspend", "idle_suspend"),
        ("resume", "idle_suspend"),
    ]
    assert a["refused_queries"] == 4
    assert [s["queries"] for s in a["cold_starts"]] == [3, 1]

    b = c["cost_b"]
    assert (b["credits"], b["baseline"]["credits"], b["savings"]) == (2.375, 1.0, -1.375)
    assert b["seconds"] == {"serving": 12600, "suspended": 0, "bursting": 900, "resizing": 900}
    assert b["credits_by"] == {"burst": 0.5, "outside the controller": 0.375, "target_size": 1.5}
    made = {r["name"]: (r["made_by"], r["dropped_by"]) for r in b["replicas"]}
    assert made == {
        "r1": ("outside the controller", "target_size"),
        "r50": ("target_size", None),
        "burst": ("burst", "burst"),
    }
    assert b["markers"] == [] and b["cold_starts"] == []

    cc = c["cost_c"]
    assert (cc["credits"], cc["baseline"]["credits"], cc["savings"]) == (3.0, 3.0, 0.0)
    assert cc["baseline"]["at"] is None
    assert cc["seconds"]["serving"] == 14400
    assert doc["definitions"]["cold_start"] == (
        "refused queries on a cluster no more than 60 s apart count once"
    )


def test_statement_count_does_not_grow_with_the_fleet(
    emulator: Emulator, db3: Database, history: History
) -> None:
    """Five statements (the window end is given): history, sizes, clusters, audit, errors;
    the same after ten more clusters with replicas."""
    before = db3.statements
    _report(db3, history)
    first = db3.statements - before
    for i in range(10):
        emulator.execute(f"CREATE CLUSTER fleet_{i} REPLICAS (r1 (SIZE = '25cc'))")
    before = db3.statements
    read_cost_report(db3, Store(db3), hours=WINDOW_H, until=history.until)
    assert (first, db3.statements - before) == (5, 5)


def test_cli_table(emulator: Emulator, history: History) -> None:
    done = cli("report", *_cli_args(history), url=emulator.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:6] if line.strip()}
    assert rows["cost_a"][1:4] == ["2.500", "4.000", "1.500"]
    assert rows["cost_b"][1:8] == ["2.375", "1.000", "-1.375", "3h30m", "0h00m", "0h15m", "0h15m"]
    assert rows["TOTAL"][1:4] == ["7.875", "8.000", "0.125"]
    assert rows["cost_a"][-2:] == ["2", "4"]  # cold starts, refused queries
    assert "cold_start: refused queries on a cluster no more than 60 s apart" in done.stdout


def test_cli_json(emulator: Emulator, history: History) -> None:
    done = cli("report", *_cli_args(history), "--json", "--cold-start-gap", "10", url=emulator.url)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    # 10 s: the refusals 20 s and 30 s apart no longer merge: 4 cold starts of one query each.
    assert [s["queries"] for s in _by_name(doc)["cost_a"]["cold_starts"]] == [1, 1, 1, 1]
    assert doc["totals"]["credits"] == 7.875


class _Links(HTMLParser):
    """Every src/href attribute of every element (script bodies are not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.refs.append((tag, name, value))


def test_cli_html_is_self_contained(emulator: Emulator, history: History, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = cli("report", *_cli_args(history), "--html", str(out), url=emulator.url)
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    links = _Links()
    links.feed(page)
    external = [r for r in links.refs if r[2].startswith(("http:", "https:", "//"))]
    assert external == [], external
    assert links.scripts >= 4  # plotly.js inlined, then one script per cluster's chart
    assert page.count('class="plotly-graph-div"') == 3
    # Every figure is in the file: the three clusters, their sizes and the totals line.
    for text in ("cost_a", "cost_b", "cost_c", "200cc", "7.875</b> credits used"):
        assert text in page, text


def test_cli_report_usage_errors(emulator: Emulator) -> None:
    done = cli("report", "--until", "2026-12-02T04:00:00", url=emulator.url)
    assert done.returncode == 2 and "time zone" in done.stderr


def _cli_args(history: History) -> list[str]:
    return [
        "--hours",
        str(WINDOW_H),
        "--until",
        history.until.isoformat(),
        "--filter-clusters",
        FILTER,
    ]
