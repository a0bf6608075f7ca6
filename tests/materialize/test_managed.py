"""Managed clusters against the emulator, driven with ALTER CLUSTER: suspend = REPLICATION
FACTOR 0 and resume to the remembered factor, resize = Materialize's graceful reconfiguration
(WAIT UNTIL READY, in the background, nothing more planned while it runs, never zero hydrated
replicas), schedule windows, a timed-out resize that backs off instead of looping, sources
that refuse a graceful resize, and Materialize's own scheduling (ON REFRESH, AUTO SCALING
STRATEGY) left alone. Every check reads the truth from the emulator's catalog and logs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from mzsupport import (
    HOSTILE,
    REPO,
    add_strategy,
    audit,
    cli,
    cluster_id,
    hydrated_replicas,
    q,
    replicas,
    run_cycle,
    server_now,
    state_payload,
    statement_log,
)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database, DatabaseError

pytestmark = pytest.mark.usefixtures("tables")


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """Statement logging at rate 1: alter_sent() reads the log as the record of every ALTER
    that reached the emulator, which at Cloud's 0.99 misses one statement in a hundred."""
    with run_emulator(port=0, sample_rate=1.0) as emu:
        yield emu


def make_managed(
    emu: Emulator,
    name: str,
    *,
    size: str = "25cc",
    rf: int = 1,
    objects: str | None = "index",
    hydration: str | None = None,
) -> str:
    """A managed cluster hosting an index on a table (or a load-generator "source");
    ``hydration`` as in make_cluster."""
    emu.execute(f"CREATE CLUSTER {q(name)} (SIZE = '{size}', REPLICATION FACTOR = {rf})")
    if objects == "index":
        emu.execute(f"CREATE TABLE {q(f't_{name}')} (a int)")
        emu.execute(f"CREATE INDEX {q(f'i_{name}')} IN CLUSTER {q(name)} ON {q(f't_{name}')} (a)")
    elif objects == "source":
        emu.execute(
            f"CREATE SOURCE {q(f's_{name}')} IN CLUSTER {q(name)} FROM LOAD GENERATOR COUNTER"
        )
    if hydration is not None:
        emu.execute("SELECT mz_emulator.set_hydration_delay(%s, %s::interval)", (name, hydration))
    return cluster_id(emu, name)


def config(emu: Emulator, name: str) -> tuple[Any, ...]:
    """(managed, size, replication_factor) from mz_clusters."""
    return tuple(
        emu.execute(
            "SELECT managed, size, replication_factor FROM mz_catalog.mz_clusters WHERE name = %s",
            (name,),
        )[0]
    )


def reconfigurations(emu: Emulator, cid: str) -> list[tuple[Any, ...]]:
    """(status, target size) of the cluster's graceful reconfigurations, oldest first."""
    return [
        (status, target.get("size") if isinstance(target, dict) else None)
        for status, target in emu.execute(
            "SELECT status, target FROM mz_internal.mz_cluster_reconfigurations"
            " WHERE cluster_id = %s",
            (cid,),
        )
    ]


def alter_sent(emu: Emulator, name: str) -> list[str]:
    """ALTER CLUSTER statements on this cluster that reached the emulator."""
    return [
        s
        for s, _status, _at in statement_log(emu, application=None)
        if re.match(rf"\s*ALTER\s+CLUSTER\s+{re.escape(q(name))}\s", s or "", re.I)
    ]


def notes(run: Any, name: str) -> list[str]:
    return list(run.cluster(name)["notes"])


def findings(run: Any, name: str) -> list[dict[str, Any]]:
    return list(run.cluster(name)["findings"])


