"""Operators for the scheduling cycle: signals -> decide -> apply -> persist, plus wipe-state.

Thin wrappers: every decision lives in :mod:`mz_schedctl_provider.engine`, every statement in
:mod:`mz_schedctl_provider.runtime`; all I/O goes through :class:`MaterializeHook`. Each
stage returns its JSON document (signals, plan, apply_result), which Airflow stores as the
task's XCom. The heavy modules are imported inside ``execute`` so DAG files parse fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
    TriggerRule,
)

from mz_schedctl_provider.runtime.flags import PAUSED_VARIABLE, flag
from mz_schedctl_provider.runtime.flags import kill_switch_on as _switch_on

if TYPE_CHECKING:
    from mz_schedctl_provider.hooks.materialize import MaterializeHook
    from mz_schedctl_provider.runtime.db import Database

# ---- helpers shared by the operators --------------------------------------------------------


def cycle_id_for(context: Any) -> str:
    """The cycle id of this DAG run: the run id plus a short hash of the dag id, run id and the
    run's start time. Stable across task retries of one run (so a retried task finds its own
    lease claim and audit intents), different between two Airflow deployments whose scheduled
    runs share a run id (so the lease tells them apart)."""
    dag_run = context["dag_run"]
    run_id = str(dag_run.run_id)
    started = getattr(dag_run, "start_date", None)
    dag_id = str(getattr(dag_run, "dag_id", "") or context["dag"].dag_id)
    digest = hashlib.sha256(f"{dag_id}|{run_id}|{started}".encode()).hexdigest()[:8]
    return f"{run_id}~{digest}"


def _from_params(context: Any, name: str, value: Any, default: Any) -> Any:
    """An operator argument, or the DAG run's Param of the same name when it is None."""
    if value is not None:
        return value
    params = context.get("params") or {}
    got = params.get(name, default) if hasattr(params, "get") else default
    return default if got is None else got


def _dry_run(context: Any, value: bool | None) -> bool:
    try:
        return flag(_from_params(context, "dry_run", value, False), name="dry_run")
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


def _filter(context: Any, value: str | None) -> str | None:
    """The cluster-name filter (Python ``re.fullmatch``), None for all clusters."""
    pattern = str(_from_params(context, "filter_clusters", value, "") or "").strip()
    if not pattern:
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        raise AirflowFailException(f"filter_clusters is not a valid regex: {exc}") from None
    return pattern


def approval_rule(settings: Any) -> Any:
    """The approval gate's rule (engine.approval.ApprovalRule) from its settings as text, None
    when off; a bad setting fails the task without retry, naming the setting."""
    if not settings:
        return None
    from mz_schedctl_provider.engine.approval import ApprovalRuleError, parse_rule

    try:
        return parse_rule(dict(settings))
    except ApprovalRuleError as exc:
        raise AirflowFailException(f"approval gate: {exc}") from None


def kill_switch_on(variable: str = PAUSED_VARIABLE) -> bool:
    """Whether the kill switch (an Airflow Variable) is on, by the one rule of
    :func:`mz_schedctl_provider.runtime.flags.kill_switch_on`. A failed lookup raises (the
    task fails and is retried) rather than being taken for "off"."""
    from airflow.providers.common.compat.sdk import Variable

    return _switch_on(Variable.get(variable, None))


