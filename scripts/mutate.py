#!/usr/bin/env python3
"""Mutation run: disable one controller rule at a time and see which test notices.

Each mutation replaces one exact piece of text (``old``, which must occur exactly once in its
file) with ``new``, runs the suites against the mutated tree and restores the file byte for byte
(content and modification time) whatever happens: test failure, Ctrl-C, SIGTERM. Anchors are
found by text, never by line number, so the table survives edits elsewhere in a file; a rule
that moved or changed makes the run stop before anything is mutated, naming the mutation (it is
re-anchored by hand, never skipped).

Suites, in order: tests/safety (the randomized model and the hostile-input tests), then, only
if the mutant survived it, tests/engine, then tests/materialize, each ``-x`` (stop at the first
failure). ``--all-suites`` runs every suite for every mutant (which suites kill it).

    .venv/bin/python scripts/mutate.py --list
    .venv/bin/python scripts/mutate.py --only R05,R12,R13 --scenarios 40
    .venv/bin/python scripts/mutate.py --all-suites --json /tmp/mutation.json

Before the first mutant the unmutated tree must pass the suites the run uses (a red baseline
would make every mutant look killed). Output: a Markdown table on stdout and a JSON file; exit
status 1 if a mutant survived that is not argued equivalent in the table, 2 on a usage or
anchor error. Not run by CI (it runs every suite once per mutation). Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "mz_schedctl_provider"
# The original of the file being mutated, while it is (see restore_pending).
PENDING = ROOT / ".mutate-pending.json"
SUITES: dict[str, str] = {
    "safety": "tests/safety",
    # The randomized model alone (not a default suite): which rules the model itself sees.
    "model": "tests/safety/test_randomized.py",
    "engine": "tests/engine",
    "materialize": "tests/materialize",
}


@dataclass(frozen=True)
class Mutation:
    """One rule disabled: ``old`` (exactly once in ``file``) becomes ``new``.

    :param equivalent: when not empty, the argument that the mutant cannot be observed (then
        surviving is expected and does not fail the run; it is still run).
    """

    id: str
    rule: str
    file: str
    old: str
    new: str
    equivalent: str = ""


E = f"{PKG}/engine"
R = f"{PKG}/runtime"

# fmt: off
MUTATIONS: tuple[Mutation, ...] = (
    # ---- the 26 rules of issue 15 ------------------------------------------------------------
    Mutation(
        "R01", "last-hydrated rail removed: any drop may take the last hydrated replica",
        f"{E}/safety.py",
        "    if empty_on_purpose:\n        return actions, None\n    hydrated = {",
        "    if True:  # MUTANT R01\n        return actions, None\n    hydrated = {"),
    Mutation(
        "R02", "executor's hydration re-check before a drop removed",
        f"{R}/executor.py",
        "if not _may_leave_none(cluster) and not _drop_keeps_hydration(live, action):",
        "if False:  # MUTANT R02"),
    Mutation(
        "R03", "drops ordered before creates",
        f"{E}/safety.py",
        '    return [a for a in actions if a.kind != "drop_replica"] + [\n'
        '        a for a in actions if a.kind == "drop_replica"\n    ]',
        '    return [a for a in actions if a.kind == "drop_replica"] + [\n'
        '        a for a in actions if a.kind != "drop_replica"\n    ]  # MUTANT R03'),
    Mutation(
        "R04", "rate limit raised to 1000 actions per hour",
        f"{E}/safety.py",
        "max_actions_per_window: int = 10\n",
        "max_actions_per_window: int = 1000  # MUTANT R04\n"),
    Mutation(
        "R05", "rate limit counts only successful DDL (failed attempts uncounted)",
        f"{R}/evidence_reads.py",
        "= 'outcome' AND (executed OR error_message IS NOT NULL))\"",
        "= 'outcome' AND executed)\"  # MUTANT R05"),
    Mutation(
        "R06", "cooldown ignored: a strategy acts again at once",
        f"{E}/planner.py",
        "        if until is not None and now < until:\n",
        "        if False:  # MUTANT R06\n"),
    Mutation(
        "R07", "backoff ignored: a failed cluster is retried at once",
        f"{E}/safety.py",
        "    if backoff is None or now >= backoff.retry_at:\n",
        "    if True:  # MUTANT R07\n"),
    Mutation(
        "R08", "no re-check before CREATE (an existing replica of that name is created again)",
        f"{R}/executor.py",
        '        if action.kind == "create_replica":\n            if replica is None:\n',
        '        if action.kind == "create_replica":\n            if True:  # MUTANT R08\n'),
    Mutation(
        "R09", "no re-check before DROP (a gone or recreated replica is dropped anyway)",
        f"{R}/executor.py",
        "            if replica is None:\n"
        '                return Check(False, "already_true", "replica already gone")\n'
        "            if action.replica_id and replica.id and replica.id != action.replica_id:\n",
        "            if False:  # MUTANT R09\n"
        '                return Check(False, "already_true", "replica already gone")\n'
        "            if False:\n"),
    Mutation(
        "R10",
        "state persisted for a cluster whose action failed (the proposed state, not the old)",
        f"{E}/planner.py",
        "            new = replace(\n                cp.prev_state,\n",
        "            new = replace(\n                cp.state,  # MUTANT R10\n"),
    Mutation(
        "R11", "idle_suspend acts while statement logging samples nothing (rate 0)",
        f"{E}/strategies/idle_suspend.py",
        '    if not ctx.logging_visible:\n        return "statement logging cannot see',
        '    if False:  # MUTANT R11\n        return "statement logging cannot see'),
    Mutation(
        "R12", "signals SQL: an offline row with reason `initializing` counts as a crash",
        f"{R}/signals.py",
        "(coalesce(h.reason, '') <> 'initializing' AND f.first_online <= h.occurred_at)",
        "(f.first_online <= h.occurred_at)",
        equivalent=(
            "no history row can carry reason initializing: Materialize keeps a new replica's"
            " offline/initializing status in memory only (ClusterReplicaStatuses::"
            "initialize_cluster_replica_statuses, src/adapter/src/coord.rs) and appends a"
            " history row only for an orchestrator status, and no orchestrator reports"
            " initializing (src/orchestrator-process, src/orchestrator-kubernetes); the"
            " emulator refuses inject_crash(..., 'initializing') for that reason. The"
            " start-up rule that can be observed is R12b")),
    Mutation(
        "R12b",
        "signals SQL: an offline row before the first online one (start-up) counts as a crash",
        f"{R}/signals.py",
        " AND f.first_online <= h.occurred_at))",
        "))"),
    Mutation(
        "R13", "activity only from finished statements (a running query is no activity)",
        f"{R}/signals.py",
        "max(coalesce(finished_at, now()))",
        "max(finished_at)"),
    Mutation(
        "R14", "activity only from successful statements (a refused query is no activity)",
        f"{R}/signals.py",
        '" WHERE cluster_id IS NOT NULL"',
        "\" WHERE cluster_id IS NOT NULL AND finished_status = 'success'\""),
    Mutation(
        "R15", "a dry run writes audit rows",
        f"{R}/executor.py",
        '        if plan.dry_run:\n            return not_executed(plan, reason or "dry run")\n',
        '        if plan.dry_run:\n'
        '            self._audit_held_back(plan, reason or "dry run")  # MUTANT R15\n'
        '            return not_executed(plan, reason or "dry run")\n'),
    Mutation(
        "R16", "lease claim always granted",
        f"{R}/store.py",
        "return LeaseClaim(win_cycle == cycle_id, win_holder, win_cycle, expires)",
        "return LeaseClaim(True, win_holder, win_cycle, expires)  # MUTANT R16"),
    Mutation(
        "R17", "apply-time lease check always passes",
        f"{R}/cycle.py",
        "        holder = lease_holder(store, cycle_id=plan.cycle_id)\n",
        "        holder = None  # MUTANT R17\n"),
    Mutation(
        "R18", "replica identifiers not quoted in CREATE CLUSTER REPLICA",
        f"{R}/ddl.py",
        ".format(sql.Identifier(cluster), sql.Identifier(replica), sql.Literal(size))",
        ".format(sql.SQL(cluster), sql.SQL(replica), sql.Literal(size))  # MUTANT R18"),
    Mutation(
        "R19", "a never-queried cluster is suspended at once (its idle clock starts at the epoch)",
        f"{E}/strategies/idle_suspend.py",
        "    newest_replica = latest(*(r.created_at for r in ctx.cluster.replicas))\n"
        "    return latest(\n",
        "    newest_replica = latest(*(r.created_at for r in ctx.cluster.replicas))\n"
        "    if ctx.cluster.last_activity is None:  # MUTANT R19\n"
        '        return datetime.fromisoformat("1970-01-01T00:00:00+00:00")\n'
        "    return latest(\n"),
    Mutation(
        "R20",
        "idle clock from the last query only (not the row's update, a resume, a new replica)",
        f"{E}/strategies/idle_suspend.py",
        "    return latest(\n        ctx.cluster.last_activity,\n        row_updated_at,\n"
        "        st.last_resume_at,\n        newest_replica,\n        st.first_seen_at,\n    )\n",
        "    return ctx.cluster.last_activity  # MUTANT R20\n"),
    Mutation(
        "R21", "system clusters not excluded from scope",
        f"{E}/safety.py",
        '    if cluster.is_system or cluster.id.startswith("s"):\n',
        "    if False:  # MUTANT R21\n"),
    Mutation(
        "R22", "disabled rows counted as enabled",
        f"{E}/planner.py",
        "enabled = [r for r in rows.get(cluster.id, ()) if row_enabled(r)]",
        "enabled = list(rows.get(cluster.id, ()))  # MUTANT R22"),
    Mutation(
        "R23", "single-replica rail for clusters with sources/sinks removed",
        f"{E}/safety.py",
        "    if not cluster.hosts_sources_or_sinks or not creates:\n",
        "    if True:  # MUTANT R23\n"),
    Mutation(
        "R24", "the executor goes on with a cluster's actions after its first failed one",
        f"{R}/executor.py",
        "            if cluster.cluster_id in failed:\n",
        "            if False:  # MUTANT R24\n"),
    Mutation(
        "R25", "a managed resize without WAIT UNTIL READY (no graceful reconfiguration)",
        f"{E}/managed.py",
        "alter = Alter(size=want.size, wait=True, timeout_s=timeout)",
        "alter = Alter(size=want.size)  # MUTANT R25"),
    Mutation(
        "R26", "planning on a managed cluster during a graceful reconfiguration",
        f"{E}/managed.py",
        "    if rc is None or not rc.in_progress:\n        return None\n",
        "    if True:  # MUTANT R26\n        return None\n"),
    # ---- the 16 defects of issue 14 (level-triggered): each fix's rule reverted -------------
    Mutation(
        "L01", "cooldown flap: a strategy in its cooldown is skipped (its last decision vanishes)",
        f"{E}/planner.py",
        "            if not may_decide_while_cooling("
        "ctx=ctx, before=out.desired, after=result.desired):\n",
        "            if True:  # MUTANT L01\n"),
    Mutation(
        "L01b", "the cooldown delays a resume (a cluster serving nothing waits for it)",
        f"{E}/cooldown.py",
        "    if not ctx.owned_replicas():\n        return True",
        "    if False:  # MUTANT L01b\n        return True"),
    Mutation(
        "L02", "ownership ignores the audit trail (a lost state row disowns our replicas)",
        f"{E}/planner.py",
        "        if r.name in state.owned\n        or r.name in by_evidence\n",
        "        if r.name in state.owned  # MUTANT L02\n"),
    Mutation(
        "L03", "activity back to coalesce(finished_at, began_at): a running query is old activity",
        f"{R}/signals.py",
        "max(coalesce(finished_at, now()))",
        "max(coalesce(finished_at, began_at))"),
    Mutation(
        "L04", "the executor renders with the plan's cluster name, not the current one",
        f"{R}/executor.py",
        "live = dataclasses.replace("
        "action, cluster_name=check.cluster_name or action.cluster_name)",
        "live = action  # MUTANT L04"),
    Mutation(
        "L05", "the plan's seal is not verified",
        f"{R}/plan_seal.py",
        "    if not hmac.compare_digest(seal(plan_doc, key), given):\n",
        "    if False:  # MUTANT L05\n"),
    Mutation(
        "L05b", "the executor runs the plan's SQL text when it has one",
        f"{R}/executor.py",
        "    return dataclasses.replace(live, sql=render(live))",
        "    return dataclasses.replace(live, sql=action.sql or render(live))  # MUTANT L05b"),
    Mutation(
        "L06", "no resume without a remembered set (no evidence from audit or replica history)",
        f"{E}/strategies/idle_suspend.py",
        "    if not ctx.cluster.replicas and (st.remembered is None or st.suspended_at is None):\n",
        "    if False:  # MUTANT L06\n"),
    Mutation(
        "L07", "a partial suspend remembers only what is left, not the union",
        f"{E}/strategies/idle_suspend.py",
        "    remembered = with_interrupted(remembered, ctx=ctx)\n",
        "    # MUTANT L07\n"),
    Mutation(
        "L08", "releasing the lease fails when the lease table does not exist",
        f"{R}/store.py",
        "            if not is_missing_table(exc):\n                raise\n\n\ndef _newer",
        "            raise  # MUTANT L08\n\n\ndef _newer"),
    Mutation(
        "L09", "an unmanaged resize that never hydrates is never reported stuck",
        f"{E}/resize_stuck.py",
        "        if hydrated or age <= limit:\n",
        "        if True:  # MUTANT L09\n"),
    Mutation(
        "L10", "cross-row name and size conflicts not detected",
        f"{E}/row_config.py",
        "return _size_clash(configs=configs, cluster=cluster) or _name_clash(\n"
        "        configs=configs, cluster=cluster\n    )",
        "return None  # MUTANT L10"),
    Mutation(
        "L11", "a shadow row's error finding fails the run",
        f"{E}/shadow.py",
        'severity = "warning" if finding.severity == "error" else finding.severity',
        "severity = finding.severity  # MUTANT L11"),
    Mutation(
        "L11b", "a shadow row keeps its claim on a real replica",
        f"{E}/shadow.py",
        "    return {k: v for k, v in state.items() if not (isinstance(v, str) and ctx.exists(v))}",
        "    return dict(state)  # MUTANT L11b"),
    Mutation(
        "L12", "rows for an unknown cluster id are ignored without a word",
        f"{E}/unknown_rows.py",
        "    return tuple(found)\n",
        "    return ()  # MUTANT L12\n"),
    Mutation(
        "L13", "the CLI shows the plan only after persist (a failed persist hides what ran)",
        f"{PKG}/cli.py",
        "        # Before persist: if persist fails, what did run is still shown.\n"
        "        _print_plan(plan, result, json_out=args.json)\n"
        "        if paused and not args.json:\n"
        '            print(f"paused ({PAUSED_ENV} is set): '
        'nothing executed, audited as held back")\n'
        "        sys.stdout.flush()\n"
        "        outcome = cycle.persist(plan, result, live[-1], settings)\n",
        "        outcome = cycle.persist(plan, result, live[-1], settings)  # MUTANT L13\n"
        "        _print_plan(plan, result, json_out=args.json)\n"
        "        if paused and not args.json:\n"
        '            print(f"paused ({PAUSED_ENV} is set): '
        'nothing executed, audited as held back")\n'),
    Mutation(
        "L14", "schedule reasons without the date a week ahead (weekday only)",
        f"{E}/strategies/schedule_windows.py",
        'day = lt.format("ddd") if lt.date() == today else lt.format("ddd YYYY-MM-DD")',
        'day = lt.format("ddd")  # MUTANT L14'),
    Mutation(
        "L14b", "the burst stuck message counts an OOM kill twice (as an OOM and a crash)",
        f"{E}/strategies/burst.py",
        "others = max(0, crashes - ooms)",
        "others = crashes  # MUTANT L14b"),
    Mutation(
        "L15",
        "a late statement-log row (flush lag) of a query just before a suspend does not resume",
        f"{E}/strategies/idle_suspend.py",
        "seen_until = st.suspended_at - timedelta(seconds=ctx.log_flush_lag_s)",
        "seen_until = st.suspended_at  # MUTANT L15"),
    Mutation(
        "L15b", "idle measured to now, not to now - log_flush_lag_s",
        f"{E}/strategies/idle_suspend.py",
        "idle_s = max(0.0, seconds_between(start, now - lag))",
        "idle_s = max(0.0, seconds_between(start, now))  # MUTANT L15b"),
    Mutation(
        "L16", "the kill switch reads a word that is neither true nor false as off",
        f"{R}/flags.py",
        "    except ValueError:\n        return True\n",
        "    except ValueError:\n        return False  # MUTANT L16\n"),
)
# fmt: on


class AnchorError(Exception):
    """A mutation whose ``old`` text is not in its file exactly once, or whose result does not
    compile: the table needs re-anchoring."""


@dataclass
class SuiteRun:
    suite: str
    status: str  # "killed", "survived", "timeout"
    first_failure: str | None
    seconds: float
    returncode: int


@dataclass
class MutantResult:
    id: str
    rule: str
    file: str
    equivalent: str
    runs: list[SuiteRun] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return any(r.status != "survived" for r in self.runs)

    @property
    def killed_by(self) -> list[str]:
        return [
            f"{r.suite}::{r.first_failure or r.status}" for r in self.runs if r.status != "survived"
        ]

    @property
    def safety_kills(self) -> bool | None:
        run = next((r for r in self.runs if r.suite == "safety"), None)
        return None if run is None else run.status != "survived"

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)


def check_anchor(m: Mutation) -> str:
    """The file's text after the mutation; raises AnchorError naming the mutation."""
    path = ROOT / m.file
    if not path.is_file():
        raise AnchorError(f"{m.id} ({m.rule}): file {m.file} does not exist: re-anchor it")
    text = path.read_text(encoding="utf-8")
    count = text.count(m.old)
    if count != 1:
        where = "not found" if count == 0 else f"found {count} times"
        raise AnchorError(
            f"{m.id} ({m.rule}): the old text is {where} in {m.file} (the rule moved or"
            f" changed: re-anchor it, never skip it):\n{m.old}"
        )
    mutated = text.replace(m.old, m.new)
    try:
        compile(mutated, str(path), "exec")
    except SyntaxError as exc:
        raise AnchorError(f"{m.id}: the mutated {m.file} does not compile: {exc}") from None
    return mutated


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _restore(path: Path, original: bytes, atime_ns: int, mtime_ns: int) -> None:
    path.write_bytes(original)
    # The original mtime too: a .pyc of the original stays valid, and none of a mutant's
    # (PYTHONDONTWRITEBYTECODE keeps mutants from writing any) can be taken for it.
    os.utime(path, ns=(atime_ns, mtime_ns))
    if path.read_bytes() != original:
        raise SystemExit(f"FATAL: {path} was not restored byte for byte")


