"""Event-driven cycles through a real Airflow 3.3 (``airflow standalone``: its triggerer runs
the cycle DAG's asset watcher) against the emulator at Materialize's statement-log flush lag
(5 s): a query refused on a cluster idle_suspend suspended starts a cycle with no scheduled
run (the cron never comes in the test), that cycle resumes the cluster, and its cluster event
starts the example DAG waiting for a resume (dags/examples/mz_schedctl_on_resume.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from af3_events import (
    CYCLE,
    EXAMPLE,
    refused_query,
    runs,
    standalone,
    task_instances,
    trigger_polls,
)
from test_airflow_ui import _wait, prerequisites  # noqa: F401  (the module's fixture)

from mz_schedctl_provider.emulator.control import Emulator, run_emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import Database
from mz_schedctl_provider.runtime.store import Store

pytestmark = pytest.mark.timeout(900)
CLUSTER = "adhoc"
FLUSH_S = 5.0  # Materialize writes its statement log every 5 s
EVENT_S = 240  # bounded waits: the event's run appears and ends (about 20 s when healthy)


def suspend_by_cycle(emu: Emulator) -> str:
    """A cluster with an index and idle_suspend, suspended by a real cycle (as the CLI runs
    it); returns its id."""
    emu.execute("CREATE TABLE t_adhoc (a int)")
    emu.execute(f"CREATE CLUSTER {CLUSTER} REPLICAS (r1 (SIZE = '25cc'))")
    emu.execute(f"CREATE INDEX i_adhoc IN CLUSTER {CLUSTER} ON t_adhoc (a)")
    (cid,) = emu.execute("SELECT id FROM mz_catalog.mz_clusters WHERE name = %s", (CLUSTER,))[0]
    db = Database.connect(emu.url)
    try:
        Store(db).bootstrap()
        emu.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, 'idle_suspend', '{\"idle_after_s\": 300}')",
            (cid,),
        )
        emu.advance(400)
        settings = cycle.CycleSettings()
        assert cycle.claim_lease(db, settings, cycle_id="setup").acquired
        plan = cycle.decide(cycle.collect(db, settings), cycle_id="setup", dry_run=False)
        cycle.persist(plan, cycle.apply(plan, db, settings), db, settings)
    finally:
        db.close()
    assert replica_names(emu) == [], "suspended by the setup cycle"
    emu.advance(60)  # past the trigger's rate limit (30 s after the last cycle's write)
    return str(cid)


def replica_names(emu: Emulator) -> list[str]:
    return [
        str(r[0])
        for r in emu.execute(
            "SELECT r.name FROM mz_catalog.mz_cluster_replicas r"
            " JOIN mz_catalog.mz_clusters c ON c.id = r.cluster_id WHERE c.name = %s",
            (CLUSTER,),
        )
    ]


@pytest.fixture(scope="module")
def setup(prerequisites: None) -> Iterator[tuple[Emulator, str]]:  # noqa: F811
    with run_emulator(port=0, sample_rate=1.0, log_flush_s=FLUSH_S) as emu:
        yield emu, suspend_by_cycle(emu)


def test_a_refused_query_starts_a_cycle_that_resumes_the_cluster(
    setup: tuple[Emulator, str],
) -> None:
    emu, cid = setup
    example_env = {
        "MZ_SCHEDCTL_EXAMPLE_HOST": f"127.0.0.1:{emu.port}",
        "MZ_SCHEDCTL_EXAMPLE_CLUSTER_ID": cid,
    }
    with standalone(emu.port, extra_env=example_env) as af:
        before = trigger_polls(emu)
        _wait("the event trigger polling", EVENT_S, lambda: trigger_polls(emu) > before + 1, 1)
        assert runs(af, CYCLE) == [], "no run before the query (the cron never comes)"
        assert replica_names(emu) == []

        refused_query(emu.url, CLUSTER, "t_adhoc")
        started = time.monotonic()
        (run,) = _wait("a cycle run started by the event", EVENT_S, lambda: runs(af, CYCLE), 1)
        assert run["run_type"] == "asset_triggered", run

        def finished() -> Any:
            got = [r for r in runs(af, CYCLE) if r["dag_run_id"] == run["dag_run_id"]]
            return got and got[0]["state"] in ("success", "failed") and got[0]

        done = _wait("the event's run to finish", EVENT_S, finished, 1)
        tis = task_instances(af, CYCLE, run["dag_run_id"])
        assert done["state"] == "success", (done, {t: ti["state"] for t, ti in tis.items()})
        assert tis["apply"]["state"] == "success", "the resume ran"
        assert replica_names(emu) == ["r1"], "resumed with the remembered replica"
        print(f"\nrefused query -> resumed: {time.monotonic() - started:.1f} s (info only)")

        # The cycle's cluster event started the DAG that waits for a resume.
        (example,) = _wait("the example DAG's run", EVENT_S, lambda: runs(af, EXAMPLE), 1)
        assert example["run_type"] == "asset_triggered"

        def example_done() -> Any:
            got = [r for r in runs(af, EXAMPLE) if r["dag_run_id"] == example["dag_run_id"]]
            return got and got[0]["state"] in ("success", "failed") and got[0]

        assert _wait("the example's run to finish", EVENT_S, example_done, 1)["state"] == "success"
        ex_tis = task_instances(af, EXAMPLE, example["dag_run_id"])
        assert ex_tis["report"]["state"] == "success", "the event said resumed"

        # Every cycle run so far was started by an event: none by the schedule.
        assert {r["run_type"] for r in runs(af, CYCLE)} == {"asset_triggered"}
