"""A statement still running on a cluster is activity now (behaviour.md "Liveness"): a
40-minute query or a SUBSCRIBE must not see its cluster suspended under it. The statement is
held open by a lock taken straight in the emulator's PostgreSQL, so it runs exactly as long as
the test wants, while the emulated clock moves past idle_after_s."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from mzsupport import add_strategy, connect, drop_strategies, init_tables, make_cluster, run_cycle

from mz_schedctl_provider.emulator.control import Emulator, run_emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with run_emulator(port=0, sample_rate=1.0, log_flush_s=0) as emulator:
        init_tables(emulator)
        emulator.execute("CREATE TABLE gated (a int)")
        emulator.execute("INSERT INTO gated VALUES (1)")
        emulator.execute("CREATE TABLE gate_t (a int)")
        with emulator.backend.connect_admin() as admin:
            # plpgsql: the lock is met when the statement runs, not when it is parsed.
            admin.execute(
                "CREATE FUNCTION public.gate() RETURNS bigint LANGUAGE plpgsql AS"
                " $$ BEGIN RETURN (SELECT count(*) FROM public.gate_t); END $$"
            )
        yield emulator
        drop_strategies(emulator)


def _wait(check: Any, what: str) -> None:
    for _ in range(1000):
        if check():
            return
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def _suspends(run: Any) -> bool:
    return any(a["kind"] == "drop_replica" for a in run.actions(status="planned"))


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_long_running_query_keeps_its_cluster_on(emu: Emulator, driver: str) -> None:
    cid = make_cluster(emu, "busy", objects=None)
    add_strategy(emu, cid, "idle_suspend", {"idle_after_s": 60})
    emu.advance(30)
    user = psycopg.connect(emu.url, autocommit=True, application_name="analyst")
    user.execute("SET cluster = busy")
    with emu.backend.connect_admin() as admin:
        admin.execute("BEGIN")
        admin.execute("LOCK TABLE public.gate_t IN ACCESS EXCLUSIVE MODE")
        answers: list[Any] = []
        query = threading.Thread(
            target=lambda: answers.append(
                user.execute("SELECT public.gate() FROM gated").fetchall()
            ),
            daemon=True,
        )
        query.start()
        _wait(
            lambda: (
                emu.execute(
                    "SELECT count(*) FROM mz_internal.mz_statement_execution_history_redacted"
                    " WHERE application_name = 'analyst' AND finished_at IS NULL"
                )[0][0]
                == 1
            ),
            "the query running in the statement log",
        )
        emu.advance(40 * 60)  # a 40-minute query, idle_after_s long past
        db = connect(emu, driver)
        try:
            during = run_cycle(db, only="busy")
        finally:
            db.close()
        admin.execute("ROLLBACK")
    query.join(timeout=60)
    user.close()
    assert answers == [[(0,)]]  # it ran to its end, on the cluster it kept on
    assert not _suspends(during), during.plan
    # Once it has finished, the idle clock runs from its end: suspended after idle_after_s
    # plus the statement log's flush lag (log_flush_lag_s, 5 s by default).
    emu.advance(66)
    db = connect(emu, driver)
    try:
        after = run_cycle(db, only="busy")
    finally:
        db.close()
    assert _suspends(after), after.plan