def restore_pending() -> None:
    """A run killed outright (SIGKILL, power loss) leaves its mutant in place: the original
    was saved in PENDING before the mutation, so the next run puts it back first."""
    if not PENDING.exists():
        return
    saved = json.loads(PENDING.read_text(encoding="utf-8"))
    path = ROOT / saved["file"]
    _restore(path, base64.b64decode(saved["original"]), saved["atime_ns"], saved["mtime_ns"])
    PENDING.unlink()
    print(f"restored {saved['file']} left mutated by an interrupted run ({saved['id']})",
          file=sys.stderr)  # fmt: skip


@contextmanager
def mutated(m: Mutation) -> Iterator[None]:
    """The file mutated inside the block; afterwards its original bytes and mtime, verified."""
    path = ROOT / m.file
    original = path.read_bytes()
    stat = path.stat()
    new_text = check_anchor(m)
    PENDING.write_text(
        json.dumps({
            "id": m.id, "file": m.file, "original": base64.b64encode(original).decode(),
            "atime_ns": stat.st_atime_ns, "mtime_ns": stat.st_mtime_ns,
        }),
        encoding="utf-8",
    )  # fmt: skip
    try:
        path.write_text(new_text, encoding="utf-8")
        yield
    finally:
        _restore(path, original, stat.st_atime_ns, stat.st_mtime_ns)
        PENDING.unlink()


