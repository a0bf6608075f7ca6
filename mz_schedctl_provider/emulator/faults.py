"""Fault injection: faults are rows in mz_emulator.faults (so tests can add them over SQL);
the proxy keeps them in memory and applies each to the next statement whose text matches."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class Fault:
    """One armed fault.

    :param action: ``error`` fails the statement, ``drop_before`` drops the connection instead of
        running it, ``drop_after`` runs it and drops the connection before the client hears back,
        ``delay`` makes it slow: it waits ``message`` seconds first, and past the session's
        statement_timeout it is cancelled (57014) without running.
    """

    id: int
    pattern: re.Pattern[str]
    action: str
    message: str
    sqlstate: str

    @property
    def delay_s(self) -> float:
        """Seconds a ``delay`` fault waits (its message; the table's CHECK keeps it numeric)."""
        try:
            return max(0.0, float(self.message))
        except ValueError:
            return 0.0


class FaultBook:
    """The armed faults, shared by all sessions; reloaded after any call into mz_emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._stale = True

    def mark_stale(self) -> None:
        self._stale = True

    def take(self, sql: str, db: psycopg.Connection[Any]) -> Fault | None:
        """The first armed fault matching this statement, consumed once."""
        with self._lock:
            if self._stale:
                self._reload(db)
            for fault in self._faults:
                if fault.pattern.search(sql):
                    db.execute(
                        "UPDATE mz_emulator.faults SET remaining = remaining - 1 WHERE id = %s",
                        (fault.id,),
                    )
                    self._reload(db)
                    return fault
            return None

    def _reload(self, db: psycopg.Connection[Any]) -> None:
        rows = db.execute(
            "SELECT id, pattern, action, message, sqlstate FROM mz_emulator.faults"
            " WHERE remaining > 0 ORDER BY id"
        ).fetchall()
        faults = []
        for fid, pattern, action, message, sqlstate in rows:
            try:
                compiled = re.compile(pattern)
            except re.error:
                compiled = re.compile(re.escape(pattern))
            faults.append(Fault(fid, compiled, action, message or "injected fault", sqlstate))
        self._faults = faults
        self._stale = False
