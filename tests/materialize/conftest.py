"""Fixtures of the Materialize-layer tests (the emulator itself comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mzsupport import connect, drop_strategies, init_tables

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database


@pytest.fixture
def tables(emulator: Emulator) -> Iterator[None]:
    """The controller's tables exist; strategy rows of the test are removed afterwards, so a
    later test's cycle never acts on an earlier test's clusters."""
    init_tables(emulator)
    yield
    drop_strategies(emulator)


@pytest.fixture(params=["psycopg", "psycopg2"])
def db(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[Database]:
    """The controller's connection, through each driver in turn."""
    conn = connect(emulator, request.param)
    yield conn
    conn.close()


@pytest.fixture
def db3(emulator: Emulator) -> Iterator[Database]:
    """The controller's connection through psycopg 3 only."""
    conn = connect(emulator, "psycopg")
    yield conn
    conn.close()


@pytest.fixture
def db2(emulator: Emulator) -> Iterator[Database]:
    """The controller's connection through psycopg2 only."""
    conn = connect(emulator, "psycopg2")
    yield conn
    conn.close()