_SUMMARY = re.compile(r"^(FAILED|ERROR) (\S+)")


def first_failure(stdout: str, junit: Path) -> str | None:
    """The first failing test id: pytest's short summary (-rfE), else the junit XML."""
    for line in stdout.splitlines():
        found = _SUMMARY.match(line)
        if found:
            return found.group(2)
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return None
    for case in tree.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").replace(".", "/")
            return f"{module}.py::{case.get('name')}"
    return None


def run_suite(suite: str, *, scenarios: int | None, timeout_s: float, verbose: bool) -> SuiteRun:
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if scenarios is not None:
        env["MZ_SCHEDCTL_SAFETY_SCENARIOS"] = str(scenarios)
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [
            sys.executable, "-m", "pytest", SUITES[suite], "-x", "-q", "-rfE",
            "-p", "no:randomly", "-p", "no:cacheprovider", f"--junitxml={junit}",
        ]  # fmt: skip
        started = time.monotonic()
        # Its own process group, so a timeout or Ctrl-C ends the emulators it started too.
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, _ = proc.communicate(timeout=timeout_s)
            status = "survived" if proc.returncode == 0 else "killed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            status = "timeout"
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        seconds = time.monotonic() - started
        failure = first_failure(out, junit) if status == "killed" else None
        if status == "killed" and failure is None:
            failure = f"pytest exit {proc.returncode}"
        if verbose or (status == "killed" and failure.startswith("pytest exit")):
            sys.stderr.write(out[-4000:])
        return SuiteRun(suite, status, failure, round(seconds, 1), proc.returncode)


