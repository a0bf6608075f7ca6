"""The invariants of the randomized model, checked after every cycle against ground truth read
from the emulator (catalog, hydration view, statement log), never the controller's own report.
Each check has a name (counted in the figures; a failure says which one broke):

Safety (behaviour.md "Safety rails"): scope (only in-scope clusters, never a system cluster,
a bystander or a namesake; shadow strategies never execute), the last hydrated replica,
suspends only on purpose, one replica per need, one burst, the single-replica rail of
sources and sinks, managed resizes graceful and never during a reconfiguration,
``replica_scope: owned`` leaving hand-made replicas alone, state claiming nothing that did
not happen, audit complete and true, rate limit.

Liveness (behaviour.md "Liveness", K = 2 cycles after the fact is visible in the log), for
idle-driven suspends: a refused query on a suspended cluster is followed by service within K
cycles whatever state was lost; no suspend while a statement runs; no replica the controller
made lives more than K cycles unaccounted for by audit or state; the no-flap rule is checked
while settling (test_randomized.py)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from mzsupport import server_now
from safety_steps import Cycles, CycleView
from safety_world import Group
from safetysupport import (
    FIGURES,
    ClusterTruth,
    Ddl,
    audit_gaps,
    in_blind,
    last_user_activity,
    parse,
    replica_ddl,
    system_replicas,
    truth,
)

K = 2  # see test_randomized.py
# Materialize's replica sizes in the emulator (mz_cluster_replica_sizes), for predecessor names.
SIZES = frozenset(
    {
        "25cc",
        "50cc",
        "100cc",
        "200cc",
        "300cc",
        "400cc",
        "600cc",
        "800cc",
        "1200cc",
        "1600cc",
        "3200cc",
    }
)
RATE_LIMIT = 10  # controller DDL per cluster per rolling hour (the contract's default)


class Violation(AssertionError):
    pass


def state_payload(obs: Any, cid: str) -> dict[str, Any] | None:
    """The newest state row's payload when it is ours (version 2); a predecessor's row
    (version 1) is what the controller ignores: no state."""
    rows = obs.execute(
        "SELECT state_version, payload FROM mz_cluster_strategy_state WHERE cluster_id = %s"
        " ORDER BY updated_at DESC LIMIT 1",
        (cid,),
    )
    if not rows or rows[0][0] != 2:
        return None
    payload = rows[0][1]
    return payload if isinstance(payload, dict) else json.loads(payload)


class Invariants(Cycles):
    _ddl: list[Ddl] | None = None

    def check(self, name: str, ok: bool, message: str) -> None:
        FIGURES["invariant_checks"] += 1
        FIGURES[f"invariant:{name}"] += 1
        if not ok:
            raise Violation(f"[{name}] {message}")

    # Ground truth helpers -------------------------------------------------------------------

    def row_updated_at(self, g: Group, kind: str) -> datetime | None:
        rows = self.obs.execute(
            "SELECT max(updated_at) FROM mz_cluster_strategies"
            " WHERE cluster_id = %s AND strategy_type = %s",
            (g.id, kind),
        )
        return rows[0][0] if rows else None

    def suspend_permitted(
        self, g: Group, pre: ClusterTruth, now: datetime, view: CycleView | None = None
    ) -> bool:
        """Ground truth for "the desired state is empty on purpose": a schedule's off time; or
        an enabled, valid idle_suspend row, on a cluster it may suspend (no source or sink; no
        materialized view unless allowed), with statement logging able to see activity, no
        statement running, and no user statement, row change or new replica for idle_after_s."""
        if g.schedule_off(now):
            return True
        config = g.config("idle_suspend")
        if config is None or g.objects == "source":
            return False
        if g.objects == "mv" and not config.get("allow_with_maintained_objects"):
            return False
        if view is not None and (view.rate0 or g.id in view.running):
            return False
        # Activity as the statement log showed it at collect (K counts from visibility: a row
        # not yet flushed is unknowable, and the late row's resume is checked instead).
        activity = (view.activity if view is not None else self.visible_activity()).get(g.id)
        anchors = [
            activity,
            self.row_updated_at(g, "idle_suspend"),
            max(pre.created.values(), default=None),
        ]
        idle = float(config["idle_after_s"])
        return all(a is None or (now - a).total_seconds() >= idle - 1 for a in anchors)

    def creations(self, g: Group, *, before: datetime) -> list[tuple[datetime, str, bool]]:
        """(when, replica, by the controller) of every successful create on this incarnation
        of the cluster, oldest first: from the statement log, and while it was blind (sample
        rate 0) from the catalog's replica history (the controller's when its audit has an
        executed create of that name, which the audit check verified against the catalog)."""
        out = [
            (d.at, d.replica, d.controller)
            for d in self.scenario_ddl(since=g.born or self.start)
            if d.kind == "create" and d.ok and d.cluster in g.names and d.at <= before
        ]
        if self.blind:
            ours = self.audited_creates(g)
            for name, at in self.obs.execute(
                "SELECT replica_name, created_at FROM mz_internal.mz_cluster_replica_history"
                " WHERE cluster_id = %s AND created_at <= %s",
                (g.id, before),
            ):
                if in_blind(at, self.blind):
                    out.append((at, name, name in ours))
        return sorted(out)

    def audited_creates(self, g: Group) -> set[str]:
        names = set()
        for (sql_text,) in self.obs.execute(
            "SELECT action_sql FROM mz_cluster_strategy_actions WHERE cluster_id = %s"
            " AND decision_ctx ->> 'phase' = 'outcome' AND executed",
            (g.id,),
        ):
            p = parse(sql_text or "")
            if p is not None and p.kind == "create":
                names.add(p.replica)
        return names

    def serving(self, g: Group, replicas: dict[str, str]) -> set[str]:
        """The replicas a suspend removes: all of them, or with replica_scope owned the ones
        the controller made (hand-made replicas are left alone, and keep serving)."""
        if not g.owned_scope():
            return set(replicas)
        now = self.clock()
        return {n for n in replicas if self.owned_by_scope(g, n, now)}

    def newest_create_is_ours(self, g: Group, replica: str, before: datetime) -> bool:
        """Did the controller make this replica of this incarnation of the cluster (its newest
        create is the controller's)?"""
        mine = [c for at, name, c in self.creations(g, before=before) if name == replica]
        return bool(mine) and mine[-1]

    def owned_by_scope(self, g: Group, replica: str, before: datetime) -> bool:
        """What replica_scope "owned" may touch: the controller's own replicas and, as the
        contract recognises the predecessor's replicas for what they are, its names
        (``r_<size>``, ``<cluster>_burst``; by name, whatever their size)."""
        size = replica[2:] if replica.startswith("r_") else None
        if replica == f"{g.name}_burst" or size in SIZES:
            return True
        return self.newest_create_is_ours(g, replica, before)

    def clock(self) -> datetime:
        return server_now(self.obs)

    # Per cycle ------------------------------------------------------------------------------

    def scenario_ddl(self, *, since: datetime) -> list[Ddl]:
        """Every DDL of the scenario from the statement log, read once per check (the log
        does not change while the invariants read it) and filtered here."""
        if self._ddl is None:
            self._ddl = replica_ddl(self.obs, since=self.start)
        return [d for d in self._ddl if d.at >= since]

    def check_cycle(self, view: CycleView) -> None:
        self._ddl = None
        self.last_view = view
        view_suspended: set[str] = set()
        for d in view.ddl:
            # Scope: only clusters with enabled, valid, executing rows (and in the filter);
            # never a system cluster, the bystander or a namesake.
            self.check("scope", d.cluster in view.scope, f"DDL on a cluster out of scope: {d.sql}")
        self.check(
            "system_clusters_untouched",
            system_replicas(self.obs) == self.system_before,
            "system replicas changed",
        )
        if view.clean and view.failures is not None:
            # Nothing raced and no fault was injected: every planned action fits the world
            # apply finds, so the executor's re-checks never refuse one. A refusal here means
            # the planner broke a rail the executor had to catch (the last hydrated replica
            # dropped, drops before creates, ...).
            self.check(
                "no_unforced_failure",
                not view.failures,
                f"apply refused or failed planned actions with nothing racing: {view.failures}",
            )
        post = truth(self.obs, self.ids())
        by_sql = {a["sql"]: a for c in view.plan["clusters"] for a in c["actions"]}
        for g in self.groups:
            before, after = view.pre[g.id], post[g.id]
            mine = [d for d in view.ddl if d.cluster == g.name]
            self.check_ddl_shapes(g, before, mine, view, by_sql)
            # From the log and from the catalog (the only record while the log is blind; only
            # the controller acts during a cycle).
            dropped = {d.replica for d in mine if d.kind == "drop" and d.ok}
            dropped |= set(before.replicas) - set(after.replicas)
            for d in mine:
                if d.kind == "alter" and d.ok and (d.factor == 0 or (d.size and not d.wait)):
                    dropped |= set(before.replicas)  # every replica of the managed cluster goes
            ours_before = self.serving(g, before.replicas) if before.replicas else set()
            suspended = (
                bool(ours_before)
                and not (ours_before & set(after.replicas))
                and bool(dropped)
                and not self.serving(g, after.replicas)
            )
            if suspended:
                view_suspended.add(g.id)
                self.check(
                    "liveness_no_suspend_while_running",
                    g.id not in view.running or bool(g.schedule_off(view.now)),
                    f"{g.name!r}: suspended while a statement runs on it",
                )
                self.check(
                    "suspend_only_on_purpose",
                    self.suspend_permitted(g, before, view.now, view),
                    f"{g.name!r}: emptied {sorted(before.replicas)} without a suspend being due"
                    f"{' (sample rate 0)' if view.rate0 else ''}",
                )
            # Never the last hydrated replica, unless suspended on purpose.
            if before.hydrated and before.hydrated <= dropped:
                self.check(
                    "last_hydrated",
                    self.suspend_permitted(g, before, view.now, view),
                    f"{g.name!r}: the cycle dropped every hydrated replica "
                    f"{sorted(before.hydrated)} without a suspend being due",
                )
            self.check_counts(g, before, after, mine)
            self.check_state(g)
            self.liveness(g, before, after, view, suspended)
        view.suspended = view_suspended  # type: ignore[attr-defined]

    def check_ddl_shapes(
        self,
        g: Group,
        before: ClusterTruth,
        mine: list[Ddl],
        view: CycleView,
        by_sql: dict[str, dict[str, Any]],
    ) -> None:
        kinds = [d.kind for d in mine if d.kind != "alter"]
        self.check(
            "creates_before_drops",
            "create" not in kinds[kinds.index("drop") :] if "drop" in kinds else True,
            f"{g.name!r}: a drop before a create in one cycle: {[d.sql for d in mine]}",
        )
        for d in mine:
            action = by_sql.get(d.sql)
            strategy = action.get("strategy") if action else None
            row = g.enabled().get(strategy or "")
            self.check(
                "shadow_never_executes",
                row is None or not row.shadow,
                f"{g.name!r}: a shadow {strategy} row executed {d.sql}",
            )
            if d.kind == "alter":
                self.check(
                    "no_alter_during_reconfiguration",
                    g.id not in view.reconfiguring,
                    f"{g.name!r}: {d.sql} while a reconfiguration is in progress",
                )
                if d.size is not None and before.replicas and d.factor != 0:
                    self.check(
                        "managed_resize_graceful",
                        d.wait,
                        f"{g.name!r}: a resize with downtime (no WAIT UNTIL READY): {d.sql}",
                    )
            if d.kind == "create" and g.objects == "source":
                self.check(
                    "single_replica_sources",
                    not before.replicas,
                    f"{g.name!r}: a second replica on a cluster with a source: {d.sql}",
                )
            if d.kind == "drop" and g.owned_scope():
                self.check(
                    "owned_scope_leaves_others",
                    self.owned_by_scope(g, d.replica, view.since),
                    f"{g.name!r}: replica_scope owned, yet it dropped {d.replica!r} it never made",
                )

    def check_counts(
        self, g: Group, before: ClusterTruth, after: ClusterTruth, mine: list[Ddl]
    ) -> None:
        creates = [d for d in mine if d.kind == "create"]
        dropped = {d.replica for d in mine if d.kind == "drop" and d.ok}
        # Never two replicas created for one need.
        resume = not before.replicas
        per_size = Counter(d.size for d in creates)
        for size, n in per_size.items():
            allowed = 1 + (sum(1 for _, s in g.suspended_set if s == size) if resume else 0)
            self.check(
                "one_create_per_need",
                n <= allowed,
                f"{g.name!r}: {n} CREATEs of size {size} in one cycle",
            )
        target = g.config("target_size")
        if target is not None and not resume and target["target_size"] in before.replicas.values():
            self.check(
                "no_second_target",
                target["target_size"] not in per_size,
                f"{g.name!r}: another {target['target_size']} replica although one existed",
            )
        # Track what the controller created (fresh or by resume) and emptied.
        created = self.created[g.id]
        for d in mine:
            if d.ok and d.kind == "create":
                created[d.replica] = (str(d.size), "resume" if resume else "fresh")
            elif d.ok and d.kind == "drop":
                created.pop(d.replica, None)
        if (
            before.replicas
            and not after.replicas
            and (dropped or any(d.kind == "alter" for d in mine))
        ):
            g.suspended_set = sorted(before.replicas.items())
        live_fresh = Counter(
            size
            for name, (size, origin) in created.items()
            if origin == "fresh" and after.replicas.get(name) == size
        )
        burst = g.config("burst")
        if burst is not None:
            self.check(
                "one_burst",
                live_fresh[burst["burst_replica_size"]] <= 1,
                f"{g.name!r}: two burst replicas live: {after.replicas}",
            )

    def check_state(self, g: Group) -> None:
        """State never claims what did not happen: owned replicas were created by the
        controller (statement log); a new cooldown anchor needs that strategy's DDL to have
        run (statement log + its audit outcome) at that time."""
        payload = state_payload(self.obs, g.id)
        if payload is None:
            return
        ever = {
            d.replica
            for d in self.scenario_ddl(since=self.start)
            if d.controller and d.ok and d.kind == "create" and d.cluster in g.names
        }
        ever |= {name for at, name, ours in self.creations(g, before=self.clock()) if ours}
        owned = set(payload.get("owned", []))
        self.check(
            "state_owns_only_ours",
            owned <= ever,
            f"{g.name!r}: state owns {sorted(owned - ever)} it never created",
        )
        for strategy, own in payload.get("strategies", {}).items():
            stamp = own.get("last_action_at")
            if stamp is None or g.stamps.get(strategy) == stamp:
                continue
            g.stamps[strategy] = stamp
            at = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            ran = self.obs.execute(
                "SELECT count(*) FROM mz_cluster_strategy_actions WHERE cluster_id = %s"
                " AND decision_ctx ->> 'phase' = 'outcome' AND executed"
                " AND decision_ctx ->> 'strategy' = %s AND created_at >= %s",
                (g.id, strategy, at),
            )[0][0]
            logged = [
                d
                for d in self.scenario_ddl(since=at)
                if d.controller
                and d.ok
                and d.cluster in g.names
                and d.at - at < timedelta(seconds=120)
            ]
            self.check(
                "state_stamps_only_real_actions",
                ran > 0 and (bool(logged) or in_blind(at, self.blind)),
                f"{g.name!r}: {strategy} stamped last_action_at {stamp} without its DDL running",
            )

    # Liveness -------------------------------------------------------------------------------

    def liveness(
        self, g: Group, before: ClusterTruth, after: ClusterTruth, view: CycleView, suspended: bool
    ) -> None:
        plan = next((c for c in view.plan["clusters"] if c["cluster_id"] == g.id), None)
        actions = plan["actions"] if plan else []
        if suspended:
            idle = g.config("idle_suspend")
            g.idle_suspended = bool(
                idle is not None
                and idle.get("resume", True) is not False
                and g.schedule_off(view.now) is None
                and any("idle" in a.get("codes", []) for a in actions)
            )
            g.resume_due, g.resume_cycles = None, 0
            # A statement the log had not shown yet (flush lag) began before the suspend: its
            # late row must bring the cluster back within K cycles of becoming visible.
            hidden = last_user_activity(self.obs, g.id)
            seen = view.activity.get(g.id)
            if g.idle_suspended and hidden is not None and (seen is None or hidden > seen):
                g.resume_due = hidden
                FIGURES["invariant:liveness_resume_late_row"] += 1
        if after.replicas:
            if g.resume_due is not None:
                FIGURES["invariant:liveness_resume_served"] += 1
            g.idle_suspended, g.resume_due, g.resume_cycles = False, None, 0
        elif g.resume_due is not None and g.id in view.covered and g.may_execute():
            visible = self.obs.execute(
                "SELECT max(began_at) FROM mz_internal.mz_statement_execution_history_redacted"
                " WHERE cluster_id = %s",
                (g.id,),
            )[0][0]
            if visible is not None and visible >= g.resume_due and view.clean:
                g.resume_cycles += 1
            excused = [
                c
                for a in actions
                if a["status"] == "deferred"
                for c in a.get("codes", [])
                if c in ("rate_limit", "backoff")
            ]
            if excused:
                FIGURES[f"invariant:liveness_resume_excused_{excused[0]}"] += 1
                g.resume_cycles = 0
            elif g.resume_cycles >= K:
                self.check(
                    "liveness_resume_within_K",
                    False,
                    f"{g.name!r}: a refused query at {g.resume_due} on the idle-suspended cluster"
                    f" was not served within {K} cycles after it was visible",
                )
        self.orphans(g, after)

    def orphans(self, g: Group, after: ClusterTruth) -> None:
        """No replica the controller made lives more than K cycles that neither its audit (an
        executed create) nor its state (owned) accounts for."""
        if not after.replicas:
            g.unaccounted = {}
            return
        audited = self.audited_creates(g)
        payload = state_payload(self.obs, g.id) or {}
        owned = set(payload.get("owned", []))
        now = self.clock()
        for name in after.replicas:
            if g.managed or not self.newest_create_is_ours(g, name, now + timedelta(days=1)):
                continue  # Materialize's own (managed) or someone else's replica
            if name in audited or name in owned:
                g.unaccounted.pop(name, None)
            else:
                g.unaccounted[name] = g.unaccounted.get(name, 0) + 1
            self.check(
                "liveness_no_orphan",
                g.unaccounted.get(name, 0) <= K,
                f"{g.name!r}: replica {name!r} made by the controller, for"
                f" {g.unaccounted.get(name)} cycles in neither its audit nor its state",
            )

    # Whole scenario -------------------------------------------------------------------------

    def check_history(self) -> None:
        """Over the whole scenario: every controller DDL audited (intent before, outcome with
        the same action id), every executed outcome backed by a DDL, and the rate limit."""
        self._ddl = None
        ids = sorted({i for g in self.groups for i in g.ids})
        gaps = audit_gaps(self.obs, since=self.start, cluster_ids=ids, blind=self.blind)
        self.check("audit_complete_and_true", not gaps, "; ".join(gaps))
        ddl = [d for d in self.scenario_ddl(since=self.start) if d.controller]
        FIGURES["invariant_checks"] += len(ddl)  # each DDL's intent and outcome were checked
        for g in self.groups:
            times = sorted(d.at for d in ddl if d.cluster in g.names)
            for i, t in enumerate(times):
                window = [u for u in times[: i + 1] if t - u < timedelta(seconds=3600)]
                self.check(
                    "rate_limit",
                    len(window) <= RATE_LIMIT,
                    f"{g.name!r}: {len(window)} controller DDL within an hour",
                )
