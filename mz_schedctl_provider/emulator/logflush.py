"""Statement-log flush lag, as Materialize has it: the coordinator buffers statement-log events
and writes them to mz_statement_execution_history on a timer (every 5 s,
``STATEMENT_LOGGING_WRITE_INTERVAL`` in src/adapter/src/coord/statement_logging.rs; some
releases read the interval from the system variable ``statement_logging_flush_interval``).
So a statement's row (finished_at NULL) and its end become visible only at the next flush.

Like the rest of the simulation this is derived at read time from the emulator clock: an event
at ``t`` is published by the flush tick after it, ``(floor(t / I) + 1) * I`` on the emulated
epoch, so ``mz_emulator.advance()`` flushes at once and tests never sleep. An interval of 0
publishes every event immediately. The interval lives in ``mz_emulator.settings``
(``emulator_log_flush_interval``), set by ``mz_emulator.set_log_flush(interval)``.

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
CREATE FUNCTION mz_emulator.log_flush_of(t timestamptz, every float8) RETURNS timestamptz
LANGUAGE sql STABLE
AS $$ SELECT CASE WHEN every <= 0 THEN t
             ELSE to_timestamp((floor(extract(epoch FROM t) / every) + 1) * every) END $$;

CREATE VIEW mz_emulator.log_clock AS
SELECT e.now,
       COALESCE((SELECT extract(epoch FROM value::interval)::float8 FROM mz_emulator.settings
                  WHERE name = 'emulator_log_flush_interval'), 0) AS every
FROM mz_emulator.env e;

-- The statement log as a reader sees it now: rows whose begin was flushed, ends only once
-- flushed too.
CREATE VIEW mz_emulator.statement_log_visible AS
SELECT l.id, l.session_id, l.prepared_statement_id, l.sample_rate, l.cluster_id,
       l.application_name, l.cluster_name, l.database_name, l.search_path,
       l.transaction_isolation, l.execution_timestamp, l.transaction_id, l.transient_index_id,
       l.mz_version, l.began_at,
       CASE WHEN f.ended THEN l.finished_at END AS finished_at,
       CASE WHEN f.ended THEN l.finished_status END AS finished_status,
       CASE WHEN f.ended THEN l.error_message END AS error_message,
       CASE WHEN f.ended THEN l.result_size END AS result_size,
       CASE WHEN f.ended THEN l.rows_returned END AS rows_returned,
       -- Materialize records the strategy with a successful end only.
       CASE WHEN f.ended AND l.finished_status = 'success' THEN l.execution_strategy END
           AS execution_strategy,
       l.sql
FROM mz_emulator.statement_log l
CROSS JOIN mz_emulator.log_clock c
CROSS JOIN LATERAL (
    SELECT l.finished_at IS NOT NULL
           AND mz_emulator.log_flush_of(l.finished_at, c.every) <= c.now AS ended
) f
WHERE mz_emulator.log_flush_of(l.began_at, c.every) <= c.now;
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

# log_flush_of too: a view's function calls are checked against the reader, not the owner.
PUBLIC_FUNCTIONS = (
    "mz_emulator.set_log_flush(interval)",
    "mz_emulator.log_flush_of(timestamptz, float8)",
)


def seed(conn: psycopg.Connection[Any], every_s: float = DEFAULT_FLUSH_S) -> None:
    conn.execute(
        "INSERT INTO mz_emulator.settings VALUES (%s, make_interval(secs => %s)::text)",
        (SETTING, every_s),
    )


def check_interval(every_s: float) -> None:
    if not every_s >= 0:  # also refuses NaN
        raise ValueError(f"the statement-log flush interval must be >= 0 s, got {every_s}")
