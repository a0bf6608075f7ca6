"""The cycles a randomized scenario runs, each through the runtime layer's real stages
(mz_schedctl_provider/runtime/cycle.py) on the controller's connection (psycopg 3 or psycopg2,
chosen per scenario): dry run, kill switch, apply, apply killed between two statements and
retried, apply under an injected fault, persist failing, a crash between apply and persist,
wipe-state (the CLI's path), an edited plan (refused by the seal, as the Airflow tasks do),
and races between decide and apply (an OOM, a rename with or without a namesake, a
drop-and-recreate under one name). Every applying cycle hands what it saw before apply to
the invariants (safety_invariants.py)."""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2
from mzsupport import server_now, snapshot
from safety_gate import RUNNING_APP
from safety_world import World
from safetysupport import FIGURES, ClusterTruth, Ddl, KillableDatabase, Killed, replica_ddl, truth

from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.db import APPLICATION_NAME, DatabaseError
from mz_schedctl_provider.runtime.ddl import ident
from mz_schedctl_provider.runtime.plan_seal import PlanRefused, seal, seal_key, verify
from mz_schedctl_provider.runtime.store import LEASES, Store

SETTINGS = cycle.CycleSettings(holder="safety-model", lease_ttl_s=600)
SEAL_KEY = seal_key("safety_conn", "127.0.0.1", 6875, "materialize", "s3cret", "materialize")
STATE_INSERT = r"^\s*INSERT INTO .*mz_cluster_strategy_state"


@dataclass
class CycleView:
    """What one applying cycle met (ground truth before apply) and what it sent."""

    mode: str
    since: datetime
    now: datetime
    plan: dict[str, Any]
    pre: dict[str, ClusterTruth]
    scope: set[str]
    covered: set[str]  # group ids the cycle's filter covered
    running: set[str]  # cluster ids with a visible statement still running at collect
    reconfiguring: set[str]  # cluster ids with a graceful reconfiguration in progress
    rate0: bool  # statement logging's max sample rate was 0 at collect
    clean: bool  # no injected DDL fault and no rename or recreate race in this cycle
    ddl: list[Ddl] = field(default_factory=list)
    # Actions apply reported failed (action id -> error); None when apply's result is unknown
    # (a killed worker).
    failures: dict[str, str] | None = None
    # Per cluster id: the newest user activity the statement log showed at collect (a
    # running statement's is now, a finished one's its end).
    activity: dict[str, datetime] = field(default_factory=dict)
    suspended: set[str] = field(default_factory=set)


