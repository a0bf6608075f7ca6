"""The error the emulator raises where Materialize reports one: its message, SQLSTATE, detail
and hint, sent to the client as an ErrorResponse. Shared by the lexer, the statements, the
policy and the session, so it lives on its own."""

from __future__ import annotations


class MzError(Exception):
    """An error reported to the client the way Materialize reports it (message, SQLSTATE...)."""

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str = "XX000",
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint

    def __repr__(self) -> str:
        return f"MzError({self.message!r}, sqlstate={self.sqlstate!r})"
