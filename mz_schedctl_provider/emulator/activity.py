"""Statement logging as Materialize does it: a row when a statement begins (finished_at NULL),
completed when it ends, sampled at min(session rate, system max rate)."""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

# Materialize never logs statements of its internal superuser.
_UNLOGGED_USERS = frozenset({"mz_system", "mz_support"})


@dataclass
class LogEntry:
    """A logged statement still waiting for its outcome."""

    id: uuid.UUID


class SystemSettings:
    """Cached system variables (the sample rates); refreshed after emulated DDL or control calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] | None = None

    def mark_stale(self) -> None:
        self._values = None

    def get(self, name: str, db: psycopg.Connection[Any]) -> str:
        with self._lock:
            if self._values is None:
                rows = db.execute("SELECT name, value FROM mz_emulator.settings").fetchall()
                self._values = {str(k): str(v) for k, v in rows}
            return self._values.get(name, "")


class StatementLog:
    """Writes mz_emulator.statement_log, the table behind mz_statement_execution_history."""

    def __init__(self, settings: SystemSettings, rng: random.Random) -> None:
        self._settings = settings
        self._rng = rng
        self._rng_lock = threading.Lock()

    def session_default_rate(self, db: psycopg.Connection[Any]) -> str:
        return self._settings.get("statement_logging_default_sample_rate", db) or "0"

    def begin(
        self,
        db: psycopg.Connection[Any],
        *,
        session_id: uuid.UUID,
        user: str,
        session_rate: str,
        application_name: str,
        sql: str,
        cluster_id: str | None,
        cluster_name: str | None,
        strategy: str | None,
    ) -> LogEntry | None:
        """Log a statement that starts now, if sampling picks it."""
        if user in _UNLOGGED_USERS:
            return None
        rate = min(_as_rate(session_rate), _as_rate(self._settings.get(_MAX_RATE, db)))
        with self._rng_lock:
            if rate <= 0 or self._rng.random() >= rate:
                return None
        entry = LogEntry(uuid.uuid4())
        db.execute(
            "INSERT INTO mz_emulator.statement_log (id, session_id, prepared_statement_id,"
            " sample_rate, cluster_id, application_name, cluster_name, database_name,"
            " search_path, transaction_isolation, execution_timestamp, mz_version, began_at,"
            " execution_strategy, sql) VALUES (%s, %s, %s, %s, %s, %s, %s, 'materialize',"
            " ARRAY['public'], 'strict serializable',"
            # The version mz_version() reports, as Materialize logs its own build's.
            " floor(extract(epoch FROM mz_emulator.now()) * 1000),"
            " mz_emulator.setting('mz_version'), mz_emulator.now(),"
            " %s, %s)",
            (
                entry.id,
                session_id,
                uuid.uuid4(),
                rate,
                cluster_id,
                application_name,
                cluster_name,
                strategy,
                sql,
            ),
        )
        return entry

    @staticmethod
    def finish(
        db: psycopg.Connection[Any],
        entry: LogEntry,
        *,
        status: str,
        error: str | None = None,
        rows: int | None = None,
    ) -> None:
        # The first end wins, as in Materialize (end_statement_execution): a connection that
        # drops while the relay is finishing the same statement must not overwrite it.
        db.execute(
            "UPDATE mz_emulator.statement_log SET finished_at = mz_emulator.now(),"
            " finished_status = %s, error_message = %s, rows_returned = %s"
            " WHERE id = %s AND finished_at IS NULL",
            (status, error, rows, entry.id),
        )


_MAX_RATE = "statement_logging_max_sample_rate"


def _as_rate(text: str) -> float:
    try:
        return max(0.0, min(1.0, float(text)))
    except ValueError:
        return 0.0