def test_managed_suspend_after_idle_and_resume_to_the_previous_factor(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_managed(emulator, name, rf=2)
    emulator.advance(70)
    add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 300})

    run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 2)

    emulator.advance(350)
    run = run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 0)
    assert replicas(emulator, name) == {}
    assert run.outcome.problems == []
    (action,) = run.actions(status="planned")
    assert action["kind"] == "alter_cluster" and action["alter"] == {"replication_factor": 0}
    assert action["sql"] == f"ALTER CLUSTER {q(name)} SET (REPLICATION FACTOR = 0)"
    idle = state_payload(emulator, cid)["strategies"]["idle_suspend"]  # type: ignore[index]
    assert idle["replication_factor"] == 2
    rows = audit(emulator, cid)
    assert [r.phase for r in rows] == ["intent", "outcome"] and rows[1].executed
    assert rows[1].sql == action["sql"]

    emulator.advance(60)
    run = run_cycle(db, only=name)
    assert run.actions() == [] and config(emulator, name) == (True, "25cc", 0)

    # A user's query on the suspended cluster fails at once and is logged: the resume signal.
    with (
        psycopg.connect(emulator.url, autocommit=True, options=f"-c cluster={name}") as user,
        pytest.raises(psycopg.Error, match="has no replicas available"),
    ):
        user.execute(f"SELECT * FROM {q(f't_{name}')}")
    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 2), "the previous factor is back"
    assert replicas(emulator, name) == {"r1": "25cc", "r2": "25cc"}
    (action,) = run.actions(status="planned")
    assert action["alter"] == {"replication_factor": 2}
    assert any("REPLICATION FACTOR 2" in n for n in notes(run, name))

    emulator.advance(120)
    run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 2)
    assert hydrated_replicas(emulator, name) == {"r1", "r2"}


def test_managed_resize_is_a_graceful_reconfiguration_without_downtime(
    emulator: Emulator, db: Database, name: str
) -> None:
    name = f"{HOSTILE} {name}"  # any name Materialize accepts round-trips
    # 60 s at 25cc, 30 s at 100cc: long enough to watch the reconfiguration in progress.
    cid = make_managed(emulator, name, rf=2, hydration="60 seconds")
    emulator.advance(120)
    assert hydrated_replicas(emulator, name) == {"r1", "r2"}
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})

    run = run_cycle(db, only=name)
    (action,) = run.actions(status="planned")
    assert action["alter"] == {"size": "100cc", "wait": True, "timeout_s": 3600.0}
    assert action["sql"] == (
        f"ALTER CLUSTER {q(name)} SET (SIZE = '100cc') "
        "WITH (WAIT UNTIL READY (TIMEOUT = '1h', ON TIMEOUT = 'ROLLBACK'))"
    )
    assert run.outcomes() == ["succeeded"] and run.outcome.problems == []
    # Materialize answered at once; the new replicas hydrate next to the old ones.
    assert replicas(emulator, name) == {
        "r1": "25cc",
        "r2": "25cc",
        "r1-pending": "100cc",
        "r2-pending": "100cc",
    }
    assert reconfigurations(emulator, cid) == [("in-progress", "100cc")]
    assert len(alter_sent(emulator, name)) == 1

    # While it runs: nothing more planned, and the plan says why.
    emulator.advance(5)
    run = run_cycle(db, only=name)
    assert run.actions() == []
    assert any("graceful reconfiguration to 100cc in progress" in n for n in notes(run, name))
    assert len(alter_sent(emulator, name)) == 1

    # The clock moves in small steps: at no moment is there no hydrated replica.
    steps = 0
    while steps < 120:
        steps += 1
        emulator.advance(5)
        assert hydrated_replicas(emulator, name), "a moment without a hydrated replica"
        if reconfigurations(emulator, cid)[-1][0] != "in-progress":
            break
        run = run_cycle(db, only=name)
        assert run.actions() == []
    assert steps > 3, "the reconfiguration took several cycles"
    assert reconfigurations(emulator, cid) == [("finalized", "100cc")]
    assert config(emulator, name) == (True, "100cc", 2)
    assert replicas(emulator, name) == {"r1": "100cc", "r2": "100cc"}
    assert hydrated_replicas(emulator, name) == {"r1", "r2"}

    run = run_cycle(db, only=name)
    assert run.actions() == [] and run.outcome.problems == []
    assert len(alter_sent(emulator, name)) == 1