class _MaterializeOperator(BaseOperator):
    """Common arguments of the cycle operators.

    :param materialize_conn_id: Airflow connection of type ``materialize`` (templated).
    """

    ui_color = "#e3d9f7"

    def __init__(self, *, materialize_conn_id: str = "materialize_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.materialize_conn_id = materialize_conn_id

    def get_hook(self) -> MaterializeHook:
        from mz_schedctl_provider.hooks.materialize import MaterializeHook

        return MaterializeHook(materialize_conn_id=self.materialize_conn_id)


# ---- signals --------------------------------------------------------------------------------


class MaterializeSignalsOperator(_MaterializeOperator):
    """Claim the single-writer lease (unless dry run or paused), then read the signals document.

    :param materialize_conn_id: Airflow connection of type ``materialize``.
    :param filter_clusters: only clusters whose whole name matches this regex; None takes the
        DAG run's ``filter_clusters`` Param; empty means every cluster with strategies.
    :param dry_run: read only, claim nothing; None takes the DAG run's ``dry_run`` Param.
    :param paused_variable: name of the kill-switch Airflow Variable.
    """

    template_fields: Sequence[str] = ("materialize_conn_id", "filter_clusters")

    def __init__(
        self,
        *,
        filter_clusters: str | None = None,
        dry_run: bool | None = None,
        paused_variable: str = PAUSED_VARIABLE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filter_clusters = filter_clusters
        self.dry_run_arg = dry_run
        self.paused_variable = paused_variable

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.runtime import cycle

        dry_run = _dry_run(context, self.dry_run_arg)
        pattern = _filter(context, self.filter_clusters)
        hook = self.get_hook()
        settings = hook.cycle_settings()
        cycle_id = cycle_id_for(context)
        db = hook.get_database()
        try:
            if dry_run:
                self.log.info("Dry run: reading only, no lease claimed, nothing will be written")
            elif kill_switch_on(self.paused_variable):
                self.log.warning(
                    "Kill switch Variable %s is on: no lease claimed; apply will hold back "
                    "every action and audit it as not executed",
                    self.paused_variable,
                )
            else:
                claim = cycle.claim_lease(db, settings, cycle_id=cycle_id)
                if claim.acquired:
                    self.log.info("Lease claimed for cycle %s until %s", cycle_id, claim.expires_at)
                else:
                    self.log.warning(
                        "Another cycle holds the lease: %s (cycle %s, expires %s). This cycle "
                        "plans but applies nothing.",
                        claim.holder,
                        claim.cycle_id,
                        claim.expires_at,
                    )
            doc: dict[str, Any] = cycle.collect(db, settings, filter_clusters=pattern)
        finally:
            db.close()
        self.log.info(
            "Signals at %s: %d cluster(s) in scope, %d strategy row(s), statement logging %s",
            doc.get("now"),
            len(doc.get("clusters", [])),
            len(doc.get("strategies", [])),
            "visible" if doc.get("logging_visible") else "NOT visible (no idle suspend)",
        )
        return doc


# ---- decide ---------------------------------------------------------------------------------


class MaterializeDecideOperator(_MaterializeOperator):
    """Turn the signals task's document into a plan (pure) and log it as a table, folded per
    cluster.

    :param signals_task_id: the task whose XCom is the signals document (read in ``execute``,
        not templated, so Rendered Templates carry no copy of it).
    :param materialize_conn_id: Airflow connection of type ``materialize`` (its extras say
        whether experimental strategies are enabled; nothing is sent to Materialize).
    :param filter_clusters: as for the signals operator; None takes the DAG run's Param.
    :param dry_run: plan as a dry run; None takes the DAG run's ``dry_run`` Param.
    :param experimental: enable experimental strategies; None takes the connection's extra.
    :param approval: the approval gate's settings as text (``approve_drops``...), None: off.
    """

    template_fields: Sequence[str] = ("materialize_conn_id", "filter_clusters")

    def __init__(
        self,
        *,
        signals_task_id: str = "signals",
        filter_clusters: str | None = None,
        dry_run: bool | None = None,
        experimental: bool | None = None,
        approval: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.signals_task_id = signals_task_id
        self.filter_clusters = filter_clusters
        self.dry_run_arg = dry_run
        self.experimental = experimental
        self.approval = approval

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.runtime import cycle

        signals = context["ti"].xcom_pull(task_ids=self.signals_task_id)
        if not isinstance(signals, dict):
            raise AirflowException(
                f"decide got no signals document (did the {self.signals_task_id} task run?)"
            )
        from mz_schedctl_provider.runtime.plan_seal import SEAL_XCOM_KEY, seal

        dry_run = _dry_run(context, self.dry_run_arg)
        hook = self.get_hook()
        experimental = self.experimental
        if experimental is None:
            experimental = hook.cycle_settings().experimental
        plan: dict[str, Any] = cycle.decide(
            signals,
            cycle_id=cycle_id_for(context),
            dry_run=dry_run,
            filter_clusters=_filter(context, self.filter_clusters),
            experimental=bool(experimental),
            approval=approval_rule(self.approval),
        )
        log_plan(self.log, plan)
        # Apply and persist act only on the plan this seal vouches for (an edited XCom fails).
        context["ti"].xcom_push(key=SEAL_XCOM_KEY, value=seal(plan, hook.plan_seal_key()))
        return plan


def _pulled(context: Any, task_id: str | None, key: str | None = None) -> Any:
    """An upstream task's XCom (None when there is no such task or it pushed nothing)."""
    if task_id is None:
        return None
    if key is None:
        return context["ti"].xcom_pull(task_ids=task_id)
    return context["ti"].xcom_pull(task_ids=task_id, key=key)


def _verified(hook: MaterializeHook, context: Any, plan: dict[str, Any], given: Any) -> None:
    """Fail the task (no retry: an edited plan stays edited) unless decide sealed this plan."""
    from mz_schedctl_provider.runtime.plan_seal import PlanRefused, verify

    try:
        verify(plan, given, hook.plan_seal_key(), cycle_id=cycle_id_for(context))
    except PlanRefused as exc:
        raise AirflowFailException(str(exc)) from None


def log_plan(log: Any, plan: dict[str, Any], result: dict[str, Any] | None = None) -> None:
    """The plan as people read it (the CLI prints the same table), at each line's level,
    folded per cluster in Airflow's log view."""
    from mz_schedctl_provider.runtime.plan_text import plan_lines

    _log_lines(log, plan_lines(plan, result, fold=True))


def _log_lines(log: Any, lines: Sequence[tuple[str, str]]) -> None:
    for level, line in lines:
        getattr(log, level)("%s", line)


# ---- apply ----------------------------------------------------------------------------------


class MaterializeApplyOperator(_MaterializeOperator):
    """Carry out the decide task's plan unless it is a dry run, the kill switch is on or another
    cycle holds the lease; safe to retry (the live catalog is re-checked before every
    statement).

    The task ends **skipped** when no action ran (dry run, held back, another cycle's lease,
    nothing to do), **success** when actions ran, **failed** (not retried) when an action
    failed; its result is the XCom ``apply_result`` in every case, for persist.

    :param decide_task_id: the decide task, whose XCom ``plan_seal`` vouches for the plan
        (read in ``execute``, not templated: Rendered Templates carry no plan copy); a plan
        without a matching seal, an edited XCom, is refused and nothing runs.
    :param plan_task_id: the task whose XCom is the plan; None: the decide task.
    :param materialize_conn_id: Airflow connection of type ``materialize``.
    :param paused_variable: name of the kill-switch Airflow Variable; when it is true every
        action is audited as held back (``executed = false``) and nothing runs.
    :param reconnect_attempts: after a connection drops mid-statement, how many times to open
        a new one to read back what happened before the task gives up (and is retried).
    """

    template_fields: Sequence[str] = ("materialize_conn_id",)

    def __init__(
        self,
        *,
        decide_task_id: str = "decide",
        plan_task_id: str | None = None,
        paused_variable: str = PAUSED_VARIABLE,
        reconnect_attempts: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decide_task_id = decide_task_id
        self.plan_task_id = plan_task_id or decide_task_id
        self.paused_variable = paused_variable
        self.reconnect_attempts = reconnect_attempts

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.runtime import cycle
        from mz_schedctl_provider.runtime.plan_seal import SEAL_XCOM_KEY
        from mz_schedctl_provider.runtime.run_summary import run_kind

        plan = _pulled(context, self.plan_task_id)
        if not isinstance(plan, dict):
            raise AirflowException(
                f"apply got no plan document (did the {self.plan_task_id} task run?)"
            )
        paused = False if plan.get("dry_run") else kill_switch_on(self.paused_variable)
        if paused:
            self.log.warning(
                "Kill switch Variable %s is on: every action is held back and audited as not "
                "executed",
                self.paused_variable,
            )
        hook = self.get_hook()
        _verified(hook, context, plan, _pulled(context, self.decide_task_id, SEAL_XCOM_KEY))
        settings = hook.cycle_settings()
        opened: list[Database] = []
        db = hook.get_database()
        opened.append(db)
        reconnect = cycle.reconnector(
            hook.get_database, opened=opened, attempts=self.reconnect_attempts, log=self.log
        )
        try:
            result: dict[str, Any] = cycle.apply(
                plan, db, settings, paused=paused, reconnect=reconnect
            )
        finally:
            for each in opened:
                each.close()
        log_plan(self.log, plan, result)
        context["ti"].xcom_push(key=APPLY_RESULT_XCOM_KEY, value=result)
        kind = run_kind(plan, result)
        if kind == "failed_actions":
            failed = [r for r in result.get("results") or [] if r.get("outcome") == "failed"]
            # Not retried: a retry re-plans nothing; the next cycle decides afresh.
            raise AirflowFailException(
                f"{len(failed)} action(s) failed (see the table above); persist records the rest"
            )
        if kind != "applied":
            why = result.get("reason") or "no action to run"
            raise AirflowSkipException(f"nothing executed: {why}")
        return result


APPLY_RESULT_XCOM_KEY = "apply_result"


# ---- persist --------------------------------------------------------------------------------


class MaterializePersistOperator(_MaterializeOperator):
    """Write each cluster's new state, prune old rows and release the lease; return the run's
    summary (its kind, actions, credits/h, problems) and log it; fail when a problem alerts.

    A failed action alerts in every run; a persisting problem (invalid config, stuck cluster)
    alerts in the first run that sees it and again once per re-alert interval (connection
    extra ``realert_interval_s``, default 1 h, server clock), remembered in the controller's
    alerts table; a run in between lists it and succeeds. Runs whatever happened upstream
    (trigger rule ``all_done`` by default) so the lease is always released; a missing apply
    result writes no state and fails the run.

    :param decide_task_id: the decide task, whose XCom ``plan_seal`` vouches for the plan;
        without a matching seal no state is written (the lease is still released) and the run
        fails.
    :param plan_task_id: the task whose XCom is the plan; None: the decide task.
    :param apply_task_id: the task whose XCom ``apply_result`` is what apply did; None in a
        DAG without apply (the preview: a dry run by definition).
    :param materialize_conn_id: Airflow connection of type ``materialize``.
    :param dry_run: used only when there is no plan; None takes the DAG run's ``dry_run`` Param.
    :param approval: the approval gate's settings as text, None: off; with it on, persist
        writes the requests of waiting actions (XCom ``outcome``: ``approval_requests``).
    """

    template_fields: Sequence[str] = ("materialize_conn_id",)

    def __init__(
        self,
        *,
        decide_task_id: str = "decide",
        plan_task_id: str | None = None,
        apply_task_id: str | None = "apply",
        dry_run: bool | None = None,
        approval: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.decide_task_id = decide_task_id
        self.plan_task_id = plan_task_id or decide_task_id
        self.apply_task_id = apply_task_id
        self.dry_run_arg = dry_run
        self.approval = approval

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.engine.contract import apply_result_to_json
        from mz_schedctl_provider.engine.models import ApplyResult
        from mz_schedctl_provider.runtime import cycle
        from mz_schedctl_provider.runtime.plan_seal import SEAL_XCOM_KEY
        from mz_schedctl_provider.runtime.run_summary import summary, summary_lines

        hook = self.get_hook()
        settings = hook.cycle_settings()
        pulled = _pulled(context, self.plan_task_id)
        plan = pulled if isinstance(pulled, dict) else None
        if plan is None:
            dry_run = _dry_run(context, self.dry_run_arg)
            if not dry_run:
                self._release_orphan_lease(hook, settings, cycle_id_for(context))
            raise AirflowException(
                "No plan: the signals or decide task did not finish (see their logs); nothing was "
                "applied" + ("" if dry_run else " and this cycle's lease claim was released")
            )
        try:
            _verified(hook, context, plan, _pulled(context, self.decide_task_id, SEAL_XCOM_KEY))
        except AirflowFailException:
            if not plan.get("dry_run"):
                self._release_orphan_lease(hook, settings, cycle_id_for(context))
            raise
        applied = _pulled(context, self.apply_task_id, APPLY_RESULT_XCOM_KEY)
        apply_doc = applied if isinstance(applied, dict) else None
        extra_problems: list[str] = []
        if apply_doc is None and plan.get("dry_run") and self.apply_task_id is None:
            apply_doc = apply_result_to_json(
                ApplyResult(cycle_id=plan["cycle_id"], executed=False, reason="dry run")
            )
        written_doc = apply_doc
        if apply_doc is None:
            missing = ApplyResult(
                cycle_id=plan["cycle_id"], executed=False, reason="apply did not finish"
            )
            written_doc = apply_result_to_json(missing)
            extra_problems.append(
                "apply did not finish (see its log): no state was written; the next cycle "
                "re-reads the catalog and its audit"
            )
        db = hook.get_database()
        try:
            outcome = cycle.persist(
                plan,
                written_doc or {},
                db,
                settings,
                approval=approval_rule(self.approval),
                filter_clusters=_filter(context, None),
            )
        finally:
            db.close()
        doc: dict[str, Any] = outcome.to_json()
        doc["problems"] = list(doc["problems"]) + extra_problems
        doc["alerting"] = list(doc["alerting"]) + extra_problems
        self.log.info(
            "Persisted %d cluster state(s)%s",
            doc["states_written"],
            " (dry run: nothing written)" if plan.get("dry_run") else "; lease released",
        )
        context["ti"].xcom_push(key="outcome", value=doc)
        run = summary(plan, apply_doc, doc)
        lines = summary_lines(run)
        _log_lines(self.log, lines)
        # The same as text: the XCom tab shows it as it is (the documents fold as JSON).
        context["ti"].xcom_push(key="summary", value="\n".join(line for _lvl, line in lines))
        _note_on_airflow2(context, run["headline"], self.log)
        from mz_schedctl_provider.operators.cluster_events import emit_cluster_events

        # After the state is written: other DAGs may start on these at once.
        events = emit_cluster_events(
            outlets=self.outlets,
            context=context,
            plan=plan,
            apply_doc=apply_doc,
            hook=hook,
            log=self.log,
        )
        context["ti"].xcom_push(key="cluster_events", value=events)
        if doc["alerting"]:
            # Not retried: the problems are facts of this cycle; the next run proceeds normally.
            # Each is listed once, above; this line only counts them.
            raise AirflowFailException(
                f"{len(doc['alerting'])} problem(s) alerting in this run (listed above and in "
                f"the summary); everything else was handled"
            )
        return run

    def _release_orphan_lease(self, hook: MaterializeHook, settings: Any, cycle_id: str) -> None:
        from mz_schedctl_provider.runtime import cycle

        if not cycle.release_after_failure([hook.get_database], settings, cycle_id=cycle_id):
            self.log.warning("Could not release lease claim of %s: it expires on its own", cycle_id)


def _note_on_airflow2(context: Any, text: str, log: Any) -> None:
    """On Airflow 2 a task may set its run's note (shown in the grid): the summary's headline.
    Airflow 3 has no such path for a task (its note is the user's), so nothing is done there;
    a note that cannot be written is only a warning."""
    from airflow import __version__ as airflow_version

    if int(airflow_version.split(".")[0]) >= 3:
        return
    try:
        from airflow.utils.session import create_session

        with contextlib.suppress(ImportError):
            # The note's user_id refers to the FAB users table: its model must be loaded.
            import airflow.providers.fab.auth_manager.models  # noqa: F401

        with create_session() as session:
            run = session.merge(context["dag_run"])
            run.note = text[:1000]
    except Exception as exc:  # cosmetic: the summary XCom and the log carry the same
        log.warning("Could not set the run's note: %s", exc)


# ---- wipe state -----------------------------------------------------------------------------


class MaterializeWipeStateOperator(_MaterializeOperator):
    """Delete the controller's stored state (all clusters, or those matching a filter) so the
    next cycle decides from the catalog alone; strategies and the audit trail are kept.

    :param filter_clusters: only clusters whose whole name matches this regex; None takes the
        DAG run's ``filter_clusters`` Param; empty means every cluster.
    :param materialize_conn_id: Airflow connection of type ``materialize``.
    """

    template_fields: Sequence[str] = ("materialize_conn_id", "filter_clusters")

    def __init__(self, *, filter_clusters: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_clusters = filter_clusters

    def execute(self, context: Any) -> dict[str, Any]:
        from mz_schedctl_provider.runtime import cycle

        pattern = _filter(context, self.filter_clusters)
        hook = self.get_hook()
        db = hook.get_database()
        try:
            wiped = cycle.wipe_state(db, hook.cycle_settings(), filter_clusters=pattern)
        finally:
            db.close()
        self.log.info(
            "Deleted %d state row(s) of %s",
            wiped.deleted_state_rows,
            "all clusters"
            if pattern is None
            else f"clusters matching {pattern!r}: {wiped.clusters}",
        )
        return wiped.to_json()
