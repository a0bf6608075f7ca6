"""Network latency for the emulator (``--latency-ms``): a pipe between the client's TCP socket
and the session that delivers every byte a fixed delay after it arrived, in each direction.

It behaves like a long wire, not like a slow server: bytes in flight do not wait for each
other, so a client that pipelines K statements pays the delay about once, not K times (a
per-message sleep in the session's thread would serialize them). The session gets one end of
a socket pair and never knows the delay exists."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable

_CHUNK = 65536
# Bytes in flight per direction before the reader stops reading (TCP's window, roughly): a
# client that never reads cannot make the emulator buffer without bound.
_IN_FLIGHT_CHUNKS = 256

# (when the chunk is due at the other end, its bytes; None = end of file)
_Chunks = queue.Queue[tuple[float, bytes | None]]


def delayed(client: socket.socket, delay_s: float) -> socket.socket:
    """Start a pipe with ``delay_s`` seconds of latency each way in front of ``client``; the
    returned socket is the session's end of it."""
    session_end, pipe_end = socket.socketpair()
    LatencyPipe(client, pipe_end, delay_s).start()
    return session_end


class LatencyPipe:
    """Relays bytes between two connected sockets, each chunk written ``delay_s`` seconds after
    it was read. The first end of file (or error) from either side, once delivered, closes
    both: pgwire has no half-closed connections, so either side closing ends the connection.

    :param outer: the client's socket.
    :param inner: the end of the socket pair facing the session.
    :param delay_s: one-way delay in seconds.
    """

    def __init__(self, outer: socket.socket, inner: socket.socket, delay_s: float) -> None:
        self._socks = (outer, inner)
        self._delay_s = delay_s
        self._lock = threading.Lock()
        self._shut = False
        self._threads_left = 4

    def start(self) -> None:
        outer, inner = self._socks
        for src, dst, name in ((outer, inner, "in"), (inner, outer, "out")):
            # Bounded, so a slow reader pushes back on the sender as TCP would.
            chunks: _Chunks = queue.Queue(_IN_FLIGHT_CHUNKS)
            for target, sock in ((self._read, src), (self._write, dst)):
                threading.Thread(
                    target=self._run,
                    args=(target, sock, chunks),
                    name=f"mz-emulator-latency-{name}",
                    daemon=True,
                ).start()

    def _run(
        self,
        target: Callable[[socket.socket, _Chunks], None],
        sock: socket.socket,
        chunks: _Chunks,
    ) -> None:
        try:
            target(sock, chunks)
        finally:
            with self._lock:
                self._threads_left -= 1
                last = self._threads_left == 0
            if last:
                # Closed only when no thread can still be inside a call on these sockets.
                for sock_ in self._socks:
                    sock_.close()

    def _read(self, src: socket.socket, chunks: _Chunks) -> None:
        while True:
            try:
                data = src.recv(_CHUNK)
            except OSError:
                data = b""
            # Timestamped on arrival: the delay runs from when the bytes reached us.
            chunks.put((time.monotonic() + self._delay_s, data or None))
            if not data:
                return

    def _write(self, dst: socket.socket, chunks: _Chunks) -> None:
        while True:
            due, data = chunks.get()
            if data is None:
                # The reader has stopped: nothing more will arrive on this queue.
                self._wait_until(due)
                self.shutdown()
                return
            if self._shut:
                continue  # keep draining so the reader is never stuck on a full queue
            self._wait_until(due)
            try:
                dst.sendall(data)
            except OSError:
                self.shutdown()

    def _wait_until(self, due: float) -> None:
        # A loop, not one sleep: sleep may return early, and the delay is a lower bound.
        while not self._shut and (left := due - time.monotonic()) > 0:
            time.sleep(left)

    def shutdown(self) -> None:
        """End the connection both ways; blocked reads return and the threads finish."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
