"""The approval gate through a real Airflow: the cycle DAG asks (starting one run of the
approval DAG, never waiting for it) while a resume runs; the approval DAG's human-in-the-loop
task answered the way Airflow's own REST handler answers it; and the gate's parse-time rules
(off: no DAG; on Airflow 2.11: an import error naming the version)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

pytest.importorskip("airflow.models")  # not just tests/airflow seen as a namespace package

from afsupport import (
    AIRFLOW_ENV,
    DAGS_FOLDER,
    add_strategy,
    airflow_major,
    bootstrap,
    load_dag,
    make_cluster,
    replicas,
    run_dag,
    state,
    tis,
    xcom,
)

GATE = {"MZ_SCHEDCTL_APPROVE_DROPS": "true", "MZ_SCHEDCTL_APPROVAL_TIMEOUT_S": "900"}


def _airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = (int(p) for p in __version__.split(".")[:2])
    return major, minor


needs_hitl = pytest.mark.skipif(
    airflow_major() < 3 or _airflow_version() < (3, 1), reason="human in the loop: Airflow 3.1+"
)


@pytest.fixture
def gate_on() -> Iterator[None]:
    """The approval gate's settings as the DAG files read them at parse time."""
    old = {k: os.environ.get(k) for k in GATE}
    os.environ.update(GATE)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _parse(env: dict[str, str]) -> dict[str, Any]:
    """The shipped DAG folder parsed in a fresh interpreter with these settings."""
    code = f"""
import json
from airflow.models import DagBag
import airflow
kw = {{}} if airflow.__version__.startswith("3") else {{"include_examples": False}}
bag = DagBag(dag_folder={str(DAGS_FOLDER)!r}, **kw)
print(json.dumps({{"dags": sorted(bag.dags), "version": airflow.__version__,
                  "errors": {{k: str(v) for k, v in bag.import_errors.items()}}}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**AIRFLOW_ENV, "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_gate_off_changes_nothing_and_on_needs_airflow_3_1(airflow_home: Any) -> None:
    off = _parse({})
    assert off["errors"] == {}
    assert "mz_schedctl_approval" not in off["dags"]
    assert {"mz_schedctl_cycle", "mz_schedctl_wipe_state"} <= set(off["dags"])
    on = _parse(GATE)
    if _airflow_version() >= (3, 1):
        assert on["errors"] == {}
        assert {"mz_schedctl_approval", "mz_schedctl_cycle"} <= set(on["dags"])
        return
    # Airflow 2.11: the cycle, preview and approval files fail to import, naming the version
    # (and the tests' own factory-built cycle, mz_test_alerting.py).
    assert sorted(os.path.basename(p) for p in on["errors"]) == [
        "mz_schedctl_approval.py",
        "mz_schedctl_cycle.py",
        "mz_schedctl_plan.py",
        "mz_test_alerting.py",
    ]
    for message in on["errors"].values():
        assert "needs Airflow 3.1+" in message
        assert f"this is {on['version']}" in message


def _approval_runs() -> list[Any]:
    from airflow.models import DagRun

    return list(DagRun.find(dag_id="mz_schedctl_approval"))


@needs_hitl
def test_a_resume_runs_while_a_drop_awaits_approval_and_the_cycle_does_not_wait(
    mz_conn: str, emulator: Any, gate_on: None
) -> None:
    bootstrap(emulator)
    idle = make_cluster(emulator, "appr_idle", view=False)
    resumed = make_cluster(emulator, "appr_resumed", "50cc", view=False)
    emulator.execute("CREATE TABLE appr_t (a int)")
    emulator.advance(70)
    add_strategy(emulator, resumed, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    cycle = load_dag(DAGS_FOLDER, "mz_schedctl_cycle")
    assert "ask_approval" in cycle.task_dict
    # The gate holds drops back: suspend the second cluster with the gate off, by the CLI path.
    from mz_schedctl_provider.runtime import cycle as stages
    from mz_schedctl_provider.runtime.db import Database

    db = Database(emulator.connect())
    try:
        cid = stages.new_cycle_id("setup")
        stages.claim_lease(db, stages.CycleSettings(), cycle_id=cid)
        plan = stages.decide(
            stages.collect(db, stages.CycleSettings(), filter_clusters="appr_resumed"),
            cycle_id=cid,
            dry_run=False,
        )
        result = stages.apply(plan, db, stages.CycleSettings())
        stages.persist(plan, result, db, stages.CycleSettings())
    finally:
        db.close()
    assert replicas(emulator, "appr_resumed") == []
    add_strategy(emulator, idle, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    with (
        emulator.connect(options="-c cluster=appr_resumed") as user,
        pytest.raises(psycopg.Error),
    ):
        user.execute("SELECT * FROM appr_t")
    emulator.advance(10)
    before = len(_approval_runs())

    # dag.test() writes the DAG folder's DAGs to the metadata DB (the trigger's target too).
    dr = run_dag(cycle, {"filter_clusters": "appr_idle|appr_resumed"})
    assert state(dr) == "success", {t: state(ti) for t, ti in tis(dr).items()}
    assert replicas(emulator, "appr_resumed") == [("r1", "50cc")]  # the resume ran
    assert replicas(emulator, "appr_idle") == [("r1", "25cc")]  # the drop waits
    plan = xcom(dr, "decide")
    (drop,) = [
        a for c in plan["clusters"] if c["cluster_name"] == "appr_idle" for a in c["actions"]
    ]
    assert (drop["status"], drop["codes"][-1]) == ("deferred", "awaiting_approval")
    (request_id,) = xcom(dr, "persist", key="outcome")["approval_requests"]
    assert state(tis(dr)["ask_approval"]) == "success"
    runs = _approval_runs()
    assert len(runs) == before + 1
    assert runs[-1].conf == {"request_ids": [request_id]}
    assert state(runs[-1]) == "queued"  # started, unanswered: the cycle did not wait

    # The lease was released: the next cycle runs now; it asks nothing new (still pending).
    emulator.advance(10)
    again = run_dag(cycle, {"filter_clusters": "appr_idle|appr_resumed"})
    assert state(again) == "success"
    assert xcom(again, "apply", key="apply_result")["executed"] is True
    assert "approval_requests" not in xcom(again, "persist", key="outcome")
    assert state(tis(again)["ask_approval"]) == "skipped"
    assert len(_approval_runs()) == before + 1


def _respond(dag_id: str, run_id: str, chosen: list[str], user: str) -> None:
    """What Airflow's PATCH .../hitlDetails handler does (core API, routes/public/hitl.py):
    record the response and resume the parked task."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils import timezone
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == "approve",
            )
        ).one()
        detail = session.scalars(select(HITLDetail).where(HITLDetail.ti_id == ti.id)).one()
        detail.responded_by = {"id": user, "name": user}
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = chosen
        detail.params_input = {}
        session.add(detail)
        handle_event_submit(
            TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
        )