def test_a_timed_out_resize_is_reported_and_backs_off_instead_of_looping(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_managed(emulator, name)
    emulator.advance(120)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "resize_timeout_s": 120})
    # The new size cannot hydrate within the timeout.
    emulator.execute("SELECT mz_emulator.set_hydration_delay(%s, '2 hours')", (name,))

    run = run_cycle(db, only=name)
    assert "TIMEOUT = '2m', ON TIMEOUT = 'ROLLBACK'" in run.actions()[0]["sql"]
    emulator.advance(150)
    assert reconfigurations(emulator, cid) == [("timed-out", "100cc")]
    assert config(emulator, name) == (True, "25cc", 1)
    assert replicas(emulator, name) == {"r1": "25cc"}, "rolled back"

    run = run_cycle(db, only=name)
    assert [a["status"] for a in run.actions()] == ["deferred"]
    (problem,) = run.outcome.problems
    assert problem.startswith(f"{name}: graceful resize to 100cc timed out")
    payload = state_payload(emulator, cid)
    assert payload is not None and payload["failed_resize"]["failures"] == 1
    assert payload["backoff"]["failures"] == 1

    # Counted once: the next cycle (within the backoff) only reminds, sends nothing.
    emulator.advance(20)
    run = run_cycle(db, only=name)
    assert run.outcome.problems == [] and [a["status"] for a in run.actions()] == ["deferred"]
    assert [f["severity"] for f in findings(run, name)] == ["warning"]
    assert len(alter_sent(emulator, name)) == 1

    # After the backoff: one retry, not one per cycle.
    emulator.advance(60)
    run = run_cycle(db, only=name)
    assert run.outcomes() == ["succeeded"]
    assert len(alter_sent(emulator, name)) == 2
    emulator.advance(5)
    run_cycle(db, only=name)
    assert len(alter_sent(emulator, name)) == 2


def test_schedule_window_on_a_managed_cluster_off_outside_on_inside(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_managed(emulator, name, rf=2)
    emulator.advance(70)
    now = server_now(emulator)
    start = (now + timedelta(minutes=10)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=30)
    window = {
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": start.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
        "mode": "on",
    }
    add_strategy(emulator, cid, "schedule", {"timezone": "UTC", "windows": [window]})

    run = run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 0), "off outside the window"
    (action,) = run.actions(status="planned")
    assert action["strategy"] == "schedule"
    assert action["codes"] == ["schedule_off", "managed_suspend"]

    emulator.advance(60)
    assert run_cycle(db, only=name).actions() == []

    emulator.advance(11 * 60)  # inside the window
    run = run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 2), "on inside, with its factor"
    assert replicas(emulator, name) == {"r1": "25cc", "r2": "25cc"}
    assert run.actions()[0]["codes"] == ["resume_remembered", "managed_resume"]

    emulator.advance(10 * 60)
    assert run_cycle(db, only=name).actions() == []
    assert config(emulator, name) == (True, "25cc", 2)

    emulator.advance(25 * 60)  # past the window's end
    run_cycle(db, only=name)
    assert config(emulator, name) == (True, "25cc", 0)


