"""Shared fixtures: a real emulator over TCP, reached with the real drivers."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg2
import pytest

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

_names = itertools.count(1)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A fresh emulator per test module: its own PostgreSQL, catalog and clock."""
    with run_emulator(port=0, log_flush_s=0) as emu:
        yield emu


@pytest.fixture
def mz(emulator: Emulator) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg 3 connection in autocommit, as the controller uses it."""
    with psycopg.connect(emulator.url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def mz2(emulator: Emulator) -> Iterator[Any]:
    """A psycopg2 connection (Airflow 2.11's driver), autocommit."""
    conn = psycopg2.connect(emulator.url)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def name() -> str:
    """A cluster name no other test in the module uses."""
    return f"c{next(_names)}"


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/safety/conftest.py: options must be registered by an initial conftest.
    parser.addoption(
        "--safety-long",
        action="store_true",
        default=False,
        help="run the long mode of tests/safety (5000 randomized scenarios)",
    )