class Cycles(World):
    """Cycle steps; ``check_cycle`` and friends come from safety_invariants.Invariants."""

    driver = "psycopg"
    db: KillableDatabase

    def connect(self) -> KillableDatabase:
        if self.driver == "psycopg2":
            conn = psycopg2.connect(self.emu.url, application_name=APPLICATION_NAME)
            return KillableDatabase(conn)
        return KillableDatabase.connect(self.emu.url)

    def swap(self) -> KillableDatabase:
        """The executor's reconnect: the old connection is dead; later stages use the new one."""
        self.db.close()
        self.db = self.connect()
        return self.db

    def filter(self) -> str | None:
        return re.escape(self.prefix) + ".*" if self.rng.random() < 0.3 else None

    def ids(self) -> list[str]:
        return [g.id for g in self.groups]

    def controller_ddl(self, since: datetime) -> list[Ddl]:
        return [d for d in replica_ddl(self.obs, since=since) if d.controller]

    def count_codes(self, plan: dict[str, Any]) -> None:
        """Every reason and finding code of the plan: the rails that fired."""
        for c in plan["clusters"]:
            for a in c["actions"]:
                for code in a.get("codes", []):
                    FIGURES[f"rail:{code}"] += 1
                FIGURES[f"rail:status_{a['status']}"] += 1
            for f in c["findings"]:
                FIGURES[f"rail:{f.get('code') or f['kind']}"] += 1

    # Non-applying cycles --------------------------------------------------------------------

    def dry_cycle(self) -> None:
        self.step_kind("dry_run")
        filt = self.filter()
        before, since = snapshot(self.obs), server_now(self.obs)
        cycle_id = cycle.new_cycle_id("dry")
        signals = cycle.collect(self.db, SETTINGS, filter_clusters=filt)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=True, filter_clusters=filt)
        result = cycle.apply(plan, self.db, SETTINGS)
        cycle.persist(plan, result, self.db, SETTINGS)
        FIGURES["cycles"] += 1
        self.count_codes(plan)
        self.log(f"dry run: {self.summary(plan)}")
        self.check(
            "dry_run_changes_nothing",
            snapshot(self.obs) == before,
            "a dry run changed the catalog or a table",
        )
        self.check("dry_run_sends_no_ddl", not self.controller_ddl(since), "a dry run sent DDL")

    def paused_cycle(self) -> None:
        self.step_kind("paused")
        since = server_now(self.obs)
        before = truth(self.obs, self.ids())
        cycle_id = cycle.new_cycle_id("paused")
        signals = cycle.collect(self.db, SETTINGS)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False)
        result = cycle.apply(plan, self.db, SETTINGS, paused=True)
        cycle.persist(plan, result, self.db, SETTINGS)
        FIGURES["cycles"] += 1
        self.count_codes(plan)
        self.log(f"paused: {self.summary(plan)}")
        self.check("paused_sends_no_ddl", not self.controller_ddl(since), "a paused cycle sent DDL")
        after = truth(self.obs, self.ids())
        self.check(
            "paused_changes_nothing",
            {k: v.replicas for k, v in after.items()} == {k: v.replicas for k, v in before.items()},
            "a paused cycle changed replicas",
        )

    def wipe_state_step(self) -> None:
        """The CLI's wipe-state: stored state goes (all, or one cluster by regex)."""
        self.step_kind("wipe_state")
        g = self.rng.choice(self.groups)
        filt = re.escape(g.name) if self.rng.random() < 0.6 else re.escape(self.prefix) + ".*"
        done = cycle.wipe_state(self.db, SETTINGS, filter_clusters=filt)
        self.log(f"wipe-state {filt!r}: {done.deleted_state_rows} rows")

    def edited_plan_step(self) -> None:
        """An edited plan (an XCom changed after decide): the seal refuses it, nothing runs.
        When only an action's SQL text was edited, apply is also run on it without the seal
        (defence in depth): only SQL rendered from the action's fields may reach Materialize."""
        self.step_kind("edited_plan")
        since = server_now(self.obs)
        cycle_id = cycle.new_cycle_id("edited")
        lease = cycle.claim_lease(self.db, SETTINGS, cycle_id=cycle_id)
        self.check(
            "lease_free", lease.acquired, f"no other cycle runs, yet the lease is held: {lease}"
        )
        signals = cycle.collect(self.db, SETTINGS)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False)
        given = seal(plan, SEAL_KEY)
        edited = copy.deepcopy(plan)
        actions = [a for c in edited["clusters"] for a in c["actions"]]
        how = (
            self.rng.choice(("sql", "replica", "size", "cluster", "extra")) if actions else "notes"
        )
        if how == "sql":
            for a in actions:
                a["sql"] = "CREATE TABLE edited_via_xcom (x int)"
        elif how == "replica":
            actions[0]["replica_name"] = "edited"
        elif how == "size":
            actions[0]["size"] = "800cc"
        elif how == "cluster":
            actions[0]["cluster_id"] = self.rng.choice(self.groups).id + "0"
        elif how == "extra":
            edited["clusters"][0]["actions"].append(copy.deepcopy(actions[0]) | {"id": "x-extra"})
        else:
            edited["clusters"].append(
                {"cluster_id": "u999", "cluster_name": "edited", "actions": []}
            )
        refused = False
        try:
            verify(edited, given, SEAL_KEY, cycle_id=cycle_id)
        except PlanRefused:
            refused = True
        self.check("edited_plan_refused", refused, f"an edited plan ({how}) passed the seal")
        verify(plan, given, SEAL_KEY, cycle_id=cycle_id)  # the real one passes
        self.log(f"edited plan ({how}): refused")
        if how == "sql" and self.rng.random() < 0.5:
            result = cycle.apply(edited, self.db, SETTINGS)
            cycle.persist(edited, result, self.db, SETTINGS)
            self.log(f"  applied without the seal: {self.summary(plan)}")
            sent = [d.sql for d in self.controller_ddl(since)]
            self.check(
                "plan_sql_never_run",
                not self.obs.admin(
                    "SELECT 1 FROM mz_emulator.statement_log WHERE began_at >= %s"
                    " AND sql LIKE '%%edited_via_xcom%%'",
                    (since,),
                ),
                f"the plan's edited SQL text reached Materialize (sent: {sent})",
            )
        else:
            cycle.release_after_failure([self.connect], SETTINGS, cycle_id=cycle_id)
            self.check(
                "edited_plan_sends_nothing",
                not self.controller_ddl(since),
                "a refused plan sent DDL",
            )
        FIGURES["cycles"] += 1

    def contended_step(self) -> None:
        """Another deployment's cycle holds the lease (claimed first, on its own connection):
        ours must lose the claim, and its apply must execute nothing (the apply-time check)."""
        self.step_kind("contended_lease")
        since = server_now(self.obs)
        other = self.connect()
        try:
            rival = cycle.CycleSettings(holder="rival-airflow", lease_ttl_s=600)
            held = cycle.claim_lease(other, rival, cycle_id=cycle.new_cycle_id("rival"))
            self.check(
                "lease_free", held.acquired, f"the rival could not claim a free lease: {held}"
            )
            cycle_id = cycle.new_cycle_id("safety")
            lease = cycle.claim_lease(self.db, SETTINGS, cycle_id=cycle_id)
            self.check("lease_single_writer", not lease.acquired, "two cycles hold the lease")
            signals = cycle.collect(self.db, SETTINGS)
            plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False)
            result = cycle.apply(plan, self.db, SETTINGS)
            cycle.persist(plan, result, self.db, SETTINGS)
            self.check(
                "lease_single_writer",
                not self.controller_ddl(since),
                "a cycle without the lease sent DDL",
            )
            Store(other).release_lease(cycle_id=held.cycle_id)  # the rival's cycle ends
        finally:
            other.close()
        FIGURES["cycles"] += 1
        self.log(f"contended: {self.summary(plan)}")

    # Applying cycles ------------------------------------------------------------------------

    def visible_running(self) -> set[str]:
        rows = self.obs.execute(
            "SELECT DISTINCT cluster_id FROM mz_internal.mz_statement_execution_history_redacted"
            " WHERE finished_at IS NULL AND application_name = %s",
            (RUNNING_APP,),
        )
        return {r[0] for r in rows if r[0]}

    def visible_activity(self) -> dict[str, datetime]:
        """What the controller can know of user activity: the statement log as Materialize
        shows it (rows appear at its flush), a running statement counting as activity now."""
        rows = self.obs.execute(
            "SELECT cluster_id, max(coalesce(finished_at, now()))"
            " FROM mz_internal.mz_statement_execution_history_redacted"
            " WHERE cluster_id IS NOT NULL AND application_name IS DISTINCT FROM %s"
            " GROUP BY cluster_id",
            (APPLICATION_NAME,),
        )
        return {r[0]: r[1] for r in rows}

    def reconfiguring(self) -> set[str]:
        rows = self.obs.execute(
            "SELECT cluster_id FROM mz_internal.mz_cluster_reconfigurations"
            " WHERE status = 'in-progress'"
        )
        return {r[0] for r in rows}

    def apply_cycle(self, mode: str = "apply") -> dict[str, Any]:
        """One applying cycle. ``kill``: the worker dies between two statements and Airflow
        retries with the same plan on a new connection; ``fault``: one injected fault on a DDL;
        ``persist_fails``: the state write fails (apply ran); ``crash``: the process dies
        between apply and persist. Returns the plan."""
        self.step_kind(mode)
        filt = self.filter() if mode != "settle" else None
        since = server_now(self.obs)
        scope = {g.name for g in self.groups if g.may_execute()}
        covered = {g.id for g in self.groups if filt is None or re.fullmatch(filt, g.name)}
        if filt is not None:
            scope = {n for n in scope if re.fullmatch(filt, n)}
        running, rate0 = self.visible_running(), self.sample_rate == 0
        activity = self.visible_activity()
        cycle_id = cycle.new_cycle_id("safety")
        lease = cycle.claim_lease(self.db, SETTINGS, cycle_id=cycle_id)
        self.check(
            "lease_free", lease.acquired, f"no other cycle runs, yet the lease is held: {lease}"
        )
        signals = cycle.collect(self.db, SETTINGS, filter_clusters=filt)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=filt)
        self.count_codes(plan)
        raced = mode != "settle" and self.rng.random() < 0.25 and self.race()
        if raced:  # the race may have renamed or replaced a cluster: scope by current names
            scope = {g.name for g in self.groups if g.may_execute() and g.id in covered}
        # Ground truth as apply finds it (the clock stands still during a cycle).
        pre = truth(self.obs, self.ids())
        reconf = self.reconfiguring()
        if mode == "fault":
            self.arm_fault(plan)
        if mode == "persist_fails":
            self.obs.execute(
                "SELECT mz_emulator.inject_fault(%s, 'error', 'disk full', '53100')",
                (STATE_INSERT,),
            )
            FIGURES["faults_injected"] += 1
        failures: dict[str, str] | None = None
        if mode == "kill":
            self.run_killed(plan)
        else:
            result = cycle.apply(plan, self.db, SETTINGS, reconnect=self.swap)
            failures = {
                str(r["action_id"]): str(r.get("error"))
                for r in result.get("results", [])
                if r.get("outcome") == "failed"
            }
            if mode == "crash":
                self.db.close()  # the process dies here; its lease claim expires
                self.db = self.connect()
                self.obs.execute(f"DELETE FROM {ident(LEASES)} WHERE cycle_id = %s", (cycle_id,))
                self.log("  crashed between apply and persist")
            else:
                try:
                    cycle.persist(plan, result, self.db, SETTINGS)
                except DatabaseError as exc:
                    if mode != "persist_fails":
                        raise
                    self.log(f"  persist failed: {str(exc)[:60]}")
                    self.obs.execute("SELECT mz_emulator.clear_faults()")
                    cycle.release_after_failure([self.connect], SETTINGS, cycle_id=cycle_id)
        FIGURES["cycles"] += 1
        if mode in ("fault", "persist_fails"):
            self.disarm_faults()
        self.log(f"{mode}{' filter' if filt else ''}: {self.summary(plan)}")
        view = CycleView(
            mode=mode,
            since=since,
            now=since,
            plan=plan,
            pre=pre,
            scope=scope,
            covered=covered,
            running=running,
            activity=activity,
            reconfiguring=reconf,
            rate0=rate0,
            clean=mode != "fault" and not raced,
            ddl=self.controller_ddl(since),
            failures=failures,
        )
        self.check_cycle(view)
        return plan

    def race(self) -> bool:
        """The world moves between decide and apply: a replica OOMs (what the plan saw as
        hydrated may not be any more), the cluster is renamed (perhaps with a new cluster
        under its old name), or it is dropped and recreated under the same name."""
        g = self.rng.choice(self.managed_groups())
        kind = self.rng.choice(("oom", "oom", "rename", "recreate"))
        FIGURES[f"step:race_{kind}"] += 1
        if kind == "rename":
            self.log("  race after decide:")
            self.rename(g)
            return True
        if kind == "recreate":
            self.log("  race after decide:")
            self.drop_and_recreate(g)
            return True
        reps = truth(self.obs, [g.id])[g.id].replicas
        if reps:
            replica = self.rng.choice(sorted(reps))
            self.obs.execute("SELECT mz_emulator.inject_oom(%s, %s)", (g.name, replica))
            self.log(f"  race: oom-killed {g.name!r}.{replica!r} after decide")
            FIGURES["races"] += 1
            return True
        return False

    def run_killed(self, plan: dict[str, Any]) -> None:
        planned = [a for c in plan["clusters"] for a in c["actions"] if a["status"] == "planned"]
        in_persist = not planned or self.rng.random() < 0.25
        # apply sends 2 statements, then per action at most 5 (re-read, hydration re-check,
        # intent, DDL, outcome); persist at most 5 (state, 3 retention DELETEs, release).
        k = self.rng.randint(0, 4 if in_persist else 1 + 5 * len(planned))
        result: dict[str, Any] | None = None
        try:
            if not in_persist:
                self.db.kill_at = self.db.statements + k
            result = cycle.apply(plan, self.db, SETTINGS, reconnect=self.swap)
            if in_persist:
                self.db.kill_at = self.db.statements + k
            cycle.persist(plan, result, self.db, SETTINGS)
            self.db.kill_at = None
            self.log(f"  (kill after {k} statements never came)")
            return
        except Killed as exc:
            self.log(f"  killed in {'persist' if in_persist else 'apply'}: {exc}")
        # Airflow retries the failed task on another worker: a fresh connection, the same
        # plan document (XCom); persist after it.
        self.db = self.connect()
        if result is None:
            result = cycle.apply(plan, self.db, SETTINGS, reconnect=self.swap)
        cycle.persist(plan, result, self.db, SETTINGS)

    def arm_fault(self, plan: dict[str, Any]) -> None:
        """One fault on a DDL the plan will send (or, without one, on a cluster's DDL)."""
        action = self.rng.choice(("error", "drop_before", "drop_after"))
        planned = [a for c in plan["clusters"] for a in c["actions"] if a["status"] == "planned"]
        if planned:
            target = self.rng.choice(planned)
            pattern = "^" + re.escape(target["sql"]) + "$"
            what = target["sql"]
        else:
            g = self.rng.choice(self.managed_groups())
            kind = self.rng.choice(("CREATE", "DROP"))
            pattern = rf"^\s*{kind} CLUSTER REPLICA " + re.escape(ident(g.name))
            what = f"{kind} on {g.name!r}"
        self.obs.execute(
            "SELECT mz_emulator.inject_fault(%s, %s, %s, %s)",
            (pattern, action, "injected by the safety model", "XX000"),
        )
        FIGURES["faults_injected"] += 1
        self.log(f"  fault armed: {action} on {what}")

    def disarm_faults(self) -> None:
        fired = self.obs.admin("SELECT count(*) FROM mz_emulator.faults WHERE remaining = 0")
        FIGURES["faults_fired"] += int(fired[0][0])
        self.obs.execute("SELECT mz_emulator.clear_faults()")

    @staticmethod
    def summary(plan: dict[str, Any]) -> str:
        out = []
        for c in plan["clusters"]:
            acts = [
                f"{a['kind'][:6]}:{a['replica_name']}/{a['status'][:4]}{a.get('codes', [])}"
                for a in c["actions"]
            ]
            errs = "!" if c["errors"] else ""
            if os.environ.get("MZ_SCHEDCTL_SAFETY_TRACE") == "notes":
                errs += f"{c['errors']}{c['notes']}{[f['message'] for f in c['findings']]}"
            out.append(f"{c['cluster_name']!r}{errs}[{' '.join(acts)}]")
        return " ".join(out) or "-"

    def check_cycle(self, view: CycleView) -> None:
        raise NotImplementedError  # safety_invariants.Invariants
