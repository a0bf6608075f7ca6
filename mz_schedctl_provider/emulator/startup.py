"""A session's start-up: SSL/GSS refusal, CancelRequest, password, the startup options
(Materialize's session variables kept, PostgreSQL's passed on), the backend connection and the
ParameterStatus messages. Mixed into ``session.ClientSession``."""

from __future__ import annotations

import os
import re
import socket
import struct
from typing import TYPE_CHECKING, Any

import psycopg

from mz_schedctl_provider.emulator import protocol as pw

if TYPE_CHECKING:
    from mz_schedctl_provider.emulator.server import EmulatorServer


class Startup:
    """The handshake part of a client session."""

    if TYPE_CHECKING:  # provided by ClientSession
        server: EmulatorServer
        client: socket.socket
        user: str
        application_name: str
        statement_timeout_s: float | None
        vars: dict[str, str]
        pid: int
        key: int
        backend_pid: int
        _backend: socket.socket | None
        _backend_conn: Any

        @property
        def db(self) -> psycopg.Connection[Any]: ...
        def _send(self, data: bytes) -> None: ...
        def _fatal(self, message: str, sqlstate: str) -> None: ...

    def _handshake(self) -> bool:
        while True:
            code, body = pw.read_startup(self.client)
            if code in (pw.SSL_REQUEST, pw.GSSENC_REQUEST):
                self.client.sendall(b"N")
                continue
            if code == pw.CANCEL_REQUEST:
                pid, key = struct.unpack("!II", body[:8])
                self.server.cancel(pid, key)
                return False
            if code != pw.PROTOCOL_V3:
                self._fatal("unsupported frontend protocol", "0A000")
                return False
            break
        params = pw.parse_startup_params(body)
        self.user = params.get("user", "materialize")
        if self.server.password is not None and not self._check_password():
            return False
        forwarded = self._apply_startup_options(params)
        self._open_backend(forwarded)
        self._send(pw.auth_ok())
        self._send_parameter_statuses()
        self._send(pw.backend_key_data(self.pid, self.key))
        self._send(pw.ready_for_query(b"I"))
        return True

    def _check_password(self) -> bool:
        self._send(pw.auth_cleartext())
        msg = pw.read_message(self.client)
        given = msg.payload.rstrip(b"\0").decode(errors="replace") if msg.type == b"p" else None
        if given != self.server.password:
            self._fatal(f'password authentication failed for user "{self.user}"', "28P01")
            return False
        return True

    def _apply_startup_options(self, params: dict[str, str]) -> dict[str, str]:
        """Keep Materialize's own session variables; pass PostgreSQL's on to the backend."""
        forwarded = {
            k: v
            for k, v in params.items()
            if k not in ("user", "database", "options", "replication")
            and not self._take_session_var(k, v)
        }
        options = [o for o in _split_options(params.get("options", "")) if o]
        kept = []
        for name, value in options:
            if name == "statement_timeout":
                # Also PostgreSQL's (forwarded below); the proxy needs it for `delay` faults,
                # which wait in the proxy where the backend's timer cannot see them.
                self.statement_timeout_s = _timeout_seconds(value)
            if not self._take_session_var(name, value):
                kept.append(f"-c {name}={value}")
        if kept:
            forwarded["options"] = " ".join(kept)
        self.application_name = params.get("application_name", "")
        return forwarded

    def _take_session_var(self, name: str, value: str) -> bool:
        if name in ("cluster", "cluster_replica", "statement_logging_sample_rate"):
            self.vars[name] = value
            return True
        return False

    def _open_backend(self, params: dict[str, str]) -> None:
        """Let libpq authenticate, then speak the protocol on its socket ourselves."""
        conninfo = psycopg.conninfo.make_conninfo(
            self.server.backend.user_conninfo, sslmode="disable", **params
        )
        conn = psycopg.pq.PGconn.connect(conninfo.encode())
        if conn.status != psycopg.pq.ConnStatus.OK:
            message = str(conn.get_error_message()).strip()
            conn.finish()
            self._fatal(f"emulator backend unavailable: {message}", "08006")
            raise pw.ConnectionClosed
        self._backend_conn = conn
        self.backend_pid = conn.backend_pid
        self._backend = socket.socket(fileno=os.dup(conn.socket))
        self._backend.setblocking(True)  # libpq left it non-blocking
        if "statement_logging_sample_rate" not in self.vars:
            self.vars["statement_logging_sample_rate"] = self.server.log.session_default_rate(
                self.db
            )

    def _send_parameter_statuses(self) -> None:
        conn = self._backend_conn
        for name in (
            "client_encoding",
            "DateStyle",
            "IntervalStyle",
            "TimeZone",
            "integer_datetimes",
            "standard_conforming_strings",
            "application_name",
            "is_superuser",
            "server_encoding",
        ):
            value = conn.parameter_status(name.encode())
            if value is not None:
                self._send(pw.parameter_status(name, value.decode()))
        # Materialize reports a PostgreSQL 9.5 compatible version and its own on the side.
        self._send(pw.parameter_status("server_version", "9.5.0"))
        self._send(pw.parameter_status("mz_version", "v26.37.0"))


def _timeout_seconds(value: str) -> float | None:
    """statement_timeout as PostgreSQL reads it: milliseconds, or a number with a unit."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|min|h)?\s*", value)
    if m is None:
        return None
    scale = {None: 0.001, "ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}[m[2]]
    return float(m[1]) * scale


def _split_options(options: str) -> list[tuple[str, str]]:
    """`-c name=value` and `--name=value` pairs of the startup `options` parameter."""
    result = []
    tokens = options.replace("\\ ", "\0").split()
    i = 0
    while i < len(tokens):
        token = tokens[i].replace("\0", " ")
        if token == "-c" and i + 1 < len(tokens):
            token = tokens[i + 1].replace("\0", " ")
            i += 1
        elif token.startswith("-c") or token.startswith("--"):
            token = token[2:]
        name, _, value = token.partition("=")
        result.append((name.replace("-", "_"), value))
        i += 1
    return result
