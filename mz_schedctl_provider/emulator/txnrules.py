"""Materialize's transaction rules for one session, as the proxy enforces them.

A transaction only reads, or only inserts, or runs one statement (DDL); SHOW and SET are
neutral (materialize.md section 3). The rules hold in an explicit block (BEGIN ... COMMIT) and
in an implicit one: the statements of one multi-statement simple query. PostgreSQL runs the
statements, so the proxy only tracks the block boundaries and the class already used.
"""

from __future__ import annotations

from mz_schedctl_provider.emulator import statements, subscribe
from mz_schedctl_provider.emulator.errors import MzError

_BEGIN_WORDS = frozenset({"BEGIN", "START"})
_END_WORDS = frozenset({"COMMIT", "END", "ROLLBACK", "ABORT"})
# Sent to PostgreSQL to put an open transaction into the failed state after the proxy itself
# refused a statement in it, as Materialize's own error would.
POISON = b"DO $$BEGIN RAISE EXCEPTION 'mz_emulator: transaction aborted'; END$$"


class Transaction:
    """Where the session is: in a block, in a multi-statement query, and the class used."""

    def __init__(self) -> None:
        self.in_block = False
        self.cls: str | None = None
        self.in_group = False  # statements of one multi-statement simple query

    def error(self, cls: str) -> MzError | None:
        """The error for a statement of class ``cls`` here, or None (and it is recorded)."""
        if cls == "control":
            return None
        if not (self.in_block or self.in_group):
            return None
        used = self.cls
        if used is None:
            self.cls = cls
            return None
        if used == "single" or cls == "single":
            return MzError("this transaction can only execute a single statement", sqlstate="25000")
        if used == "read" and cls == "write":
            return MzError("transaction in read-only mode", sqlstate="25006")
        if used == "write" and cls == "read":
            return MzError("transaction in write-only mode", sqlstate="25000")
        return None

    def group_error(self, classes: list[str]) -> MzError | None:
        """The rules checked over a whole implicit transaction before any of it runs."""
        saved = (self.cls, self.in_group)
        self.in_group = True
        try:
            for cls in classes:
                error = self.error(cls)
                if error is not None:
                    return error
            return None
        finally:
            self.cls, self.in_group = saved

    def note_words(self, sql: str) -> bool:
        """Follow BEGIN / COMMIT & co. of a statement passed on; True if a block began or
        ended (ROLLBACK TO SAVEPOINT does neither)."""
        word = first_word(sql)
        if word in _BEGIN_WORDS:
            self.in_block = True
            self.cls = None
            return True
        if word in _END_WORDS and "TO" not in sql.upper().split()[1:3]:
            self.in_block = False
            self.cls = None
            return True
        return False

    def end_implicit(self) -> bool:
        """An implicit transaction ended (Sync, end of a query string); True unless a block
        is still open."""
        if self.in_block:
            return False
        self.cls = None
        return True

    def failed(self, backend_status: bytes) -> bool:
        """The explicit transaction already failed (PostgreSQL said so at its last Ready)."""
        return self.in_block and backend_status == b"E"


def aborted_transaction() -> MzError:
    return MzError(
        "current transaction is aborted, commands ignored until end of transaction block",
        sqlstate="25P02",
    )


def mz_class(stmt: object) -> str:
    """Materialize-only statements: SHOW and SET are neutral, the rest is DDL."""
    return (
        "control"
        if statements.returns_rows(stmt)
        or statements.is_session_statement(stmt)
        # Materialize's subscribe-only transaction rule is not modelled (README).
        or isinstance(stmt, subscribe.STATEMENTS)
        else "single"
    )


def first_word(sql: str) -> str:
    words = sql.lstrip("( \t\r\n").split(None, 1)
    return words[0].upper().rstrip(";") if words else ""
