"""Secrets: with a sentinel password on the emulator, the password appears in no log record,
no CLI output (stdout or stderr, success or failure), no stage document (the XCom contract),
no audit or state row, no statement the emulator logged, and no exception text, including
failures forced on purpose (refused DDL, lost connections, bad URLs, wrong ports)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from mzsupport import add_strategy, cli, init_tables, make_cluster

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database, DatabaseError

SENTINEL = "S3ntinel-pw-7c1f"


@pytest.fixture(scope="module")
def locked() -> Iterator[Emulator]:
    with run_emulator(port=0, log_flush_s=0, password=SENTINEL, sample_rate=1.0) as emu:
        init_tables(emu)
        yield emu


def with_password(emu: Emulator, password: str = SENTINEL) -> str:
    return emu.url.replace("materialize@", f"materialize:{password}@", 1)


def everything_stored(emu: Emulator) -> str:
    """Every row of the controller's tables and of the emulator's statement log, as text."""
    texts = []
    for table in (
        "mz_cluster_strategies",
        "mz_cluster_strategy_state",
        "mz_cluster_strategy_actions",
        "mz_cluster_strategy_leases",
    ):
        texts += [json.dumps(r, default=str) for r in emu.execute(f"SELECT * FROM {table}")]
    with emu.backend.connect_admin() as conn:
        rows = conn.execute("SELECT * FROM mz_emulator.statement_log").fetchall()
    texts += [json.dumps(r, default=str) for r in rows]
    return "\n".join(texts)


def test_no_secret_in_logs_documents_rows_or_errors(
    locked: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_password(locked)
    cid = make_cluster(locked, "sec1", objects="index")
    add_strategy(locked, cid, "target_size", {"target_size": "100cc"})
    add_strategy(locked, cid, "burst", {"burst_replica_size": "800cc"})
    cid2 = make_cluster(locked, "sec2", objects=None)
    add_strategy(locked, cid2, "target_size", {"target_size": "50cc"})
    # Forced failures: one refused DDL, one connection lost after its DDL.
    locked.inject_fault(r'^CREATE CLUSTER REPLICA "sec1"\."burst"', "error", "refused", "53000")
    locked.inject_fault(r'^CREATE CLUSTER REPLICA "sec2"', "drop_after")
    seen: list[Any] = []
    db = Database.connect(url)
    live = [db]
    try:
        cycle_id = cycle.new_cycle_id("sec")
        settings = cycle.CycleSettings()
        cycle.claim_lease(db, settings, cycle_id=cycle_id)
        signals = cycle.collect(db, settings, filter_clusters="sec.*")
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters="sec.*")

        def reconnect() -> Database:
            live.append(Database.connect(url))
            return live[-1]

        result = cycle.apply(plan, db, settings, reconnect=reconnect)
        outcome = cycle.persist(plan, result, live[-1], settings)
        seen += [signals, plan, result, outcome.to_json()]
        assert outcome.problems, "the refused DDL must fail the run"
    finally:
        for conn in live:
            conn.close()
    # Exceptions: wrong password, closed port, malformed URLs that quote the password.
    bad_urls = [
        with_password(locked, SENTINEL + "x"),
        with_password(locked).replace(f":{locked.port}/", ":1/"),
        with_password(locked, SENTINEL + "%ZZ"),
        with_password(locked, SENTINEL + " space"),
        f"host=127.0.0.1 port={locked.port} password= {SENTINEL} dbname",
    ]
    for bad in bad_urls:
        with pytest.raises(DatabaseError) as info:
            Database.connect(bad, connect_timeout_s=2)
        seen.append(str(info.value))
        seen.append(repr(info.value))
    text = json.dumps(seen, default=str)
    assert SENTINEL not in text
    assert SENTINEL not in caplog.text
    assert SENTINEL not in everything_stored(locked)
    locked.execute("DELETE FROM mz_cluster_strategies")


@pytest.mark.parametrize(
    "args",
    [
        ["init"],
        ["plan", "--json"],
        ["apply", "--json"],
        ["apply"],
        ["status", "--json"],
        ["status"],
        ["wipe-state", "--filter-clusters", "nothing"],
    ],
    ids=lambda a: "-".join(a),
)
def test_no_secret_in_cli_output(locked: Emulator, args: list[str]) -> None:
    name = "cli_" + "_".join(re.sub(r"\W", "", a) for a in args)
    cid = make_cluster(locked, name)
    add_strategy(locked, cid, "target_size", {"target_size": "100cc"})
    add_strategy(locked, cid, "burst", {"burst_replica_size": "800cc"})
    locked.inject_fault(r"^CREATE CLUSTER REPLICA .*\"burst\"", "error", "refused", "53000")
    for how in ("flag", "env"):
        if how == "flag":
            done = cli(*args, url=with_password(locked))
        else:
            done = cli(*args, env={"DATABASE_URL": with_password(locked)})
        assert done.returncode in (0, 1), done.stdout + done.stderr
        assert SENTINEL not in done.stdout + done.stderr
    locked.execute("SELECT mz_emulator.clear_faults()")
    assert SENTINEL not in everything_stored(locked)
    locked.execute("DELETE FROM mz_cluster_strategies")


@pytest.mark.parametrize(
    "url_of",
    [
        lambda e: with_password(e, SENTINEL + "x"),  # wrong password
        lambda e: with_password(e).replace(f":{e.port}/", ":1/"),  # nothing listening
        lambda e: with_password(e, SENTINEL + "%ZZ"),  # malformed escape around the password
        lambda e: with_password(e, SENTINEL + " sp"),  # a space in the password
    ],
    ids=["wrong-password", "closed-port", "bad-escape", "space"],
)
def test_no_secret_when_the_cli_cannot_connect(locked: Emulator, url_of: Any) -> None:
    for command in ("plan", "apply", "status"):
        done = cli(command, url=url_of(locked))
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert SENTINEL not in done.stdout + done.stderr