def test_materialize_scheduled_and_auto_scaled_clusters_are_left_alone(
    emulator: Emulator, db: Database, name: str
) -> None:
    refresh, auto = f"{name}_refresh", f"{name}_auto"
    emulator.execute(
        f"CREATE CLUSTER {refresh} (SIZE = '25cc',"
        " SCHEDULE = ON REFRESH (HYDRATION TIME ESTIMATE = '1 hour'))"
    )
    emulator.execute(
        f"CREATE CLUSTER {auto} (SIZE = '25cc', REPLICATION FACTOR = 1, AUTO SCALING STRATEGY ="
        " (ON HYDRATION (HYDRATION SIZE = '800cc', LINGER DURATION = '10m')))"
    )
    ids = {n: cluster_id(emulator, n) for n in (refresh, auto)}
    for cid in ids.values():
        add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
        add_strategy(emulator, cid, "idle_suspend", {"idle_after_s": 60})
    before = {n: (config(emulator, n), replicas(emulator, n)) for n in ids}
    emulator.advance(600)

    run = run_cycle(db, pattern=f"{name}_(refresh|auto)")
    assert run.actions() == [] and run.outcome.problems == []
    (f,) = findings(run, refresh)
    assert (f["kind"], f["code"]) == ("left_alone", "materialize_schedule")
    assert "SCHEDULE on-refresh" in f["message"]  # the README quotes it
    (f,) = findings(run, auto)
    assert (f["kind"], f["code"]) == ("left_alone", "materialize_auto_scaling")
    assert "AUTO SCALING STRATEGY" in f["message"]  # the README quotes it
    assert {n: (config(emulator, n), replicas(emulator, n)) for n in ids} == before
    assert all(audit(emulator, cid) == [] for cid in ids.values())

    # The CLI's plan says why, too.
    done = cli("plan", "--filter-clusters", f"{name}_(refresh|auto)", url=emulator.url)
    assert done.returncode == 0, done.stderr
    assert "left alone: Materialize schedules this cluster itself" in done.stdout
    assert "left alone: Materialize's built-in AUTO SCALING STRATEGY" in done.stdout
    assert alter_sent(emulator, refresh) == [] and alter_sent(emulator, auto) == []


def test_a_cluster_with_a_source_refuses_a_graceful_resize(
    emulator: Emulator, db: Database, name: str
) -> None:
    # Materialize itself refuses it: the new replica would be a second one.
    cid = make_managed(emulator, name, objects="source")
    with pytest.raises(psycopg.Error, match="cannot create more than one replica"):
        emulator.execute(
            f"ALTER CLUSTER {q(name)} SET (SIZE = '100cc') WITH (WAIT UNTIL READY"
            " (TIMEOUT = '10m', ON TIMEOUT = 'ROLLBACK'))"
        )
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    sent = len(alter_sent(emulator, name))

    run = run_cycle(db, only=name)
    assert [a["status"] for a in run.actions()] == ["skipped"]
    assert run.actions()[0]["codes"] == ["wanted_size", "single_replica"]
    assert [f["kind"] for f in findings(run, name)] == ["impossible"]
    assert len(alter_sent(emulator, name)) == sent and config(emulator, name)[1] == "25cc"

    add_strategy(emulator, cid, "target_size", {"target_size": "100cc", "allow_downtime": True})
    run = run_cycle(db, only=name)
    (action,) = run.actions(status="planned")
    assert action["sql"] == f"ALTER CLUSTER {q(name)} SET (SIZE = '100cc')"
    assert run.outcomes() == ["succeeded"]
    assert replicas(emulator, name) == {"r1": "100cc"}


