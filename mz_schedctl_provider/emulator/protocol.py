"""PostgreSQL wire protocol v3: framing and the few server messages the proxy writes itself."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PROTOCOL_V3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
TEXT_OID = 25


class ConnectionClosed(Exception):
    """The peer closed the socket."""


@dataclass(frozen=True)
class Message:
    """One typed protocol message: its type byte and its payload (without the length)."""

    type: bytes
    payload: bytes

    def encode(self) -> bytes:
        return self.type + struct.pack("!I", len(self.payload) + 4) + self.payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionClosed
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> Message:
    head = recv_exact(sock, 5)
    (length,) = struct.unpack("!I", head[1:])
    return Message(head[:1], recv_exact(sock, length - 4))


def read_startup(sock: socket.socket) -> tuple[int, bytes]:
    """The untyped first packet: (protocol or request code, rest of the payload)."""
    (length,) = struct.unpack("!I", recv_exact(sock, 4))
    if not 8 <= length <= 10_000:
        raise ConnectionClosed
    body = recv_exact(sock, length - 4)
    (code,) = struct.unpack("!I", body[:4])
    return code, body[4:]


def parse_startup_params(body: bytes) -> dict[str, str]:
    parts = body.split(b"\0")
    params: dict[str, str] = {}
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        if key:
            params[key.decode()] = value.decode()
    return params


def cstring(data: bytes, offset: int = 0) -> tuple[str, int]:
    """A NUL-terminated string at offset: (text, offset after the NUL)."""
    end = data.index(b"\0", offset)
    return data[offset:end].decode(), end + 1


def startup_message(params: dict[str, str]) -> bytes:
    body = struct.pack("!I", PROTOCOL_V3)
    for key, value in params.items():
        body += key.encode() + b"\0" + value.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


# Server messages ------------------------------------------------------------------------------


def auth_ok() -> bytes:
    return Message(b"R", struct.pack("!I", 0)).encode()


def auth_cleartext() -> bytes:
    return Message(b"R", struct.pack("!I", 3)).encode()


def parameter_status(name: str, value: str) -> bytes:
    return Message(b"S", name.encode() + b"\0" + value.encode() + b"\0").encode()


def backend_key_data(pid: int, key: int) -> bytes:
    return Message(b"K", struct.pack("!II", pid, key)).encode()


def ready_for_query(status: bytes) -> bytes:
    return Message(b"Z", status).encode()


def _fields(
    severity: str, sqlstate: str, message: str, detail: str | None, hint: str | None
) -> bytes:
    fields = [(b"S", severity), (b"V", severity), (b"C", sqlstate), (b"M", message)]
    if detail:
        fields.append((b"D", detail))
    if hint:
        fields.append((b"H", hint))
    return b"".join(code + text.encode() + b"\0" for code, text in fields) + b"\0"


def error_response(
    message: str,
    *,
    sqlstate: str = "XX000",
    detail: str | None = None,
    hint: str | None = None,
    severity: str = "ERROR",
) -> bytes:
    return Message(b"E", _fields(severity, sqlstate, message, detail, hint)).encode()


def notice_response(message: str, *, sqlstate: str = "00000") -> bytes:
    return Message(b"N", _fields("NOTICE", sqlstate, message, None, None)).encode()


def row_description(columns: Sequence[str]) -> bytes:
    body = struct.pack("!H", len(columns))
    for name in columns:
        body += name.encode() + b"\0" + struct.pack("!IhIhih", 0, 0, TEXT_OID, -1, -1, 0)
    return Message(b"T", body).encode()


def row_description_typed(columns: Sequence[tuple[str, int]]) -> bytes:
    """Columns with their type OIDs (values still in text format)."""
    body = struct.pack("!H", len(columns))
    for name, oid in columns:
        body += name.encode() + b"\0" + struct.pack("!IhIhih", 0, 0, oid, -1, -1, 0)
    return Message(b"T", body).encode()


def data_row(values: Iterable[str | None]) -> bytes:
    items = list(values)
    body = struct.pack("!H", len(items))
    for value in items:
        if value is None:
            body += struct.pack("!i", -1)
        else:
            raw = value.encode()
            body += struct.pack("!i", len(raw)) + raw
    return Message(b"D", body).encode()


def copy_out_response(columns: int) -> bytes:
    """CopyOutResponse, text format for the whole and for each column."""
    return Message(b"H", struct.pack("!bH", 0, columns) + struct.pack("!h", 0) * columns).encode()


def copy_data(data: bytes) -> bytes:
    return Message(b"d", data).encode()


def command_complete(tag: str) -> bytes:
    return Message(b"C", tag.encode() + b"\0").encode()


def parse_complete() -> bytes:
    return Message(b"1", b"").encode()


def bind_complete() -> bytes:
    return Message(b"2", b"").encode()


def close_complete() -> bytes:
    return Message(b"3", b"").encode()


def no_data() -> bytes:
    return Message(b"n", b"").encode()


def parameter_description(count: int = 0) -> bytes:
    return Message(b"t", struct.pack("!H", count) + struct.pack("!I", TEXT_OID) * count).encode()


def empty_query() -> bytes:
    return Message(b"I", b"").encode()


def error_fields(payload: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse or NoticeResponse payload, by their one-letter codes."""
    fields: dict[str, str] = {}
    offset = 0
    while offset < len(payload) and payload[offset] != 0:
        code = chr(payload[offset])
        text, offset = cstring(payload, offset + 1)
        fields[code] = text
    return fields
