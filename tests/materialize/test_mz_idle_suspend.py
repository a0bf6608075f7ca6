"""idle_suspend against the emulator: suspend after idle_after_s without activity; a query on
the suspended cluster fails at once and is the signal that resumes the remembered replicas.
Never a cluster hosting a source, never while statement logging is off, never a
never-queried cluster on its first cycle."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from mzsupport import (
    add_strategy,
    hydrated_replicas,
    make_cluster,
    q,
    replicas,
    run_cycle,
    state_payload,
    statement_log,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime.db import Database

pytestmark = pytest.mark.usefixtures("tables")


def notes(run: object, name: str) -> list[str]:
    return list(run.cluster(name)["notes"])  # type: ignore[attr-defined]


def test_suspends_when_idle_and_a_refused_query_resumes_it(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, size="25cc", objects="index")
    emulator.advance(70)
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})

    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert any("would suspend at" in n for n in notes(run, name))

    emulator.advance(200)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}, "suspended before idle_after_s"

    emulator.advance(150)  # 350 s since the strategy was configured, no query meanwhile
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {}
    assert run.outcome.problems == []
    idle = state_payload(emulator, cid)["strategies"]["idle_suspend"]  # type: ignore[index]
    assert idle["remembered"] == [{"name": "r1", "size": "25cc"}]
    assert "suspended_at" in idle

    # Nothing changes while nobody asks.
    emulator.advance(60)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {}

    # A user's query on the suspended cluster fails at once...
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error) as refused,
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    assert refused.value.sqlstate == "0A000"
    assert "has no replicas available to service request" in str(refused.value)
    # ...and Materialize logged it, with its cluster, as an error: the resume signal.
    failed = [s for s, status, _ in statement_log(emulator, application=None) if status == "error"]
    assert f"SELECT * FROM {q(f't_{name}')}" in failed

    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}, "the remembered replica set is back"
    assert any("after suspend" in n for n in notes(run, name))
    idle = state_payload(emulator, cid)["strategies"]["idle_suspend"]  # type: ignore[index]
    assert "last_resume_at" in idle

    # Just resumed: not suspended again before another idle_after_s.
    emulator.advance(70)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert hydrated_replicas(emulator, name) == {"r1"}


def test_never_suspends_a_cluster_hosting_a_source(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="source")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 60})
    for _ in range(3):
        emulator.advance(300)
        run = run_cycle(db, only=name)
        assert replicas(emulator, name) == {"r1": "25cc"}
    assert any("never suspend: hosts 1 source(s)" in n for n in notes(run, name))


def test_never_suspends_a_cluster_hosting_a_materialized_view_unless_allowed(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="mv")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 60})
    emulator.advance(300)
    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert any("materialized view" in n for n in notes(run, name))

    add_strategy(
        emulator,
        cid,
        "idle_suspend",
        {"idle_after_s": 60, "allow_with_maintained_objects": True},
    )
    emulator.advance(120)
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {}


@pytest.fixture
def logging_off(emulator: Emulator) -> Iterator[None]:
    emulator.execute("ALTER SYSTEM SET statement_logging_max_sample_rate = 0")
    try:
        yield
    finally:
        emulator.execute("ALTER SYSTEM SET statement_logging_max_sample_rate = 0.99")


@pytest.mark.usefixtures("logging_off")
def test_never_suspends_while_statement_logging_is_off(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 60})
    emulator.advance(600)

    run = run_cycle(db, only=name)

    assert run.signals["logging_visible"] is False
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert any(
        "statement logging cannot see activity" in n and "statement_logging_max_sample_rate" in n
        for n in notes(run, name)
    ), notes(run, name)


def test_a_never_queried_cluster_is_not_suspended_on_its_first_cycle(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_cluster(emulator, name, objects="index")
    emulator.advance(3600)  # an old, never-queried cluster...
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})  # ...configured now

    run = run_cycle(db, only=name)
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert any("would suspend at" in n for n in notes(run, name))
    # A dry run shows the same without storing anything.
    dry = run_cycle(db, only=name, dry_run=True)
    assert any("would suspend at" in n for n in notes(dry, name))

    emulator.advance(310)  # idle_after_s after it was configured
    run_cycle(db, only=name)
    assert replicas(emulator, name) == {}


def test_never_suspends_the_cluster_the_controller_runs_on(emulator: Emulator, name: str) -> None:
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 60})
    emulator.advance(600)
    own = Database.connect(emulator.url, cluster=name)  # the controller's session runs there
    try:
        run = run_cycle(own, only=name)
    finally:
        own.close()
    assert replicas(emulator, name) == {"r1": "25cc"}
    assert any("the controller's own session runs on this cluster" in n for n in notes(run, name))
