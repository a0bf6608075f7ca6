"""``mz-schedctl``: run the scheduling cycle without Airflow.

Exit codes (a public interface: scripts depend on them):
0 all good; 1 an action failed, a config was invalid or a cluster is stuck (the rest was still
handled); 2 usage or connection error; 3 another cycle holds the lease (nothing applied).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from psycopg import conninfo

from mz_schedctl_provider import bundle, cli_backtest
from mz_schedctl_provider.engine.cost import DEFAULT_COLD_START_GAP_S
from mz_schedctl_provider.engine.models import JsonObject
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.catalog_reads import cluster_names
from mz_schedctl_provider.runtime.db import (
    DEFAULT_STATEMENT_TIMEOUT_S,
    ConnectionLost,
    Database,
    DatabaseError,
)
from mz_schedctl_provider.runtime.flags import PAUSED_ENV, kill_switch_on
from mz_schedctl_provider.runtime.plan_text import plan_lines
from mz_schedctl_provider.runtime.store import LeaseClaim, Store, create_sql

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_LEASE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or environment: exit code 2 with the message."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=None,
        help="Materialize connection URL (default: $DATABASE_URL)",
    )
    common.add_argument(
        "--filter-clusters",
        metavar="REGEX",
        help="only clusters whose whole name matches (Python re.fullmatch)",
    )
    common.add_argument("--json", action="store_true", help="print JSON documents")
    common.add_argument("--schema", default="public", help="schema of the controller's tables")
    common.add_argument(
        "--experimental",
        action="store_true",
        help="enable experimental strategies (shrink_to_fit)",
    )
    common.add_argument("--cluster", help="cluster the controller's own queries run on")
    common.add_argument(
        "--statement-timeout",
        type=float,
        default=DEFAULT_STATEMENT_TIMEOUT_S,
        metavar="S",
        help="Materialize's statement_timeout for the controller's session (0: its default)",
    )
    common.add_argument(
        "--client-timeout",
        type=float,
        default=None,
        metavar="S",
        help="fail a statement that gets no answer at all after S seconds"
        " (default: statement timeout + 30)",
    )
    parser = argparse.ArgumentParser(
        prog="mz-schedctl", description="Schedule Materialize cluster replicas."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("plan", parents=[common], help="dry run: show what would happen")
    sub.add_parser("apply", parents=[common], help="run one cycle and carry out the plan")
    sub.add_parser("wipe-state", parents=[common], help="delete stored state (all or filtered)")
    init = sub.add_parser("init", parents=[common], help="create the controller's tables")
    init.add_argument("--print-sql", action="store_true", help="print the SQL instead")
    sub.add_parser("status", parents=[common], help="strategies, state and last actions")
    report = sub.add_parser(
        "report",
        parents=[common],
        help="cost history and savings per cluster (a table, --json, or --html FILE)",
    )
    report.add_argument("--hours", type=float, default=24.0, help="window length (default 24)")
    report.add_argument(
        "--until", metavar="TIMESTAMP", help="window end, ISO 8601 with a zone (default: now())"
    )
    report.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    report.add_argument(
        "--cold-start-gap",
        type=float,
        default=DEFAULT_COLD_START_GAP_S,
        metavar="S",
        help="refused queries no more than S seconds apart are one cold start (default 60)",
    )
    cli_backtest.add_parser(sub, common)
    dags = sub.add_parser(
        "airflow-dags",
        help="where the installed package keeps its DAG files (no database needed)",
        description='Airflow 3: export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="$('
        'mz-schedctl airflow-dags --bundle-config)". Airflow 2: mz-schedctl airflow-dags '
        '--write "$AIRFLOW_HOME/dags".',
    )
    what = dags.add_mutually_exclusive_group()
    what.add_argument("--path", action="store_true", help="print the package's DAG folder")
    what.add_argument(
        "--bundle-config",
        nargs="?",
        const="",
        metavar="EXISTING_JSON",
        help="print dag_bundle_config_list with this package's bundle appended to"
        " EXISTING_JSON (a JSON list, e.g. Airflow's default dags-folder bundle)",
    )
    what.add_argument("--write", metavar="DIR", help="copy the stub DAG files into DIR")
    dags.add_argument(
        "--overwrite", action="store_true", help="with --write: replace files that differ"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage error
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        return _run(args)
    except UsageError as exc:
        print(f"mz-schedctl: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConnectionLost as exc:
        print(f"mz-schedctl: connection to Materialize failed: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DatabaseError as exc:
        print(f"mz-schedctl: Materialize refused a statement: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS


def _run(args: argparse.Namespace) -> int:
    if args.command == "airflow-dags":
        return _airflow_dags(args)
    settings = cycle.CycleSettings(schema=args.schema, experimental=args.experimental)
    if args.filter_clusters:
        try:
            re.compile(args.filter_clusters)
        except re.error as exc:
            raise UsageError(f"--filter-clusters is not a valid regex: {exc}") from None
    if args.command == "init" and args.print_sql:
        print(";\n".join(create_sql(args.schema)) + ";")
        return EXIT_OK
    db = _connect(args)
    try:
        return _COMMANDS[args.command](args, db, settings)
    finally:
        db.close()


def _connect(args: argparse.Namespace, *, cluster: str | bool | None = True) -> Database:
    """A connection with the command's settings (``cluster=None``: the role's default)."""
    url = _url(args)
    if not url:
        raise UsageError("no database: pass --database-url or set DATABASE_URL")
    try:
        conninfo.conninfo_to_dict(url)
    except Exception:
        raise UsageError("--database-url is not a valid connection URL") from None
    try:
        return Database.connect(
            url,
            cluster=args.cluster if cluster is True else (cluster or None),
            statement_timeout_s=args.statement_timeout,
            client_timeout_s=args.client_timeout,
        )
    except ConnectionLost as exc:
        raise ConnectionLost(f"{_safe_target(url)}: {exc}") from None


def _url(args: argparse.Namespace) -> str | None:
    return args.database_url or os.environ.get("DATABASE_URL")


def _safe_target(url: str) -> str:
    """host:port/db of a URL, never its password."""
    params = conninfo.conninfo_to_dict(url)
    return (
        f"{params.get('host', 'localhost')}:{params.get('port', 6875)}/{params.get('dbname', '')}"
    )


# Commands --------------------------------------------------------------------------------------


def _approval_rule() -> Any:
    """The approval gate's rule from ``$MZ_SCHEDCTL_APPROVE_*`` (or Airflow's ``[mz_schedctl]``
    where Airflow is installed): ``apply`` honours it too, so the CLI is no way around it.
    What waits is asked for in mz_cluster_strategy_approvals; the Airflow approval DAG answers."""
    from mz_schedctl_provider.engine.approval import ApprovalRuleError, parse_rule
    from mz_schedctl_provider.settings import approval_settings

    try:
        return parse_rule(approval_settings())
    except ApprovalRuleError as exc:
        raise UsageError(f"approval gate: {exc}") from None


def _plan(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    cycle_id = cycle.new_cycle_id()
    signals = cycle.collect(db, settings, filter_clusters=args.filter_clusters)
    plan = cycle.decide(
        signals,
        cycle_id=cycle_id,
        dry_run=True,
        filter_clusters=args.filter_clusters,
        experimental=settings.experimental,
        approval=_approval_rule(),
    )
    outcome = cycle.persist(
        plan, cycle.apply(plan, db, settings), db, settings, remember_alerts=False
    )
    _print_plan(plan, None, json_out=args.json)
    _print_problems(outcome.problems)
    return EXIT_PROBLEMS if outcome.problems else EXIT_OK


def _apply(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    cycle_id = cycle.new_cycle_id()
    paused = kill_switch_on(os.environ.get(PAUSED_ENV))
    approval = _approval_rule()  # a bad setting fails before any claim
    lease = None
    try:
        if not paused:
            lease = cycle.claim_lease(db, settings, cycle_id=cycle_id)
        return _apply_cycle(
            args, db, settings, cycle_id=cycle_id, paused=paused, lease=lease, approval=approval
        )
    except DatabaseError:
        # A failed run must not leave its claim behind (also when the claim itself failed
        # after its INSERT): it would hold every other cycle back for the whole lease TTL.
        # Released on a fresh connection (ours may be the one that broke); a lost claim was
        # released already; at worst the claim expires on its own.
        if not paused and (lease is None or lease.acquired):
            _release_lease(args, settings, cycle_id)
        raise


def _release_lease(args: argparse.Namespace, settings: cycle.CycleSettings, cycle_id: str) -> None:
    # --cluster may be what failed (unknown, or no replica): then try the role's default.
    connects = [
        functools.partial(_connect, args, cluster=cluster)
        for cluster in dict.fromkeys((args.cluster, None))
    ]
    cycle.release_after_failure(connects, settings, cycle_id=cycle_id)


def _apply_cycle(
    args: argparse.Namespace,
    db: Database,
    settings: cycle.CycleSettings,
    *,
    cycle_id: str,
    paused: bool,
    lease: LeaseClaim | None,
    approval: Any = None,
) -> int:
    signals = cycle.collect(db, settings, filter_clusters=args.filter_clusters)
    plan = cycle.decide(
        signals,
        cycle_id=cycle_id,
        dry_run=False,
        filter_clusters=args.filter_clusters,
        experimental=settings.experimental,
        approval=approval,
    )
    if lease is not None and not lease.acquired:
        _print_plan(plan, None, json_out=args.json)
        print(
            f"mz-schedctl: not applied: another cycle holds the lease: {lease.holder} "
            f"(cycle {lease.cycle_id}, expires {lease.expires_at})",
            file=sys.stderr,
        )
        return EXIT_LEASE
    # After a connection is lost mid-DDL the executor goes on with a new one; persist must
    # use that one too (the first is dead), and every one opened is closed at the end.
    live = [db]
    reconnect = cycle.reconnector(functools.partial(_connect, args), opened=live)
    try:
        result = cycle.apply(plan, db, settings, paused=paused, reconnect=reconnect)
        # Before persist: if persist fails, what did run is still shown.
        _print_plan(plan, result, json_out=args.json)
        if paused and not args.json:
            print(f"paused ({PAUSED_ENV} is set): nothing executed, audited as held back")
        sys.stdout.flush()
        outcome = cycle.persist(
            plan, result, live[-1], settings, approval=approval, remember_alerts=False
        )
    finally:
        for extra in live[1:]:
            extra.close()
    _print_problems(outcome.problems)
    if not paused and not result.get("executed"):
        # Won the claim, yet apply found an earlier claim that was not visible yet when we
        # claimed (two claims racing): we applied nothing, like any other lease loser.
        print(f"mz-schedctl: not applied: {result.get('reason')}", file=sys.stderr)
        return EXIT_LEASE
    return EXIT_PROBLEMS if outcome.problems else EXIT_OK


def _wipe_state(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    wiped = cycle.wipe_state(db, settings, filter_clusters=args.filter_clusters)
    if args.json:
        print(json.dumps({"deleted_state_rows": wiped.deleted_state_rows}))
    else:
        print(f"deleted {wiped.deleted_state_rows} state row(s)")
    return EXIT_OK


def _airflow_dags(args: argparse.Namespace) -> int:
    """The DAG files for Airflow: a bundle (Airflow 3) or copied stubs (Airflow 2)."""
    if args.write:
        try:
            written = bundle.write_dag_files(Path(args.write), overwrite=args.overwrite)
        except FileExistsError as exc:
            raise UsageError(str(exc)) from None
        for path in written:
            print(path)
    elif args.bundle_config is not None:
        try:
            print(bundle.bundle_config(args.bundle_config))
        except ValueError as exc:  # json.JSONDecodeError included
            raise UsageError(f"--bundle-config: {exc}") from None
    else:
        print(bundle.DAG_FOLDER)
    return EXIT_OK


def _init(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    Store(db, schema=settings.schema).bootstrap()
    print(f"tables ready in schema {settings.schema}")
    return EXIT_OK


def _status(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    store = Store(db, schema=settings.schema)
    names = dict(cluster_names(db))
    pattern = re.compile(args.filter_clusters) if args.filter_clusters else None

    def keep(cid: str) -> bool:
        return pattern is None or bool(pattern.fullmatch(str(names.get(cid, cid))))

    strategies = [r for r in store.read_strategies() if keep(r.cluster_id)]
    states = {r.cluster_id: r for r in store.read_states() if keep(r.cluster_id)}
    actions = [a for a in store.read_actions(limit=20) if keep(a[1])]
    if args.json:
        doc: dict[str, Any] = {
            "strategies": [
                {"cluster": names.get(r.cluster_id, r.cluster_id), "cluster_id": r.cluster_id,
                 "strategy": r.strategy_type, "config": r.config}
                for r in strategies
            ],
            "states": {names.get(k, k): v.payload for k, v in states.items()},
            "actions": [
                {"at": str(a[0]), "cluster": a[2], "phase": a[3], "executed": a[4], "sql": a[5],
                 "error": a[6]}
                for a in actions
            ],
        }  # fmt: skip
        print(json.dumps(doc, default=str, indent=2))
        return EXIT_OK
    print("STRATEGIES")
    for r in strategies:
        print(
            f"  {names.get(r.cluster_id, r.cluster_id)}  {r.strategy_type}  {json.dumps(r.config)}"
        )
    print("STATE")
    for cid, row in states.items():
        print(f"  {names.get(cid, cid)}  v{row.state_version}  {json.dumps(row.payload)}")
    print("LAST ACTIONS")
    for at, _cid, cname, phase, executed, sql_text, error in actions:
        flag = {True: "ok", False: "not executed", None: "pending"}[executed]
        print(f"  {at}  {cname}  {phase}  {flag}  {sql_text or ''}  {error or ''}".rstrip())
    return EXIT_OK


def _report(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    # Imported here: the report's modules (and plotly, for --html) are not needed by a cycle.
    from datetime import datetime

    from mz_schedctl_provider.engine.cost import CostRules
    from mz_schedctl_provider.runtime.cost_reads import read_cost_report
    from mz_schedctl_provider.runtime.cost_text import table_lines

    until = None
    if args.until:
        try:
            until = datetime.fromisoformat(args.until)
        except ValueError:
            raise UsageError(f"--until is not an ISO 8601 timestamp: {args.until}") from None
        if until.tzinfo is None:
            raise UsageError("--until needs a time zone (e.g. 2026-12-02T04:00:00+00:00)")
    if args.hours <= 0 or args.cold_start_gap < 0:
        raise UsageError("--hours must be positive and --cold-start-gap not negative")
    doc = read_cost_report(
        db,
        Store(db, schema=settings.schema),
        hours=args.hours,
        until=until,
        filter_clusters=args.filter_clusters,
        rules=CostRules(cold_start_gap_s=args.cold_start_gap),
    ).json()
    if args.html:
        from mz_schedctl_provider.runtime.cost_html import ChartsUnavailable, report_html

        try:
            page = report_html(doc, notice=f"from {_safe_target(_url(args))}")
        except ChartsUnavailable as exc:
            raise UsageError(str(exc)) from None
        Path(args.html).write_text(page, encoding="utf-8")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print("\n".join(table_lines(doc)))
        if args.html:
            print(f"\nHTML report: {args.html}")
    return EXIT_OK


def _backtest(args: argparse.Namespace, db: Database, settings: cycle.CycleSettings) -> int:
    try:
        lines = cli_backtest.run(
            args, db, schema=settings.schema, notice=f"from {_safe_target(_url(args))}"
        )
    except cli_backtest.BacktestUsageError as exc:
        raise UsageError(str(exc)) from None
    print("\n".join(lines))
    return EXIT_OK


_COMMANDS = {
    "plan": _plan,
    "apply": _apply,
    "wipe-state": _wipe_state,
    "init": _init,
    "status": _status,
    "report": _report,
    "backtest": _backtest,
}


# Output ----------------------------------------------------------------------------------------


def _print_plan(plan: JsonObject, result: JsonObject | None, *, json_out: bool) -> None:
    if json_out:
        # JSON Lines: the plan document exactly as the XCom contract ships it, then the apply
        # result; each line validates against its own schema (a merged object would not).
        print(json.dumps(plan, default=str))
        if result is not None:
            print(json.dumps(result, default=str))
        return
    for _level, line in plan_lines(plan, result):
        print(line)


def _print_problems(problems: list[str]) -> None:
    # On stderr even with --json: stdout stays parseable, and the reasons for exit code 1
    # are never silent.
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
