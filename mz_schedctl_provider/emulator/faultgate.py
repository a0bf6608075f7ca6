"""The fault gate: what an injected fault (``faults.py``) does to a statement about to run,
and ``Outcome``, how the proxy's own checks ended for it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from mz_schedctl_provider.emulator.activity import LogEntry
from mz_schedctl_provider.emulator.errors import MzError
from mz_schedctl_provider.emulator.faults import Fault

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.server import EmulatorServer


@dataclass
class Outcome:
    """How one of the proxy's own checks ended for a statement about to run."""

    error: MzError | None = None
    log: LogEntry | None = None
    drop_before: bool = False
    drop_after: bool = False


def take(
    server: EmulatorServer, sql: str, db: psycopg.Connection[Any], *, calls_emulator: bool
) -> Fault | None:
    """The armed fault this statement trips, if any (it is used up)."""
    # A call that arms a fault names the statement it aims at: it must not trip it itself.
    if calls_emulator:
        return None
    return server.faults.take(sql, db)


def delay(fault: Fault, statement_timeout_s: float | None) -> MzError | None:
    """A slow statement: wait the fault's seconds first. Past the session's
    statement_timeout it is cancelled, as Materialize does, and never runs."""
    seconds = fault.delay_s
    timeout = statement_timeout_s
    if timeout is not None and timeout > 0 and seconds > timeout:
        time.sleep(timeout)
        return MzError("canceling statement due to statement timeout", sqlstate="57014")
    time.sleep(seconds)
    return None


def error_after(
    fault: Fault | None, error: MzError | None, statement_timeout_s: float | None
) -> MzError | None:
    """The statement's error once the fault acted: an ``error`` fault replaces the proxy's
    own error; a ``delay`` fault waits unless the statement already failed."""
    if fault is not None and fault.action == "error":
        error = MzError(fault.message, sqlstate=fault.sqlstate)
    if fault is not None and fault.action == "delay":
        error = error or delay(fault, statement_timeout_s)
    return error