def _hitl_detail(dag_id: str, run_id: str) -> Any:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(HITLDetail.options, HITLDetail.body, HITLDetail.defaults)
            .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).first()
    return row


@needs_hitl
def test_an_approval_answered_in_airflow_runs_the_drop_in_the_next_cycle(
    mz_conn: str, emulator: Any, gate_on: None
) -> None:
    import time

    bootstrap(emulator)
    idle = make_cluster(emulator, "appr_ok", view=False)
    emulator.advance(70)
    add_strategy(emulator, idle, "idle_suspend", {"idle_after_s": 300})
    emulator.advance(400)
    cycle = load_dag(DAGS_FOLDER, "mz_schedctl_cycle")
    first = run_dag(cycle, {"filter_clusters": "appr_ok"})
    (request_id,) = xcom(first, "persist", key="outcome")["approval_requests"]

    approval = load_dag(DAGS_FOLDER, "mz_schedctl_approval")
    assert approval.max_active_runs >= 100
    seen: dict[str, Any] = {}

    def answer() -> None:
        """A person on the Required actions page: waits for the question, approves the drop.
        (dag.test() must run in the main thread: its tasks' timeouts use signals.)"""
        from airflow.models import DagRun

        for _ in range(240):
            runs = [r for r in DagRun.find(dag_id="mz_schedctl_approval") if r.conf]
            mine = [r for r in runs if r.conf.get("request_ids") == [request_id]]
            detail = _hitl_detail("mz_schedctl_approval", mine[-1].run_id) if mine else None
            if detail is not None:
                seen["detail"] = tuple(detail)
                _respond(
                    "mz_schedctl_approval",
                    mine[-1].run_id,
                    ["1. appr_ok: drop_replica 'r1'"],
                    "alice",
                )
                return
            time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    dr = approval.test(run_conf={"request_ids": [request_id]})
    thread.join(timeout=10)
    assert "detail" in seen, "the approval task never asked"
    options, body, defaults = seen["detail"]
    assert options == ["none: reject all", "1. appr_ok: drop_replica 'r1'"]
    assert defaults == ["none: reject all"]  # no answer: nothing approved
    assert "| 1. appr_ok: drop_replica 'r1' | appr_ok |" in body
    assert 'DROP CLUSTER REPLICA "appr_ok"."r1"' in body
    assert "**Plan of appr_ok**" in body
    assert state(dr) == "success", {t: state(ti) for t, ti in tis(dr).items()}
    assert xcom(dr, "record") == {"approved": [request_id], "rejected": [], "expired": []}

    emulator.advance(10)
    second = run_dag(cycle, {"filter_clusters": "appr_ok"})
    assert state(second) == "success"
    plan = xcom(second, "decide")
    (drop,) = plan["clusters"][0]["actions"]
    assert (drop["status"], drop["codes"][-1]) == ("planned", "approved")
    assert xcom(second, "apply", key="apply_result")["results"][0]["outcome"] == "succeeded"
    assert replicas(emulator, "appr_ok") == []


