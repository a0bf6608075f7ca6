"""The connection's settings that bound and place the controller's session, read from an
Airflow connection's extras (or any mapping of them): its cluster, Materialize's
statement_timeout and the client-side bound. No Airflow here, so the CLI and tests share it."""

from __future__ import annotations

from typing import Any

from mz_schedctl_provider.runtime.db import (
    DEFAULT_STATEMENT_TIMEOUT_S,
    client_timeout_for,
    escape_option,
)


def session_options(extras: dict[str, Any], base: str | None = None) -> str | None:
    """libpq ``options`` setting the session cluster and statement timeout from the extras."""
    parts = [base] if base else []
    cluster = extras.get("cluster")
    if cluster:
        parts.append(f"-c cluster={escape_option(str(cluster))}")
    timeout = seconds_extra(extras, "statement_timeout", DEFAULT_STATEMENT_TIMEOUT_S)
    if timeout > 0:
        parts.append(f"-c statement_timeout={int(timeout * 1000)}")
    return " ".join(parts) or None


def seconds_extra(extras: dict[str, Any], key: str, default: float) -> float:
    """A number of seconds from the extras (blank: the default; 0: off)."""
    value = extras.get(key)
    if value in (None, ""):
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"connection extra {key} must be a number of seconds, got {value!r}"
        ) from None
    if seconds < 0:
        raise ValueError(f"connection extra {key} cannot be negative, got {value!r}")
    return seconds


def client_timeout(extras: dict[str, Any]) -> float:
    """The client-side bound on every statement: extra client_timeout, else the server's
    statement timeout plus a grace so Materialize's own timeout answers first."""
    server = seconds_extra(extras, "statement_timeout", DEFAULT_STATEMENT_TIMEOUT_S)
    return seconds_extra(extras, "client_timeout", client_timeout_for(server))
