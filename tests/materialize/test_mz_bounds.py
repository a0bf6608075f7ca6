"""Every controller statement is bounded twice: Materialize's statement_timeout on the session
(default 120 s, the connection's to change) and a client-side bound (the server's plus a grace),
past which the connection is closed and the task or CLI fails with an error naming the
statement's purpose. A statement the server never answers (a hung server, a network that drops
packets silently) otherwise waits forever: libpq has no read timeout."""

from __future__ import annotations

from typing import Any

import pytest
from mzsupport import cli, init_tables, make_cluster

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.engine.models import Action, Alter
from mz_schedctl_provider.runtime import executor
from mz_schedctl_provider.runtime.connection_settings import client_timeout, session_options
from mz_schedctl_provider.runtime.db import (
    DEFAULT_CLIENT_TIMEOUT_S,
    Database,
    NoAnswer,
)


def test_sessions_get_the_default_server_timeout(emulator: Emulator) -> None:
    db = Database.connect(emulator.url)
    try:
        assert db.query("SHOW statement_timeout") == [("2min",)]
        assert db.client_timeout_s == DEFAULT_CLIENT_TIMEOUT_S == 150
    finally:
        db.close()
    db = Database.connect(emulator.url, statement_timeout_s=10)
    try:
        assert db.query("SHOW statement_timeout") == [("10s",)]
        assert db.client_timeout_s == 40  # the server's own timeout answers first
    finally:
        db.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_statement_with_no_answer_fails_naming_its_purpose(
    emulator: Emulator, driver: str
) -> None:
    """A statement the server holds (a delay fault, no server timeout) fails at the client's
    bound with an error naming what it was for; the connection is closed, not left hanging."""
    emulator.inject_fault(r"^SELECT 42\b", "delay", "30")
    if driver == "psycopg":
        db = Database.connect(emulator.url, statement_timeout_s=0, client_timeout_s=1)
    else:
        import psycopg2

        db = Database(psycopg2.connect(emulator.url), client_timeout_s=1)
    try:
        with pytest.raises(NoAnswer) as caught:
            db.query("SELECT 42", purpose="reading the answer to everything")
        message = str(caught.value)
        assert "no answer from Materialize within 1 s to reading the answer" in message
        assert "client_timeout" in message
    finally:
        db.close()
        emulator.execute("SELECT mz_emulator.clear_faults()")


def test_cli_apply_fails_with_one_line_when_materialize_stops_answering(
    emulator: Emulator,
) -> None:
    init_tables(emulator)
    make_cluster(emulator, "bounded")
    emulator.inject_fault(r"^\s*INSERT INTO .*mz_cluster_strategy_leases", "delay", "60")
    try:
        done = cli("apply", "--statement-timeout", "0", "--client-timeout", "2", url=emulator.url)
    finally:
        emulator.execute("SELECT mz_emulator.clear_faults()")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "no answer from Materialize within 2 s" in done.stderr
    # The next cycle is not held back by anything the bounded one left.
    assert cli("apply", url=emulator.url).returncode == 0


def test_the_hook_bounds_from_the_connection_extras() -> None:
    assert session_options({}) == "-c statement_timeout=120000"
    assert session_options({"statement_timeout": 0}) is None
    assert session_options({"statement_timeout": "5"}) == "-c statement_timeout=5000"
    assert client_timeout({}) == 150
    assert client_timeout({"statement_timeout": 5}) == 35
    assert client_timeout({"client_timeout": 7}) == 7
    with pytest.raises(ValueError, match="client_timeout must be a number of seconds"):
        client_timeout({"client_timeout": "soon"})
    with pytest.raises(ValueError, match="statement_timeout cannot be negative"):
        session_options({"statement_timeout": -1})


def _alter(wait: bool, timeout_s: float | None) -> Any:
    return Action(
        id="a",
        cluster_id="u9",
        cluster_name="m",
        kind="alter_cluster",
        replica_name="",
        size=None,
        strategy="target_size",
        reasons=(),
        alter=Alter(size="100cc", wait=wait, timeout_s=timeout_s),
    )


def test_a_graceful_resize_is_bounded_by_its_own_timeout() -> None:
    """Before v26.35 ALTER ... WAIT UNTIL READY returns only when the new replicas are ready:
    its bound is its TIMEOUT plus the grace, not the connection's."""
    assert executor._ddl_bound(_alter(True, 1800)) == 1830
    assert executor._ddl_bound(_alter(True, None)) == 3630
    assert executor._ddl_bound(_alter(False, None)) is None
