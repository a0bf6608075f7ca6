"""A statement that runs across cycles (a long query or a SUBSCRIBE begun and finished later),
as tests/materialize/test_mz_running_activity.py holds one open."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import psycopg
from mzsupport import q
from safetysupport import Observer

from mz_schedctl_provider.emulator.control import Emulator

RUNNING_APP = "safety-long-query"


class Gate:
    """A statement that runs for as long as the test wants, as tests/materialize/
    test_mz_running_activity.py holds one: a plpgsql function meets a lock taken straight in
    the emulator's PostgreSQL, so the query is logged as begun (finished_at NULL) and ends when
    the lock is released, whatever the emulated clock does meanwhile. One at a time."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.admin: psycopg.Connection[Any] | None = None
        self.thread: threading.Thread | None = None
        self.cluster: str | None = None
        self.began: datetime | None = None

    @staticmethod
    def install(emu: Emulator) -> None:
        emu.execute("CREATE TABLE IF NOT EXISTS safety_gate (a int)")
        emu.execute("CREATE TABLE IF NOT EXISTS safety_gated (a int)")
        emu.execute("INSERT INTO safety_gated VALUES (1)")
        with emu.backend.connect_admin() as admin:
            admin.execute(
                "CREATE OR REPLACE FUNCTION public.safety_gate() RETURNS bigint LANGUAGE plpgsql"
                " AS $$ BEGIN RETURN (SELECT count(*) FROM public.safety_gate); END $$"
            )

    @property
    def running(self) -> bool:
        return self.admin is not None

    def start(self, obs: Observer, cluster: str) -> None:
        self.admin = self.emu.backend.connect_admin()
        self.admin.execute("BEGIN")
        self.admin.execute("LOCK TABLE public.safety_gate IN ACCESS EXCLUSIVE MODE")
        user = psycopg.connect(self.emu.url, autocommit=True, application_name=RUNNING_APP)
        user.execute(f"SET cluster = {q(cluster)}")

        def run() -> None:
            try:
                user.execute("SELECT public.safety_gate() FROM safety_gated").fetchall()
            except psycopg.Error:
                pass  # its replica went away under it: still a statement that ran
            finally:
                user.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        self.cluster = cluster
        for _ in range(1000):
            rows = obs.admin(
                "SELECT began_at FROM mz_emulator.statement_log"
                " WHERE application_name = %s AND finished_at IS NULL",
                (RUNNING_APP,),
            )
            if rows:
                self.began = rows[0][0]
                return
            time.sleep(0.01)
        raise AssertionError("the long query never showed up in the statement log")

    def finish(self) -> None:
        if self.admin is None:
            return
        self.admin.rollback()
        self.admin.close()
        self.admin = None
        if self.thread is not None:
            self.thread.join(timeout=30)
            assert not self.thread.is_alive(), "the long query never finished"
        self.thread = None
        self.cluster = None
        self.began = None