def check_tree() -> None:
    """The venv must import the package from this tree, or no mutation would be seen."""
    found = subprocess.run(
        [sys.executable, "-c", f"import {PKG}; print({PKG}.__file__)"],
        cwd="/", capture_output=True, text=True, check=False,
    )  # fmt: skip
    where = Path(found.stdout.strip() or "/nonexistent").resolve()
    if found.returncode != 0 or ROOT not in where.parents:
        raise SystemExit(
            f"{sys.executable} imports {PKG} from {where}, not from {ROOT}: run this tree's"
            " .venv/bin/python (scripts/test.sh creates it)"
        )


def markdown(results: list[MutantResult]) -> str:
    lines = [
        "| id | rule | killed by (suite::test) | safety alone kills? | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        killed = "<br>".join(r.killed_by) if r.killed else "**SURVIVED**"
        if not r.killed and r.equivalent:
            killed = f"survived: equivalent ({r.equivalent})"
        safety = {True: "yes", False: "no", None: "not run"}[r.safety_kills]
        lines.append(f"| {r.id} | {r.rule} | {killed} | {safety} | {r.seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", help="comma-separated mutation ids")
    parser.add_argument("--all-suites", action="store_true", help="every suite for every mutant")
    parser.add_argument(
        "--suites",
        default="safety,engine,materialize",
        help=f"suites in order, from {', '.join(SUITES)} (default: safety,engine,materialize)",
    )
    parser.add_argument(
        "--scenarios", type=int, default=None,
        help="MZ_SCHEDCTL_SAFETY_SCENARIOS for tests/safety (default: the suite's default)",
    )  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="per suite run")
    parser.add_argument(
        "--skip-baseline", action="store_true",
        help="do not run the unmutated suites first (only when they just passed)",
    )  # fmt: skip
    parser.add_argument("--json", default="mutation-results.json", help="results file")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = parser.parse_args(argv)

    chosen = list(MUTATIONS)
    if args.only:
        wanted = [x.strip() for x in args.only.split(",") if x.strip()]
        known = {m.id for m in MUTATIONS}
        unknown = [x for x in wanted if x not in known]
        if unknown:
            print(f"unknown mutation id(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        by_id = {m.id: m for m in MUTATIONS}
        chosen = [by_id[x] for x in dict.fromkeys(wanted)]  # in the order given
    if args.list:
        for m in chosen:
            extra = " (argued equivalent)" if m.equivalent else ""
            print(f"{m.id:5} {m.file}: {m.rule}{extra}")
        return 0
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    if not suites or any(s not in SUITES for s in suites):
        print(f"--suites: choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2

    restore_pending()
    # Every anchor before anything is mutated: a moved rule stops the run at once.
    errors = []
    for m in chosen:
        try:
            check_anchor(m)
        except AnchorError as exc:
            errors.append(str(exc))
    if errors:
        print("\n\n".join(errors), file=sys.stderr)
        return 2
    check_tree()

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    baseline: list[SuiteRun] = []
    if not args.skip_baseline:
        for suite in suites:
            run = run_suite(suite, scenarios=args.scenarios, timeout_s=args.timeout_s,
                            verbose=args.verbose)  # fmt: skip
            print(f"baseline {suite}: {run.status} in {run.seconds:.0f}s", file=sys.stderr)
            baseline.append(run)
            if run.status != "survived":
                print(
                    f"the unmutated tree fails {suite} ({run.first_failure}): fix the baseline"
                    " first, a red suite would make every mutant look killed",
                    file=sys.stderr,
                )
                return 2
    results: list[MutantResult] = []
    try:
        for m in chosen:
            result = MutantResult(m.id, m.rule, m.file, m.equivalent)
            with mutated(m):
                for suite in suites:
                    run = run_suite(suite, scenarios=args.scenarios, timeout_s=args.timeout_s,
                                    verbose=args.verbose)  # fmt: skip
                    result.runs.append(run)
                    if run.status != "survived" and not args.all_suites:
                        break
            verdict = ", ".join(result.killed_by) or "SURVIVED"
            print(f"{m.id}: {verdict} ({result.seconds:.0f}s)", file=sys.stderr)
            results.append(result)
    except KeyboardInterrupt:
        print("interrupted: the mutated file was restored; partial results below", file=sys.stderr)
    doc = {
        "root": str(ROOT),
        "suites": suites,
        "all_suites": args.all_suites,
        "scenarios": args.scenarios,
        "baseline": [asdict(r) for r in baseline],
        "mutants": [
            {**asdict(r), "killed": r.killed, "killed_by": r.killed_by,
             "safety_kills": r.safety_kills}
            for r in results
        ],
    }  # fmt: skip
    Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    survivors = [r.id for r in results if not r.killed and not r.equivalent]
    safety_killed = sum(1 for r in results if r.safety_kills)
    print(
        f"\n{len(results)} mutants: {sum(r.killed for r in results)} killed,"
        f" {len(survivors)} survived ({', '.join(survivors) or 'none'}),"
        f" tests/safety alone killed {safety_killed}",
    )
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
