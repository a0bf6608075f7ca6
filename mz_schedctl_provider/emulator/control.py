"""The emulator as a Python API, for tests and the demo: start it, reach it, steer its clock
and faults. Every control call goes over SQL to the ``mz_emulator`` functions, exactly as an
outside tool would send them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from mz_schedctl_provider.emulator import logflush, postgres
from mz_schedctl_provider.emulator.server import EmulatorServer


@dataclass
class Emulator:
    """A running emulator: its URL and the controls tests need.

    :param server: the listener serving clients.
    :param backend: the PostgreSQL behind it.
    """

    server: EmulatorServer
    backend: postgres.Backend
    password: str | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg 3 connection in autocommit mode (Materialize's practical rule)."""
        kwargs.setdefault("autocommit", True)
        if self.password is not None:
            kwargs.setdefault("password", self.password)
        return psycopg.connect(self.url, **kwargs)

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def advance(self, seconds: float) -> None:
        self.execute("SELECT mz_emulator.advance(make_interval(secs => %s))", (seconds,))

    def set_log_flush(self, seconds: float) -> None:
        """Statement-log flush interval: rows and ends show up at the next flush tick of the
        emulator clock (``advance()`` flushes); 0 shows them at once."""
        logflush.check_interval(seconds)
        self.execute("SELECT mz_emulator.set_log_flush(make_interval(secs => %s))", (seconds,))

    def inject_oom(self, cluster: str, replica: str) -> None:
        self.execute("SELECT mz_emulator.inject_oom(%s, %s)", (cluster, replica))

    def record_activity(self, cluster: str) -> None:
        self.execute("SELECT mz_emulator.record_activity(%s)", (cluster,))

    def backdate_replica(
        self,
        cluster: str,
        replica: str,
        size: str,
        created_at: datetime,
        dropped_at: datetime | None = None,
    ) -> str:
        """A replica made at ``created_at`` (dropped at ``dropped_at``, or still live) as the
        emulator's own DDL would have recorded it then; returns its id. Times are on the
        emulator clock and in the past."""
        rows = self.execute(
            "SELECT mz_emulator.backdate_replica(%s, %s, %s, %s, %s)",
            (cluster, replica, size, created_at, dropped_at),
        )
        return str(rows[0][0])

    def backdate_refused_query(
        self, cluster: str, began_at: datetime, application_name: str = "psql"
    ) -> str:
        """A query the cluster refused at ``began_at`` for having no replica, in the statement
        log as the emulator logs one it refuses; returns the statement id."""
        rows = self.execute(
            "SELECT mz_emulator.backdate_refused_query(%s, %s, %s)",
            (cluster, began_at, application_name),
        )
        return str(rows[0][0])

    def backdate_statement(
        self,
        cluster: str,
        began_at: datetime,
        finished_at: datetime,
        application_name: str = "psql",
    ) -> str:
        """A query that ran on the cluster from ``began_at`` to ``finished_at`` and succeeded,
        in the statement log as the emulator logs one it ran; returns the statement id."""
        rows = self.execute(
            "SELECT mz_emulator.backdate_statement(%s, %s, %s, %s)",
            (cluster, began_at, finished_at, application_name),
        )
        return str(rows[0][0])

    def inject_fault(
        self, pattern: str, action: str, message: str = "injected fault", sqlstate: str = "XX000"
    ) -> None:
        self.execute(
            "SELECT mz_emulator.inject_fault(%s, %s, %s, %s)", (pattern, action, message, sqlstate)
        )

    def disconnect_all(self) -> int:
        """Cut every client connection, as a restart of Materialize would."""
        return self.server.disconnect_all()

    def restart(self) -> None:
        """Stop listening and serve again on the same port; the catalog survives."""
        port, password = self.server.port, self.server.password
        self.server.stop()
        self.server = EmulatorServer(
            backend=self.backend, port=port, password=password, latency_ms=self.server.latency_ms
        )
        self.server.start()


@contextlib.contextmanager
def run_emulator(
    *,
    port: int = 0,
    password: str | None = None,
    sample_rate: float = 0.99,
    postgres_url: str | None = None,
    data_dir: Path | None = None,
    keep: bool = False,
    seed: int = 0,
    latency_ms: float = 0.0,
    hydration_delay: str | None = None,
    log_flush_s: float = logflush.DEFAULT_FLUSH_S,
) -> Iterator[Emulator]:
    """Start an emulator (its own PostgreSQL unless ``postgres_url`` is given); stop it after.

    :param port: TCP port on 127.0.0.1, 0 for any free one.
    :param password: require this password from clients.
    :param sample_rate: statement logging rate (system max and default); 0 is the docker image.
    :param keep: keep the data directory (or external database) after stopping.
    :param latency_ms: deliver every message this many ms late in each direction, as over a
        wire to a remote region (round trips cost 2x; pipelined messages overlap).
    :param hydration_delay: an interval (``"60 seconds"``): every user object hydrates in that
        time on a 25cc replica (``mz_emulator.set_delays(NULL, ...)``) instead of its estimate.
    :param log_flush_s: statement-log flush interval on the emulator clock, as Materialize
        (5 s); 0 makes every log row and end visible at once.
    """
    logflush.check_interval(log_flush_s)
    if postgres_url:
        backend = postgres.use_existing(postgres_url, keep=keep, sample_rate=sample_rate)
    else:
        backend = postgres.start_embedded(data_dir=data_dir, keep=keep, sample_rate=sample_rate)
    try:
        server = EmulatorServer(
            backend=backend, port=port, password=password, seed=seed, latency_ms=latency_ms
        )
        emulator = Emulator(server=server, backend=backend, password=password)
        with backend.connect_admin() as conn:
            conn.execute(
                "SELECT mz_emulator.set_log_flush(make_interval(secs => %s))", (log_flush_s,)
            )
        server.start()
        try:
            if hydration_delay is not None:
                emulator.execute(
                    "SELECT mz_emulator.set_delays(NULL, %s::interval)", (hydration_delay,)
                )
            yield emulator
        finally:
            emulator.server.stop()
    finally:
        backend.stop()