@needs_hitl
def test_no_answer_by_the_timeout_rejects_and_audits(mz_conn: str, emulator: Any) -> None:
    """The HITL task's response_timeout passes unanswered; the scheduler's own timeout sweep
    (SchedulerJobRunner.check_awaiting_input_timeouts) resumes it with the defaults: nothing
    approved, so record rejects the drop and audits it as not executed."""
    import time

    from afsupport import audit_rows
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    old = {k: os.environ.get(k) for k in GATE}
    os.environ.update({**GATE, "MZ_SCHEDCTL_APPROVAL_TIMEOUT_S": "1"})
    try:
        bootstrap(emulator)
        idle = make_cluster(emulator, "appr_silent", view=False)
        emulator.advance(70)
        add_strategy(emulator, idle, "idle_suspend", {"idle_after_s": 300})
        emulator.advance(400)
        cycle = load_dag(DAGS_FOLDER, "mz_schedctl_cycle")
        first = run_dag(cycle, {"filter_clusters": "appr_silent"})
        (request_id,) = xcom(first, "persist", key="outcome")["approval_requests"]
        approval = load_dag(DAGS_FOLDER, "mz_schedctl_approval")
        swept: dict[str, bool] = {}

        def nobody_answers() -> None:
            from airflow.models import DagRun

            for _ in range(240):
                runs = [r for r in DagRun.find(dag_id="mz_schedctl_approval") if r.conf]
                mine = [r for r in runs if r.conf.get("request_ids") == [request_id]]
                if mine and _hitl_detail("mz_schedctl_approval", mine[-1].run_id) is not None:
                    time.sleep(1.5)  # past the 1 s response timeout
                    SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
                    swept["done"] = True
                    return
                time.sleep(0.5)

        thread = threading.Thread(target=nobody_answers, daemon=True)
        thread.start()
        dr = approval.test(run_conf={"request_ids": [request_id]})
        thread.join(timeout=10)
        assert swept.get("done"), "the approval task never asked"
        assert state(dr) == "success", {t: state(ti) for t, ti in tis(dr).items()}
        assert xcom(dr, "approve")["chosen_options"] == ["none: reject all"]
        assert xcom(dr, "record") == {"approved": [], "rejected": [request_id], "expired": []}
        notes = [
            (r["ctx"].get("note"), r["executed"])
            for r in audit_rows(emulator, idle)
            if "approval_request" in r["ctx"]
        ]
        assert notes == [("rejected by nobody (no answer by the timeout)", False)]
        second = run_dag(cycle, {"filter_clusters": "appr_silent"})
        (drop,) = xcom(second, "decide")["clusters"][0]["actions"]
        assert (drop["status"], drop["codes"][-1]) == ("deferred", "approval_rejected")
        assert replicas(emulator, "appr_silent") == [("r1", "25cc")]
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