def test_apply_rechecks_an_alter_against_the_live_catalog(
    emulator: Emulator, db: Database, name: str
) -> None:
    cid = make_managed(emulator, name)
    emulator.advance(120)
    add_strategy(emulator, cid, "target_size", {"target_size": "100cc"})
    settings = cycle.CycleSettings()

    def plan(*, stale: bool = False) -> dict[str, Any]:
        signals = cycle.collect(db, settings, filter_clusters=re.escape(name))
        if stale:  # as read before the reconfiguration started
            for c in signals["clusters"]:  # type: ignore[union-attr]
                c.pop("reconfiguration", None)  # type: ignore[union-attr]
        return cycle.decide(signals, cycle_id=cycle.new_cycle_id("t"), dry_run=False)

    def apply(doc: dict[str, Any]) -> list[str]:
        cycle_id = str(doc["cycle_id"])
        assert cycle.claim_lease(db, settings, cycle_id=cycle_id).acquired
        result = cycle.apply(doc, db, settings)
        cycle.persist(doc, result, db, settings)
        return [r["outcome"] for r in result["results"]]  # type: ignore[union-attr,index]

    # Someone else starts the same resize after the plan was made: already true.
    first = plan()
    emulator.execute(
        f"ALTER CLUSTER {q(name)} SET (SIZE = '100cc') WITH (WAIT UNTIL READY"
        " (TIMEOUT = '10m', ON TIMEOUT = 'ROLLBACK'))"
    )
    assert apply(first) == ["already_true"]
    assert len(alter_sent(emulator, name)) == 1

    # Now another size is wanted while that one runs: nothing planned; and a plan made
    # before it started is skipped at apply, not fought.
    add_strategy(emulator, cid, "target_size", {"target_size": "200cc"})
    assert plan()["clusters"][0]["actions"] == []  # type: ignore[index]
    stale = plan(stale=True)
    assert apply(stale) == ["not_executed"]
    action_id = stale["clusters"][0]["actions"][0]["id"]  # type: ignore[index]
    rows = [r for r in audit(emulator, cid) if r.action_id == action_id]
    assert [r.phase for r in rows] == ["outcome"] and rows[0].executed is False
    assert "reconfiguration to 100cc is running" in rows[0].ctx["note"]
    assert len(alter_sent(emulator, name)) == 1


class _OlderRelease(Database):
    """A connection to a release before background reconfigurations (v26.35) and the
    built-in auto-scaling controller: both relations are unknown."""

    def query(self, sql: str, params: Any = None, **bounds: Any) -> list[tuple[Any, ...]]:
        for relation in ("mz_cluster_reconfigurations", "mz_cluster_auto_scaling_strategies"):
            if relation in sql:
                raise DatabaseError(f"unknown catalog item 'mz_internal.{relation}'")
        return super().query(sql, params, **bounds)


def test_signals_and_apply_tolerate_a_release_without_reconfigurations(
    emulator: Emulator, name: str
) -> None:
    cid = make_managed(emulator, name)
    emulator.advance(120)
    add_strategy(emulator, cid, "target_size", {"target_size": "50cc"})
    db = _OlderRelease.connect(emulator.url)
    try:
        run = run_cycle(db, only=name)
    finally:
        db.close()
    (cluster,) = run.signals["clusters"]  # type: ignore[misc]
    assert "reconfiguration" not in cluster and cluster["auto_scaling"] is False
    assert run.outcomes() == ["succeeded"] and run.outcome.problems == []
    assert replicas(emulator, name) == {"r1": "25cc", "r1-pending": "50cc"}


def test_the_readme_managed_clusters_example(emulator: Emulator, db: Database) -> None:
    """The SQL of the README's "Managed clusters" section runs and plans what the table says."""
    readme = (REPO / "README.md").read_text()
    start = readme.index("\n## Managed clusters")
    section = readme[start : readme.index("\n## ", start + 1)]
    (block,) = re.findall(r"```sql\n(.*?)```", section, re.S)
    lines = [line for line in block.splitlines() if not line.strip().startswith("--")]
    statements = [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]
    emulator.execute(statements[0].rstrip(";"))
    cid = cluster_id(emulator, "analytics")
    for statement in statements[1:]:
        emulator.execute(statement.rstrip(";").replace("'u6'", f"'{cid}'"))
    emulator.advance(60)
    try:
        run = run_cycle(db, only="analytics", dry_run=True)
        (action,) = run.actions()
        assert action["sql"] in section  # the resize row of the table, verbatim
        assert run.cluster("analytics")["errors"] == []
    finally:
        emulator.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = %s", (cid,))
        emulator.execute("DROP CLUSTER analytics CASCADE")
