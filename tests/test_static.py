"""Static checks as tests, so the single test command enforces them: mypy --strict on the pure
engine and on the emulator, ruff's lint rules and ruff's formatting on the whole repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    """The tool next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).with_name(name)
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_engine_and_emulator_pass_mypy_strict() -> None:
    done = _run(
        _tool("mypy"), "--strict", "mz_schedctl_provider/engine", "mz_schedctl_provider/emulator"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_check() -> None:
    done = _run(_tool("ruff"), "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format() -> None:
    done = _run(_tool("ruff"), "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr
