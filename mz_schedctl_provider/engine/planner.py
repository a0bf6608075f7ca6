"""decide: (signals, options) -> Plan, and next_states: (plan, apply result) -> states.

The loop lives here; the arithmetic lives in the strategies and rails. Per cluster:
load state -> scope -> validate rows (row_config) -> run strategies by priority (each on its
own state; in its cooldown only its own new actions wait: cooldown.py) -> diff -> rails -> ids,
cost, SQL. One cluster's bad row or odd state never stops the others.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

from . import managed
from .approval import ApprovalRule, gate_plan
from .config import row_enabled
from .cooldown import cooldown_until, may_decide_while_cooling
from .desired import Desired
from .evidence import cluster_events, last_suspend, owned_by_evidence
from .facts import ClusterContext, credits_of, is_predecessor_name, iso
from .models import (
    Action,
    ApplyResult,
    Cluster,
    ClusterPlan,
    ClusterState,
    DesiredReplica,
    Finding,
    JsonObject,
    Plan,
    Signals,
    Size,
    StrategyRow,
)
from .resize_stuck import stuck_resizes
from .row_config import RowConfig, newest_rows, parse_rows
from .safety import (
    DEFAULT_LIMITS,
    Limits,
    creates_first,
    diff_actions,
    next_backoff,
    rail_backoff,
    rail_last_hydrated,
    rail_rate_limit,
    rail_single_replica,
    recent_count,
    scope_finding,
)
from .shadow import shadow_finding, unclaimed
from .state import LAST_ACTION_KEY, load_state, newest_row
from .strategies import suspending_strategies
from .unknown_rows import unknown_cluster_findings

Render = Callable[[Action], str]
ACTION_NAMESPACE = uuid.UUID("5f1d3c2a-7b8e-4c1d-9a55-3d0e6f4b2a10")


@dataclass
class Pass:
    """Result of running strategies and rails once (the real pass or the shadow pass)."""

    desired: Desired
    states: dict[str, JsonObject] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)


def decide(
    signals: Signals,
    *,
    cycle_id: str,
    dry_run: bool,
    filter_clusters: str | None = None,
    render: Render | None = None,
    experimental: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    approval: ApprovalRule | None = None,
) -> Plan:
    """The plan for every cluster in scope (at least one enabled strategy row); with an
    approval rule, the actions it matches wait for a person (approval.py)."""
    pattern = re.compile(filter_clusters) if filter_clusters is not None else None
    sizes = {s.name: s for s in signals.sizes}
    rows = newest_rows(signals.strategies)
    plans: list[ClusterPlan] = []
    for cluster in signals.clusters:
        if pattern is not None and not pattern.fullmatch(cluster.name):
            continue
        enabled = [r for r in rows.get(cluster.id, ()) if row_enabled(r)]
        if not enabled:
            continue  # removing all rows of a cluster leaves its replicas as they are
        plan = decide_cluster(
            signals=signals,
            cluster=cluster,
            rows=enabled,
            sizes=sizes,
            cycle_id=cycle_id,
            experimental=experimental,
            limits=limits,
        )
        if approval is not None and approval.on:
            plan = gate_plan(
                plan,
                cluster=cluster,
                rule=approval,
                approvals=signals.approvals,
                now=signals.now,
                reprice=partial(
                    price, sizes=sizes, before=plan.credits_per_hour_before, cluster=cluster
                ),
            )
        if render is not None:
            plan = replace(plan, actions=tuple(replace(a, sql=render(a)) for a in plan.actions))
        plans.append(plan)
    return Plan(
        cycle_id=cycle_id,
        now=signals.now,
        dry_run=dry_run,
        clusters=tuple(plans),
        experimental=experimental,
        findings=unknown_cluster_findings(
            rows=rows,
            clusters={**signals.cluster_names, **{c.id: c.name for c in signals.clusters}},
            pattern=pattern,
        ),
    )


def owned_names(
    *,
    cluster: Cluster,
    configs: list[RowConfig],
    state: ClusterState,
    sizes: Mapping[str, Size],
    by_evidence: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """Replicas the controller may touch: all, or (scope "owned") its own and the predecessor's.
    Its own: named in the state, or created by it per the audit trail (``by_evidence``), so a
    lost state row does not disown them. A managed cluster is changed as a whole (ALTER
    CLUSTER): all its replicas count."""
    if cluster.managed or not any(c.common.replica_scope == "owned" for c in configs):
        return frozenset(r.name for r in cluster.replicas)
    return frozenset(
        r.name
        for r in cluster.replicas
        if r.name in state.owned
        or r.name in by_evidence
        or is_predecessor_name(cluster=cluster, name=r.name, sizes=sizes)
    )


def initial_desired(ctx: ClusterContext) -> Desired:
    """Before any strategy: keep every owned replica as it is."""
    return Desired(
        replicas=tuple(
            DesiredReplica(
                name=r.name, size=r.size, strategy="current", reason="exists", code="exists"
            )
            for r in ctx.owned_replicas()
            if r.size is not None
        )
    )


def run_strategies(
    *, configs: list[RowConfig], ctx: ClusterContext, state: ClusterState, now: datetime
) -> Pass:
    """Strategies in priority order, each on its own state; the desired set flows through."""
    out = Pass(desired=initial_desired(ctx))
    for config in configs:
        name = config.spec.name
        own = dict(state.strategies.get(name, {}))
        until = cooldown_until(state=state, config=config)
        result = config.strategy.run(
            ctx=ctx,
            state=own,
            now=now,
            desired=out.desired,
            row_updated_at=config.updated_at,
        )
        if until is not None and now < until:
            # Still run: its last decision holds, a resume never waits; only a new action of
            # its own is delayed (cooldown.py).
            if not may_decide_while_cooling(ctx=ctx, before=out.desired, after=result.desired):
                out.states[name] = own
                out.notes.append(f"{name}: in cooldown until {iso(until)}")
                continue
            out.notes.append(f"{name}: in cooldown until {iso(until)}; its decision holds")
        new_state = dict(result.state)
        if LAST_ACTION_KEY in own:
            new_state[LAST_ACTION_KEY] = own[LAST_ACTION_KEY]  # cooldown anchor: persist's to move
        out.desired = result.desired
        out.states[name] = new_state
        out.notes.extend(f"{name}: {r}" for r in result.reasons)
        out.findings.extend(result.findings)
    return out


def apply_rails(
    *,
    run: Pass,
    ctx: ClusterContext,
    state: ClusterState,
    signals: Signals,
    allow_downtime: bool,
    limits: Limits,
    resize_timeout_s: Mapping[str, float] | None = None,
) -> Pass:
    """Diff the desired set against the catalog, then every rail in order.

    A managed cluster's desired set becomes at most one ALTER CLUSTER instead (managed.py);
    the backoff and the rate limit hold for it as for any action.
    """
    finding: Finding | None = None
    if ctx.cluster.managed:
        timeouts = resize_timeout_s or {}
        actions, found = managed.plan_alter(
            ctx=ctx,
            desired=run.desired,
            allow_downtime=allow_downtime,
            timeout_s=lambda s: timeouts.get(s, managed.DEFAULT_RESIZE_TIMEOUT_S),
        )
        run.findings.extend(found)
        finding = next((f for f in found if f.kind == "downtime"), None)
    else:
        actions = creates_first(
            diff_actions(ctx=ctx, desired=run.desired, strategy_fallback="safety")
        )
        actions, why = rail_last_hydrated(
            ctx=ctx, actions=actions, empty_on_purpose=run.desired.empty_on_purpose
        )
        if why:
            run.notes.append(f"safety: {why}")
        actions, finding = rail_single_replica(
            ctx=ctx, actions=actions, desired=run.desired, allow_downtime=allow_downtime
        )
        if finding is not None:
            run.findings.append(finding)
    actions, why = rail_backoff(actions=actions, backoff=state.backoff, now=signals.now)
    if why:
        run.notes.append(f"safety: {why}")
    already = recent_count(
        recent=signals.recent_actions, cluster_id=ctx.cluster.id, now=signals.now, limits=limits
    )
    downtime = finding is not None and finding.kind == "downtime"
    actions, why = rail_rate_limit(
        actions=actions, already=already, limits=limits, all_or_nothing=downtime
    )
    if why:
        run.notes.append(f"safety: {why}")
    run.actions = actions
    return run


def decide_cluster(
    *,
    signals: Signals,
    cluster: Cluster,
    rows: list[StrategyRow],
    sizes: Mapping[str, Size],
    cycle_id: str,
    experimental: bool,
    limits: Limits,
) -> ClusterPlan:
    """One cluster's plan; never raises for bad config or state, reports instead."""
    state, state_finding = load_state(newest_row(signals.states, cluster.id))
    before = sum(credits_of(sizes=sizes, size=r.size) for r in cluster.replicas)
    base = ClusterPlan(
        cluster_id=cluster.id,
        cluster_name=cluster.name,
        credits_per_hour_before=before,
        credits_per_hour_after=before,
        findings=(state_finding,) if state_finding else (),
        prev_state=state,
        state=state,
    )
    out_of_scope = scope_finding(cluster)
    if out_of_scope is not None:
        return with_findings(base, [out_of_scope])
    configs, errors, findings = parse_rows(
        rows=rows, cluster=cluster, sizes=sizes, experimental=experimental
    )
    if errors:
        return with_findings(replace(base, errors=tuple(errors)), findings)
    if cluster.managed:
        busy = managed.busy_reason(cluster)
        if busy is not None:
            return with_findings(replace(base, notes=(f"managed: {busy}",)), findings)
        applicable = []
        for c in configs:
            skip = managed.not_applicable(
                strategy=c.spec.name, why=c.spec.not_applicable_to_managed
            )
            if skip is None:
                applicable.append(c)
            else:
                findings.append(skip)
        configs = applicable
    events = cluster_events(signals.replica_events, cluster.id)
    by_evidence = owned_by_evidence(cluster=cluster, events=events)
    owned = owned_names(
        cluster=cluster, configs=configs, state=state, sizes=sizes, by_evidence=by_evidence
    )
    owned_scope = not cluster.managed and any(c.common.replica_scope == "owned" for c in configs)
    suspenders = suspending_strategies()
    ctx = ClusterContext(
        cluster=cluster,
        sizes=sizes,
        owned=owned,
        logging_visible=signals.logging_visible,
        controller_cluster=signals.controller_cluster,
        suspenders=suspenders,
        log_flush_lag_s=signals.log_flush_lag_s,
        suspend_evidence=last_suspend(cluster=cluster, events=events, suspenders=suspenders),
    )
    allow_downtime = any(c.common.allow_downtime for c in configs if not c.common.shadow)
    timeouts = {c.spec.name: c.common.resize_timeout_s for c in configs}
    real_configs = [c for c in configs if not c.common.shadow]
    real = run_strategies(configs=real_configs, ctx=ctx, state=state, now=signals.now)
    if not cluster.managed:
        # A managed cluster's resize has its own timeout (a graceful reconfiguration).
        findings += stuck_resizes(
            ctx=ctx,
            desired=real.desired,
            now=signals.now,
            timeout_s=lambda s: timeouts.get(s, managed.DEFAULT_RESIZE_TIMEOUT_S),
        )
    if cluster.managed:
        want = managed.wanted(real.desired, current=cluster.size)
        state, failed = managed.account_failed_resize(
            cluster=cluster,
            state=state,
            wanted_size=want.size if want is not None else None,
            now=signals.now,
            limits=limits,
        )
        if failed is not None:
            findings.append(failed)
    real = apply_rails(
        run=real,
        ctx=ctx,
        state=state,
        signals=signals,
        allow_downtime=allow_downtime,
        limits=limits,
        resize_timeout_s=timeouts,
    )
    states = dict(real.states)
    actions = list(real.actions)
    notes, found = list(real.notes), [*findings, *real.findings]
    if len(real_configs) < len(configs):
        shadow = run_strategies(configs=configs, ctx=ctx, state=state, now=signals.now)
        shadow = apply_rails(
            run=shadow,
            ctx=ctx,
            state=state,
            signals=signals,
            allow_downtime=allow_downtime,
            limits=limits,
            resize_timeout_s=timeouts,
        )
        actions += shadow_only(real=real.actions, shadow=shadow.actions)
        for c in configs:
            if c.common.shadow:
                states[c.spec.name] = unclaimed(state=shadow.states[c.spec.name], ctx=ctx)
        notes += [f"shadow {n}" for n in shadow.notes if n not in real.notes]
        found += [
            shadow_finding(f)
            for f in shadow.findings
            if f.strategy is not None and f not in real.findings
        ]
    new_state = ClusterState(
        strategies=states,
        # The audit's creates put back what a lost state row forgot (scope "owned" only).
        owned=tuple(
            dict.fromkeys(
                [n for n in state.owned if cluster.replica(n)]
                + sorted(n for n in by_evidence & owned if n not in state.owned and owned_scope)
            )
        ),
        backoff=state.backoff,
        failed_resize=state.failed_resize,
    )
    priced = price(
        actions=number(actions, cycle_id=cycle_id, cluster_id=cluster.id),
        sizes=sizes,
        before=before,
        cluster=cluster,
    )
    # The last action carries the running total of everything that will execute.
    after = priced[-1].credits_per_hour_after if priced else before
    plan = replace(
        base,
        actions=tuple(priced),
        credits_per_hour_after=after,
        notes=tuple(notes),
        empty_on_purpose=real.desired.empty_on_purpose,
        state=new_state,
    )
    return with_findings(plan, found)


def shadow_only(*, real: list[Action], shadow: list[Action]) -> list[Action]:
    """Actions the shadow strategies would add: shown and audited, never executed."""
    seen = {(a.kind, a.replica_name, a.size, a.alter) for a in real if a.status == "planned"}
    return [
        replace(a, status="shadow")
        for a in shadow
        if a.status == "planned" and (a.kind, a.replica_name, a.size, a.alter) not in seen
    ]


def with_findings(plan: ClusterPlan, findings: Iterable[Finding]) -> ClusterPlan:
    """Add findings; those of severity error also become run-failing errors."""
    new = tuple(findings)
    errors = [f.message for f in new if f.severity == "error"]
    return replace(plan, findings=(*plan.findings, *new), errors=(*plan.errors, *errors))


def number(actions: list[Action], *, cycle_id: str, cluster_id: str) -> list[Action]:
    """Deterministic ids: the same plan retried by Airflow keeps its action ids."""
    return [
        replace(
            a,
            id=str(
                uuid.uuid5(
                    ACTION_NAMESPACE, f"{cycle_id}/{cluster_id}/{i}/{a.kind}/{a.replica_name}"
                )
            ),
        )
        for i, a in enumerate(actions)
    ]


def price(
    *, actions: list[Action], sizes: Mapping[str, Size], before: float, cluster: Cluster
) -> list[Action]:
    """Credits per hour before and after each action, counting only what will execute.
    After an ALTER CLUSTER: its replication factor times its size's credits."""
    running = before
    out: list[Action] = []
    for a in actions:
        if a.kind == "alter_cluster":
            after = running
            if a.status == "planned" and a.alter is not None:
                after = managed.credits_after(
                    alter=a.alter,
                    cluster=cluster,
                    credits=lambda s: credits_of(sizes=sizes, size=s),
                )
            out.append(replace(a, credits_per_hour_before=running, credits_per_hour_after=after))
            running = after
            continue
        delta = credits_of(sizes=sizes, size=a.size) if a.status == "planned" else 0.0
        after = running + delta if a.kind == "create_replica" else running - delta
        out.append(replace(a, credits_per_hour_before=running, credits_per_hour_after=after))
        running = after
    return out


def next_states(
    plan: Plan, result: ApplyResult, *, limits: Limits = DEFAULT_LIMITS
) -> dict[str, ClusterState]:
    """States persist must write, by cluster id; clusters whose state is unchanged are absent.

    All planned actions succeeded (or none planned): the proposed state, with the cooldown
    anchor of every strategy that acted. Any failed: the old state with the backoff advanced.
    Not executed (dry run, kill switch, lease): nothing changes for that cluster.
    """
    outcomes = {r.action_id: r for r in result.results}
    out: dict[str, ClusterState] = {}
    for cp in plan.clusters:
        planned = [a for a in cp.actions if a.status == "planned"]
        results = [(a, outcomes.get(a.id)) for a in planned]
        failed = [(a, r) for a, r in results if r is not None and r.outcome == "failed"]
        if failed:
            a, r = failed[0]
            error = f"{a.describe()}: {r.error or 'failed'}"
            new = replace(
                cp.prev_state,
                backoff=next_backoff(
                    prev=cp.prev_state.backoff, now=plan.now, error=error, limits=limits
                ),
            )
        elif all(r is not None and r.outcome in ("succeeded", "already_true") for _, r in results):
            new = stamped(cp.state, done=planned, now=plan.now)
        else:
            continue
        if new != cp.prev_state:
            out[cp.cluster_id] = new
    return out


def stamped(state: ClusterState, *, done: list[Action], now: datetime) -> ClusterState:
    """The proposed state after its actions ran: cooldown anchors, owned names, backoff cleared."""
    strategies = {k: dict(v) for k, v in state.strategies.items()}
    for name in sorted({a.strategy for a in done}):
        strategies.setdefault(name, {})[LAST_ACTION_KEY] = iso(now)
    dropped = {a.replica_name for a in done if a.kind == "drop_replica"}
    created = [a.replica_name for a in done if a.kind == "create_replica"]
    owned = tuple(dict.fromkeys(n for n in (*state.owned, *created) if n not in dropped))
    return ClusterState(
        strategies=strategies,
        owned=owned,
        backoff=None if done else state.backoff,
        failed_resize=state.failed_resize,
    )
