"""Statement-log flush lag, as Materialize has it: the coordinator buffers statement-log events
and writes them to mz_statement_execution_history on a timer (every 5 s,
``STATEMENT_LOGGING_WRITE_INTERVAL`` in src/adapter/src/coord/statement_logging.rs; some
releases read the interval from the system variable ``statement_logging_flush_interval``).
So a statement's row (finished_at NULL) and its end become visible only at the next flush.

Like the rest of the simulation this is derived at read time from the emulator clock: flush
ticks fall on multiples of the interval ``I`` of the emulated epoch, and an event at ``t`` is
visible once a tick passed after it (``t < floor(now / I) * I``), so ``mz_emulator.advance()``
flushes at once and tests never sleep. An interval of 0 publishes every event immediately.
The interval lives in ``mz_emulator.settings`` (``emulator_log_flush_interval``), set by
``mz_emulator.set_log_flush(interval)``.

Until its end is flushed a row shows the running form Materialize writes at begin
(``pack_statement_began_execution_update`` in src/adapter/src/statement_logging.rs): finished_at,
finished_status, error_message, result_size, rows_returned and execution_strategy all NULL;
execution_strategy stays NULL after an error, cancel or abort too
(``pack_full_statement_execution_update`` in src/adapter/src/coord/statement_logging.rs).
"""

from __future__ import annotations

from typing import Any

import psycopg

# Materialize's default flush interval (seconds).
DEFAULT_FLUSH_S = 5.0
SETTING = "emulator_log_flush_interval"

# Views: installed after mz_emulator.env exists and before the mz_internal log views.
VIEWS_SQL = """
-- The last flush tick at or before now: everything before it is written. One row, so the log
-- view compares each row with a constant (cheap, and the began_at index still applies).
CREATE VIEW mz_emulator.log_clock AS
SELECT CASE WHEN f.every <= 0 THEN 'infinity'::timestamptz
            ELSE to_timestamp(floor(extract(epoch FROM e.now) / f.every) * f.every) END
           AS flushed_through
FROM mz_emulator.env e
CROSS JOIN LATERAL (
    SELECT COALESCE((SELECT extract(epoch FROM value::interval)::float8 FROM mz_emulator.settings
                      WHERE name = 'emulator_log_flush_interval'), 0) AS every
) f;

-- The statement log as a reader sees it now: rows whose begin was flushed, ends only once
-- flushed too.
CREATE VIEW mz_emulator.statement_log_visible AS
SELECT l.id, l.session_id, l.prepared_statement_id, l.sample_rate, l.cluster_id,
       l.application_name, l.cluster_name, l.database_name, l.search_path,
       l.transaction_isolation, l.execution_timestamp, l.transaction_id, l.transient_index_id,
       l.mz_version, l.began_at,
       CASE WHEN l.finished_at < c.flushed_through THEN l.finished_at END AS finished_at,
       CASE WHEN l.finished_at < c.flushed_through THEN l.finished_status END
           AS finished_status,
       CASE WHEN l.finished_at < c.flushed_through THEN l.error_message END AS error_message,
       CASE WHEN l.finished_at < c.flushed_through THEN l.result_size END AS result_size,
       CASE WHEN l.finished_at < c.flushed_through THEN l.rows_returned END AS rows_returned,
       -- Materialize records the strategy with a successful end only.
       CASE WHEN l.finished_at < c.flushed_through AND l.finished_status = 'success'
            THEN l.execution_strategy END AS execution_strategy,
       l.sql
FROM mz_emulator.statement_log l
CROSS JOIN mz_emulator.log_clock c
WHERE l.began_at < c.flushed_through;
"""

FUNCTIONS_SQL = """
CREATE FUNCTION mz_emulator.set_log_flush(every interval) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = mz_emulator, pg_catalog, pg_temp
AS $$
BEGIN
    IF every IS NULL OR every < interval '0' THEN
        RAISE EXCEPTION 'mz_emulator.set_log_flush: the interval cannot be negative (got %)',
            every USING ERRCODE = '22023';
    END IF;
    UPDATE settings SET value = every::text WHERE name = 'emulator_log_flush_interval';
END $$;
COMMENT ON FUNCTION mz_emulator.set_log_flush(interval) IS
  'Sets the statement-log flush interval (Materialize: 5 seconds): a statement''s row and its '
  'end become visible at the first flush tick after them on the emulator clock. 0 shows them '
  'at once.';
"""

PUBLIC_FUNCTIONS = ("mz_emulator.set_log_flush(interval)",)


def seed(conn: psycopg.Connection[Any], every_s: float = DEFAULT_FLUSH_S) -> None:
    conn.execute(
        "INSERT INTO mz_emulator.settings VALUES (%s, make_interval(secs => %s)::text)",
        (SETTING, every_s),
    )


def check_interval(every_s: float) -> None:
    if not every_s >= 0:  # also refuses NaN
        raise ValueError(f"the statement-log flush interval must be >= 0 s, got {every_s}")
