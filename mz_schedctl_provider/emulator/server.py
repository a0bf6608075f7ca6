"""The emulator's TCP listener: accepts pgwire clients on 127.0.0.1 and serves each in a
:class:`~mz_schedctl_provider.emulator.session.ClientSession`."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
from typing import Any

import psycopg

from mz_schedctl_provider.emulator import catalog, latency
from mz_schedctl_provider.emulator.activity import StatementLog, SystemSettings
from mz_schedctl_provider.emulator.faults import FaultBook
from mz_schedctl_provider.emulator.postgres import Backend
from mz_schedctl_provider.emulator.session import ClientSession
from mz_schedctl_provider.emulator.targets import TargetedStatements

log = logging.getLogger(__name__)


class ListenError(OSError):
    """The TCP port could not be bound (taken, or not permitted)."""


class EmulatorServer:
    """Listens for clients and holds what their sessions share.

    :param backend: the PostgreSQL that stores the catalog and user tables.
    :param port: TCP port on 127.0.0.1; 0 picks a free one.
    :param password: when set, clients must send it (cleartext password authentication).
    :param seed: seeds statement-log sampling, so runs are reproducible.
    :param latency_ms: one-way network delay added to every client connection (0 = none).
    """

    def __init__(
        self,
        *,
        backend: Backend,
        port: int = 6875,
        password: str | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        latency_ms: float = 0.0,
    ) -> None:
        self.backend = backend
        self.latency_ms = latency_ms
        self.password = password
        self.host = host
        self.ddl_lock = threading.RLock()
        self.faults = FaultBook()
        self.settings = SystemSettings()
        self.log = StatementLog(self.settings, random.Random(seed))
        self.targets = TargetedStatements(backend)
        self._sessions: set[ClientSession] = set()
        self._sessions_lock = threading.Lock()
        try:
            self._listener = socket.create_server((host, port), reuse_port=False, backlog=128)
        except OSError as exc:
            raise ListenError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        self.port: int = self._listener.getsockname()[1]
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._maybe_reconfiguring = True

    @property
    def url(self) -> str:
        return f"postgresql://materialize@{self.host}:{self.port}/materialize"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept_loop, name="mz-emulator", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.latency_ms > 0:
                client = latency.delayed(client, self.latency_ms / 1000)
            session = ClientSession(self, client)
            with self._sessions_lock:
                self._sessions.add(session)
            threading.Thread(target=session.serve, name="mz-emulator-session", daemon=True).start()

    def forget(self, session: ClientSession) -> None:
        with self._sessions_lock:
            self._sessions.discard(session)
        self.targets.forget(session)

    def mark_stale(self) -> None:
        """A statement may have changed faults, system settings or started a reconfiguration:
        reload and re-check them before next use."""
        self.faults.mark_stale()
        self.settings.mark_stale()
        self._maybe_reconfiguring = True
        # It may also have dropped replicas that running statements target.
        self.targets.fail_lost()

    def settle(self, db: psycopg.Connection[Any]) -> None:
        """Finish graceful reconfigurations that are due before a statement reads the catalog
        (a view cannot change what it reads). Cheap when none is in progress."""
        if not self._maybe_reconfiguring:
            return
        with self.ddl_lock:
            if catalog.settle(db):
                self.targets.fail_lost()  # finished resizes drop the old replicas
            left = db.execute(
                "SELECT count(*) FROM mz_emulator.reconfigurations WHERE status = 'in-progress'"
            ).fetchone()
            self._maybe_reconfiguring = bool(left and left[0])

    def cancel(self, pid: int, key: int) -> None:
        with self._sessions_lock:
            target = next((s for s in self._sessions if s.pid == pid and s.key == key), None)
        if target is None or not target.backend_pid:
            return
        if target.subscriptions.cancel():  # a SUBSCRIBE waits in the proxy, not in PostgreSQL
            return
        with self.backend.connect_admin() as conn:
            conn.execute("SELECT pg_cancel_backend(%s)", (target.backend_pid,))

    def disconnect_all(self) -> int:
        """Drop every client connection (as a restart would); returns how many there were."""
        with self._sessions_lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()
        return len(sessions)

    def stop(self) -> None:
        self._stopping.set()
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the port
        # bound until that call returns.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.disconnect_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
