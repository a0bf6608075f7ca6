"""``mz-schedctl`` as users run it, in a subprocess against the emulator: init and its printed
SQL, JSON output that validates against the shipped schemas, connection errors that never
show the password, wipe-state with a filter, status, and hostile names end to end."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest
from mzsupport import (
    CONTROLLER_TABLES,
    HOSTILE,
    add_strategy,
    audit,
    cli,
    cluster_id,
    connect,
    hydrated_replicas,
    json_docs,
    make_cluster,
    q,
    replicas,
    run_cycle,
    state_payload,
    state_rows,
    table_rows,
    validate,
)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator

SENTINEL = "S3ntinel-pw;'x y"
# The sentinel as it goes into a URL (percent-encoded where a URL needs it).
SENTINEL_IN_URL = SENTINEL.replace(";", "%3B").replace(" ", "%20").replace("'", "%27")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# init -------------------------------------------------------------------------------------------


def test_init_print_sql_needs_no_database(emulator: Emulator) -> None:
    done = cli("init", "--print-sql", "--schema", "sched")  # no URL, no $DATABASE_URL

    assert done.returncode == 0, done.stderr
    statements = [s.strip() for s in done.stdout.split(";") if s.strip()]
    assert len(statements) == 5
    assert all(s.startswith('CREATE TABLE IF NOT EXISTS "sched".') for s in statements)
    for table in CONTROLLER_TABLES:
        assert any(f'"sched"."{table}"' in s for s in statements)
    # The printed SQL is what an administrator runs: it works, and works twice.
    emulator.execute("CREATE SCHEMA sched")
    for _ in range(2):
        for statement in statements:
            emulator.execute(statement)
    assert emulator.execute("SELECT count(*) FROM sched.mz_cluster_strategy_leases") == [(0,)]


def test_init_creates_the_tables_idempotently(emulator: Emulator) -> None:
    for _ in range(2):
        done = cli("init", url=emulator.url)
        assert done.returncode == 0, done.stderr
    assert all(table_rows(emulator, t) is not None for t in CONTROLLER_TABLES)


# Errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "apply", "wipe-state"])
def test_connection_refused_exits_2_without_the_password(command: str) -> None:
    port = free_port()
    url = f"postgresql://materialize:{SENTINEL_IN_URL}@127.0.0.1:{port}/materialize"

    done = cli(command, url=url)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "connection to Materialize failed" in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    for shown in (done.stdout, done.stderr):
        assert "S3ntinel" not in shown


@pytest.fixture(scope="module")
def locked() -> Iterator[Emulator]:
    """An emulator that wants a password."""
    with run_emulator(port=0, log_flush_s=0, password="the-right-one") as emu:
        yield emu


def test_wrong_password_exits_2_without_the_password(locked: Emulator) -> None:
    url = locked.url.replace("materialize@", f"materialize:{SENTINEL_IN_URL}@")
    done = cli("plan", env={"DATABASE_URL": url})

    assert done.returncode == 2, done.stdout + done.stderr
    assert "connection to Materialize failed" in done.stderr
    assert "S3ntinel" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--database-url", "definitely not a url=="], "not a valid connection URL"),
        (["plan"], "no database"),
        (
            ["plan", "--database-url", "postgresql://x@127.0.0.1:1/x", "--filter-clusters", "("],
            "not a valid regex",
        ),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    done = cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


# --json -----------------------------------------------------------------------------------------


def test_json_output_validates_against_the_shipped_schemas(emulator: Emulator, name: str) -> None:
    cli("init", url=emulator.url)
    cid = make_cluster(emulator, name, objects="mv")
    emulator.advance(70)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})

    done = cli("plan", "--json", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stderr
    (plan,) = json_docs(done.stdout)
    validate(plan, "plan")
    assert plan["dry_run"] is True
    (cluster,) = plan["clusters"]
    assert cluster["cluster_name"] == name
    assert [a["kind"] for a in cluster["actions"]] == ["create_replica"]

    done = cli("apply", "--json", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, "one document per line"
    plan, result = (json.loads(line) for line in lines)
    validate(plan, "plan")
    validate(result, "apply_result")
    assert plan["dry_run"] is False
    assert [r["outcome"] for r in result["results"]] == ["succeeded"]
    assert replicas(emulator, name) == {"r1": "25cc", "r_100cc": "100cc"}


# wipe-state and status --------------------------------------------------------------------------


def test_wipe_state_deletes_only_the_filtered_clusters(emulator: Emulator, name: str) -> None:
    cli("init", url=emulator.url)
    keep = make_cluster(emulator, f"{name}_keep", objects="index")
    wipe = make_cluster(emulator, f"{name}_wipe", objects="index")
    for cid in (keep, wipe):
        add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    db = connect(emulator, "psycopg")
    try:
        for _ in range(2):  # create, then (hydrated) retire
            assert run_cycle(db, pattern=f"{name}_.*").outcome.problems == []
            emulator.advance(70)
    finally:
        db.close()
    kept, wiped = state_rows(emulator, keep), state_rows(emulator, wipe)
    assert kept >= 1 and wiped >= 1

    done = cli("wipe-state", "--json", "--filter-clusters", f"{name}_wipe", url=emulator.url)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"deleted_state_rows": wiped}
    assert state_rows(emulator, wipe) == 0
    assert state_rows(emulator, keep) == kept
    # Without state the next cycle decides afresh from the catalog: nothing to do here.
    done = cli("apply", "--filter-clusters", f"{name}_.*", url=emulator.url)
    assert done.returncode == 0, done.stderr
    assert replicas(emulator, f"{name}_wipe") == {"r_50cc": "50cc"}


def test_status_shows_strategies_state_and_last_actions(emulator: Emulator, name: str) -> None:
    cli("init", url=emulator.url)
    cid = make_cluster(emulator, name, objects="index")
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 3600})
    db = connect(emulator, "psycopg2")
    try:
        assert run_cycle(db, only=name).outcome.problems == []
    finally:
        db.close()

    done = cli("status", "--filter-clusters", name, url=emulator.url)

    assert done.returncode == 0, done.stderr
    out = done.stdout
    strategies = out.split("STRATEGIES")[1].split("STATE")[0]
    assert f'{name}  target_size  {{"target_size": "100cc"}}' in strategies
    assert f'{name}  idle_suspend  {{"idle_after_s": 3600}}' in strategies
    state = out.split("STATE")[1].split("LAST ACTIONS")[0]
    assert f"{name}  v2  " in state and '"owned": ["r_100cc"]' in state
    actions = out.split("LAST ACTIONS")[1]
    create = f'CREATE CLUSTER REPLICA "{name}"."r_100cc" (SIZE = \'100cc\')'
    assert f"{name}  intent  pending  {create}" in actions
    assert f"{name}  outcome  ok  {create}" in actions

    done = cli("status", "--json", "--filter-clusters", name, url=emulator.url)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert {s["strategy"] for s in doc["strategies"]} == {"target_size", "idle_suspend"}
    assert doc["states"][name] == state_payload(emulator, cid)
    assert [(a["phase"], a["executed"]) for a in doc["actions"]] == [
        ("outcome", True),
        ("intent", None),
    ]


# Hostile names ----------------------------------------------------------------------------------

HOSTILE_REPLICA = 'old "one"; DROP CLUSTER x; --'
HOSTILE_TARGET = "new 'one' ☃;"


def test_hostile_names_are_resized_end_to_end(emulator: Emulator) -> None:
    cli("init", url=emulator.url)
    cid = make_cluster(emulator, HOSTILE, replica=HOSTILE_REPLICA, objects="mv")
    emulator.advance(70)
    assert hydrated_replicas(emulator, HOSTILE) == {HOSTILE_REPLICA}
    add_strategy(
        emulator, cid, "target_size", {"target_size": "100cc", "replica_name": HOSTILE_TARGET}
    )
    only = re.escape(HOSTILE)

    done = cli("apply", "--filter-clusters", only, url=emulator.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert replicas(emulator, HOSTILE) == {HOSTILE_REPLICA: "25cc", HOSTILE_TARGET: "100cc"}

    emulator.advance(40)
    done = cli("apply", "--filter-clusters", only, url=emulator.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert replicas(emulator, HOSTILE) == {HOSTILE_TARGET: "100cc"}
    assert hydrated_replicas(emulator, HOSTILE) == {HOSTILE_TARGET}
    # Every other cluster is still there: nothing was injected by the names.
    assert cluster_id(emulator, HOSTILE) == cid
    assert emulator.execute("SELECT count(*) FROM mz_catalog.mz_clusters WHERE name = 'x'") == [
        (0,)
    ]
    executed = [r.sql for r in audit(emulator, cid) if r.executed]
    assert executed == [
        f"CREATE CLUSTER REPLICA {q(HOSTILE)}.{q(HOSTILE_TARGET)} (SIZE = '100cc')",
        f"DROP CLUSTER REPLICA {q(HOSTILE)}.{q(HOSTILE_REPLICA)}",
    ]
    status = cli("status", "--filter-clusters", only, url=emulator.url)
    assert status.returncode == 0 and HOSTILE in status.stdout
