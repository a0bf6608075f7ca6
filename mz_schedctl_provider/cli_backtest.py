"""``mz-schedctl backtest``: its arguments and its output (a shell: no SQL here; the reads are
runtime/backtest_reads.py, the replay engine/backtest.py). Kept apart from cli.py, which
holds the cycle's commands."""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from mz_schedctl_provider.runtime.db import Database


class BacktestUsageError(Exception):
    """Bad arguments or a strategies file that does not validate (cli.py: exit code 2)."""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    bt = sub.add_parser(
        "backtest",
        parents=[common],
        help="replay recorded history through the engine: what the strategies would have done"
        " (writes nothing)",
    )
    bt.add_argument("--since", default="7d", help="window length: 7d, 36h, 90m (default 7d)")
    bt.add_argument(
        "--until", metavar="TIMESTAMP", help="window end, ISO 8601 with a zone (default: now())"
    )
    bt.add_argument(
        "--strategies",
        metavar="FILE",
        help="a proposed set instead of the current rows: a JSON list of"
        ' {"cluster": name or id, "strategy_type": ..., "config": {...}}',
    )
    bt.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    bt.add_argument(
        "--cycle", type=float, default=120.0, metavar="S",
        help="seconds between cycles (default 120: the DAG's */2 * * * *)",
    )  # fmt: skip
    bt.add_argument(
        "--default-hydration", type=float, default=60.0, metavar="S",
        help="hydration time of a size a cluster never recorded (default 60)",
    )  # fmt: skip
    bt.add_argument(
        "--no-skip", action="store_true", help="run every cycle (no skipping of unchanged ones)"
    )


def window_hours(text: str) -> float:
    """--since: a number with d, h or m (7d, 36h, 90m)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm])\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise BacktestUsageError(f"--since must look like 7d, 36h or 90m (got {text!r})")
    return float(m.group(1)) * {"d": 24.0, "h": 1.0, "m": 1 / 60.0}[m.group(2)]


def run(args: argparse.Namespace, db: Database, *, schema: str, notice: str) -> list[str]:
    """Replay, write the HTML if asked, and return the lines to print."""
    # Imported here, as for the report: not needed by a cycle.
    from mz_schedctl_provider.engine.backtest import BacktestRules
    from mz_schedctl_provider.runtime.backtest_reads import (
        StrategiesFileError,
        load_strategies_file,
        read_backtest,
    )
    from mz_schedctl_provider.runtime.backtest_text import table_lines
    from mz_schedctl_provider.runtime.store import Store

    hours = window_hours(args.since)
    until = None
    if args.until:
        try:
            until = datetime.fromisoformat(args.until)
        except ValueError:
            raise BacktestUsageError(
                f"--until is not an ISO 8601 timestamp: {args.until}"
            ) from None
        if until.tzinfo is None:
            raise BacktestUsageError("--until needs a time zone (e.g. 2026-12-02T04:00:00+00:00)")
    if args.cycle <= 0 or args.default_hydration < 0:
        raise BacktestUsageError("--cycle must be positive and --default-hydration not negative")
    proposed = None
    try:
        if args.strategies:
            try:
                text = Path(args.strategies).read_text(encoding="utf-8")
            except OSError as exc:
                raise BacktestUsageError(f"--strategies: {exc}") from None
            proposed = load_strategies_file(text)
        doc = read_backtest(
            db,
            Store(db, schema=schema),
            hours=hours,
            until=until,
            filter_clusters=args.filter_clusters,
            strategies=proposed,
            rules=BacktestRules(
                cycle_s=args.cycle,
                default_hydration_s=args.default_hydration,
                skip_unchanged=not args.no_skip,
            ),
        ).json()
    except StrategiesFileError as exc:
        raise BacktestUsageError(f"--strategies {args.strategies}: {exc}") from None
    if args.html:
        from mz_schedctl_provider.runtime.backtest_html import backtest_html
        from mz_schedctl_provider.runtime.cost_html import ChartsUnavailable

        try:
            page = backtest_html(doc, notice=notice)
        except ChartsUnavailable as exc:
            raise BacktestUsageError(str(exc)) from None
        Path(args.html).write_text(page, encoding="utf-8")
    if args.json:
        return [json.dumps(doc, indent=2)]
    lines = table_lines(doc)
    if args.html:
        lines += ["", f"HTML report: {args.html}"]
    return lines
