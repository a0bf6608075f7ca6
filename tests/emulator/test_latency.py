"""``--latency-ms``: every message arrives N ms late each way, as over a wire to a remote
region, while the protocol (pipelining, COPY, errors, cancel, closes) works unchanged.

Only lower bounds are asserted on single round trips: the delay is a fact of the mechanism,
an upper bound would be a fact about the machine. The pipeline test compares against the
lower bound of the serial alternative (K round trips), with a factor of two to spare."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg2
import pytest

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

DELAY_MS = 200
ROUND_TRIP_S = 2 * DELAY_MS / 1000


@pytest.fixture(scope="module")
def slow() -> Iterator[Emulator]:
    with run_emulator(port=0, latency_ms=DELAY_MS) as emu:
        yield emu


@pytest.fixture
def conn(slow: Emulator) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(slow.url, autocommit=True) as c:
        yield c


def _latency_threads() -> int:
    return sum(t.name.startswith("mz-emulator-latency-") for t in threading.enumerate())


def test_one_round_trip_costs_twice_the_delay(conn: psycopg.Connection[Any]) -> None:
    for _ in range(3):
        start = time.monotonic()
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert time.monotonic() - start >= ROUND_TRIP_S


def test_psycopg2_round_trip_costs_twice_the_delay(slow: Emulator) -> None:
    c = psycopg2.connect(slow.url)
    c.autocommit = True
    try:
        cur = c.cursor()
        start = time.monotonic()
        cur.execute("SELECT name FROM mz_clusters WHERE id = 'u1'")
        assert cur.fetchall() == [("quickstart",)]
        assert time.monotonic() - start >= ROUND_TRIP_S
    finally:
        c.close()


def test_a_pipeline_pays_the_delay_about_once(conn: psycopg.Connection[Any]) -> None:
    k = 10
    conn.execute("CREATE TABLE IF NOT EXISTS piped (a int)")
    start = time.monotonic()
    with conn.pipeline():
        for i in range(k):
            conn.execute("INSERT INTO piped VALUES (%s)", (i,))
    elapsed = time.monotonic() - start
    # Serially these K statements cannot take less than K round trips (4 s); a per-message
    # sleep in the session would cost that. A pipe with latency costs about one.
    assert ROUND_TRIP_S <= elapsed < k * ROUND_TRIP_S * 0.5
    assert conn.execute("SELECT count(*), sum(a) FROM piped").fetchone() == (k, sum(range(k)))


def test_copy_in_and_out_through_the_delay(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS copied (a int, b text)")
    cur = conn.cursor()
    # More than one 64 KiB chunk, so the copy spans several reads of the pipe.
    rows = [(i, f"row {i} " + "x" * 100) for i in range(2000)]
    start = time.monotonic()
    with cur.copy("COPY copied (a, b) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    # COPY then its data: two round trips.
    assert time.monotonic() - start >= 2 * ROUND_TRIP_S
    assert cur.rowcount == len(rows)
    with cur.copy("COPY (SELECT a, b FROM copied ORDER BY a) TO STDOUT") as copy:
        back = [(int(a), b) for a, b in copy.rows()]
    assert back == rows


def test_errors_leave_the_session_usable(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.UndefinedColumn):
        conn.execute("SELECT no_such_column")
    with pytest.raises(psycopg.Error) as err:
        conn.execute("CREATE CLUSTER REPLICA quickstart.r9 (SIZE = '25cc')")
    assert "cannot modify managed cluster quickstart" in str(err.value)
    # A pipeline up to its Sync is one implicit transaction: an error in it skips the rest
    # and rolls back what ran before it, as in PostgreSQL and Materialize (its
    # test/pgtest/transactions.pt: "An error in extended protocol ignores other statements
    # until Sync").
    conn.execute("CREATE TABLE IF NOT EXISTS aborted (a int)")
    with pytest.raises(psycopg.errors.UndefinedTable), conn.pipeline():
        conn.execute("INSERT INTO aborted VALUES (1)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")
        conn.execute("INSERT INTO aborted VALUES (2)")
    assert conn.execute("SELECT count(*) FROM aborted").fetchone() == (0,)
    conn.execute("INSERT INTO aborted VALUES (3)")
    assert conn.execute("SELECT array_agg(a) FROM aborted").fetchone() == ([3],)


def test_closes_propagate_both_ways_and_the_pipes_end(slow: Emulator) -> None:
    client = slow.connect()
    assert client.execute("SELECT 1").fetchone() == (1,)
    assert slow.disconnect_all() >= 1  # the emulator closes: the client hears it
    with pytest.raises(psycopg.OperationalError):
        client.execute("SELECT 1")
    client.close()
    with slow.connect() as other:
        assert other.execute("SELECT 1").fetchone() == (1,)
    # The client closes: its pipe's four threads finish (no leak per connection).
    deadline = time.monotonic() + 30
    while _latency_threads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _latency_threads() == 0


def test_cli_latency_option_and_cancel_through_it(tmp_path: Path) -> None:
    # In its own process: libpq's PQcancel holds the GIL while it waits on the pipe.
    proc = subprocess.Popen(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--latency-ms", str(DELAY_MS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url, proc.communicate(timeout=60)[1]
        with psycopg.connect(url, autocommit=True) as c:
            start = time.monotonic()
            c.execute("SELECT 1")
            assert time.monotonic() - start >= ROUND_TRIP_S
            timer = threading.Timer(1.0, c.cancel)
            timer.start()
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("SELECT pg_sleep(60)")
            timer.join()
            assert c.execute("SELECT 1").fetchone() == (1,)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


def test_cli_refuses_a_negative_latency(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--latency-ms", "-1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mz-schedctl-emulator: --latency-ms must be 0 or more"
