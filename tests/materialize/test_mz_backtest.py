"""The backtest on the synthetic week (tests/backtest_week.py) back-dated into the emulator:
read by the runtime through both drivers, replayed, and ``mz-schedctl backtest``'s table,
--json, --html and --strategies. The hand figures are worked out in tests/engine/
test_backtest.py's docstring; here they must come out of the real catalog and statement log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import backtest_week as week
import pytest
from mzsupport import add_strategy, cli, cluster_id, init_tables, snapshot

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime.backtest_reads import read_backtest
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import Store

FILTER = "bt_.*"
# name: (recorded, simulated, suspends, resumes, cold starts, waits): the engine test's figures.
EXPECTED = {
    "bt_business": (168.0, 46.033333, 6, 5, 5, [120.0] * 5),
    "bt_hydrate": (42.0, 0.1, 2, 1, 1, [150.0]),
    "bt_idle": (30.0, 0.516667, 2, 1, 1, [120.0]),
    "bt_nightly": (84.0, 3.183333, 8, 7, 7, [120.0] * 7),
    "bt_sources": (42.0, 42.0, 0, 0, 0, []),
}


@pytest.fixture(scope="module")
def start(emulator: Emulator) -> Any:
    init_tables(emulator)
    w = week.build_on_emulator(emulator)
    for name in week.CLUSTERS:
        add_strategy(emulator, cluster_id(emulator, name), "idle_suspend", week.config(name))
    return w


def _figures(doc: JsonObject) -> dict[str, tuple[Any, ...]]:
    return {
        c["name"]: (
            c["recorded_credits"], c["simulated_credits"], len(c["suspends"]),
            len(c["resumes"]), len(c["cold_starts"]), [s["wait_s"] for s in c["cold_starts"]],
        )
        for c in doc["clusters"]  # type: ignore[union-attr]
    }  # fmt: skip


def _read(db: Database, start: Any, **kwargs: Any) -> JsonObject:
    return read_backtest(
        db, Store(db), hours=168, until=start + 7 * week.DAY, filter_clusters=FILTER, **kwargs
    ).json()


def test_synthetic_week_from_the_catalog_equals_the_hand_figures(
    emulator: Emulator, db: Database, start: Any
) -> None:
    before = snapshot(emulator)
    doc = _read(db, start)
    assert _figures(doc) == EXPECTED
    assert doc["totals"]["suspends"] == 18 and doc["totals"]["cold_starts"] == 14
    by = {c["name"]: c for c in doc["clusters"]}  # type: ignore[union-attr]
    assert by["bt_idle"]["recorded_refusals"] == 1
    assert by["bt_idle"]["suspends"] == [
        (start + week.hm(0, 1, 2)).isoformat(),
        (start + week.hm(5, 11, 4)).isoformat(),
    ]
    # Reads only: the catalog, the state and the audit are as they were.
    assert snapshot(emulator) == before


def test_statement_count_is_fixed(emulator: Emulator, db3: Database, start: Any) -> None:
    """now() is given: history, sizes (SHOW + catalog), clusters, objects, hydration,
    statements, strategy rows, the sample rate: 9, the same with ten more clusters."""
    before = db3.statements
    _read(db3, start)
    first = db3.statements - before
    for i in range(10):
        emulator.execute(f"CREATE CLUSTER bt_fleet_{i} REPLICAS (r1 (SIZE = '25cc'))")
        add_strategy(emulator, cluster_id(emulator, f"bt_fleet_{i}"), "idle_suspend",
                     {"idle_after_s": 600})  # fmt: skip
    before = db3.statements
    read_backtest(db3, Store(db3), hours=168, until=start + 7 * week.DAY)
    assert (first, db3.statements - before) == (9, 9)


def _args(start: Any) -> list[str]:
    until = (start + 7 * week.DAY).isoformat()
    return [
        "--since",
        "7d",
        "--until",
        until,
        "--filter-clusters",
        "bt_(business|hydrate|idle|nightly|sources)",
    ]


def test_cli_table(emulator: Emulator, start: Any) -> None:
    done = cli("backtest", *_args(start), url=emulator.url)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:8] if line.strip()}
    assert rows["cluster"][:3] == ["cluster", "strategies", "recorded"]
    assert rows["bt_business"][1:] == [
        "idle_suspend", "168.000", "46.033", "121.967", "6", "5", "5", "120s", "0", "0",
    ]  # fmt: skip
    assert rows["bt_sources"][1:] == [
        "idle_suspend", "42.000", "42.000", "0.000", "0", "0", "0", "-", "0", "0",
    ]  # fmt: skip
    assert rows["bt_hydrate"][1:] == [
        "idle_suspend", "42.000", "0.100", "41.900", "2", "1", "1", "150s", "0", "0",
    ]  # fmt: skip
    assert rows["TOTAL"][1:] == ["366.000", "91.833", "274.167", "18", "14", "14", "0", "0"]
    assert "NOT REPLAYED" in done.stdout and "each recorded refusal is demand" in done.stdout


def test_cli_json_and_no_skip_agree(emulator: Emulator, start: Any) -> None:
    fast = cli("backtest", *_args(start), "--json", url=emulator.url)
    full = cli("backtest", *_args(start), "--json", "--no-skip", url=emulator.url)
    assert fast.returncode == 0 and full.returncode == 0, (fast.stderr, full.stderr)
    a, b = json.loads(fast.stdout), json.loads(full.stdout)
    assert _figures(a) == EXPECTED
    strip = ("cycles_run", "cycles_skipped")
    assert [{k: v for k, v in c.items() if k not in strip} for c in a["clusters"]] == [
        {k: v for k, v in c.items() if k not in strip} for c in b["clusters"]
    ]
    assert all(c["cycles_skipped"] == 0 for c in b["clusters"])
    assert all(c["cycles_skipped"] > 0 for c in a["clusters"])


def test_cli_proposed_strategies(emulator: Emulator, start: Any, tmp_path: Path) -> None:
    """bt_business with idle_after_s 7200 instead: on Monday the suspend is at 02:02 (W + 7200
    + 5 s); each weekday at 19:02: live 2 h 02 min + 5 x 10 h = 52 h 02 min = 52.033333."""
    f = tmp_path / "strategies.json"
    f.write_text(json.dumps([
        {"cluster": "bt_business", "strategy_type": "idle_suspend",
         "config": {"idle_after_s": 7200}},
    ]))  # fmt: skip
    done = cli("backtest", *_args(start), "--strategies", str(f), "--json", url=emulator.url)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["strategies"] == "proposed (--strategies FILE)"
    assert _figures(doc) == {"bt_business": (168.0, 52.033333, 6, 5, 5, [120.0] * 5)}


def test_cli_strategies_file_errors_are_named(emulator: Emulator, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps([
        {"cluster": "nope", "strategy_type": "idle_suspend", "config": {"idle_after_s": 60}},
        {"cluster": "bt_idle", "strategy_type": "sleepy", "config": {}},
        {"cluster": "bt_idle", "strategy_type": "idle_suspend", "config": {"idle_after": 60}},
    ]))  # fmt: skip
    done = cli("backtest", "--strategies", str(f), url=emulator.url)
    assert done.returncode == 2
    assert "row 1: unknown cluster 'nope'" in done.stderr
    assert "row 2: unknown strategy_type 'sleepy'" in done.stderr
    assert "row 3: invalid config for cluster 'bt_idle'" in done.stderr
    assert "key 'idle_after': unknown key" in done.stderr
    done = cli("backtest", "--since", "a week", url=emulator.url)
    assert done.returncode == 2 and "--since must look like 7d" in done.stderr


def test_cli_html(emulator: Emulator, start: Any, tmp_path: Path) -> None:
    out = tmp_path / "backtest.html"
    done = cli("backtest", *_args(start), "--html", str(out), url=emulator.url)
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert page.count('class="plotly-graph-div"') == 5
    assert "<td>bt_business</td><td>idle_suspend</td><td>168.000</td><td>46.033</td>" in page
    assert "<b>366.000</b> credits recorded" in page and "<b>91.833</b> simulated" in page
    assert "https://" not in page.split("<script")[0]
