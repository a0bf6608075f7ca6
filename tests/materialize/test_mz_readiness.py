"""What Airflow's "Test" button checks (runtime/readiness.py), against the emulator: each check
passes on a usable connection and fails, naming itself, when what a cycle needs is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.readiness import Check, check_readiness, summary
from mz_schedctl_provider.runtime.store import Store


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    """Its own emulator: these tests change system settings and create the tables."""
    with run_emulator(port=0, log_flush_s=0) as emu:
        yield emu


def _checks(emu: Emulator, *, cluster: str | None = None, schema: str = "public") -> list[Check]:
    db = Database.connect(emu.url, cluster=cluster)
    try:
        return check_readiness(db, schema=schema)
    finally:
        db.close()


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_fresh_instance_is_ready_and_the_tables_can_be_created(fresh: Emulator) -> None:
    checks = _by_name(_checks(fresh, cluster="quickstart"))
    assert set(checks) == {"catalog", "session cluster", "controller tables", "statement logging"}
    assert all(c.ok for c in checks.values()), checks
    assert checks["session cluster"].detail == "quickstart (1 replica)"
    assert "may create them" in checks["controller tables"].detail
    db = Database.connect(fresh.url)
    try:
        Store(db).bootstrap()
    finally:
        db.close()
    after = _by_name(_checks(fresh, cluster="quickstart"))
    assert after["controller tables"].detail == "all 4 in schema public"
    ok, message = summary(list(after.values()))
    assert ok and message.startswith("Connection successfully tested"), message


def test_a_session_cluster_that_does_not_exist_fails_by_name(fresh: Emulator) -> None:
    checks = _checks(fresh, cluster="no_such_cluster")
    ok, message = summary(checks)
    assert not ok
    # The tables cannot be read on a cluster that does not exist either: both are named.
    assert message.splitlines()[0] == (
        "Not ready for a cycle: session cluster, controller tables failed"
    )
    assert "cluster 'no_such_cluster' does not exist" in message
    assert "FAILED: controller tables: cannot read" in message


def test_a_session_cluster_without_replicas_fails(fresh: Emulator) -> None:
    fresh.execute("CREATE CLUSTER bare REPLICAS ()")
    ok, message = summary(_checks(fresh, cluster="bare"))
    assert not ok
    assert "cluster 'bare' has no replica" in message


def test_statement_logging_switched_off_fails(fresh: Emulator) -> None:
    fresh.execute("ALTER SYSTEM SET statement_logging_max_sample_rate = 0")
    checks = _by_name(_checks(fresh, cluster="quickstart"))
    assert not checks["statement logging"].ok
    assert "statement_logging_max_sample_rate is 0" in checks["statement logging"].detail
    assert checks["session cluster"].ok and checks["controller tables"].ok


def test_a_missing_schema_fails_the_table_check(fresh: Emulator) -> None:
    checks = _by_name(_checks(fresh, cluster="quickstart", schema="no_such_schema"))
    assert not checks["controller tables"].ok, checks["controller tables"]
    assert checks["controller tables"].detail.startswith("schema no_such_schema does not exist")
