"""Model-based randomized test of the whole controller (engine + Materialize layer) against the
emulator: random histories of time, queries, hydration, OOMs and crashes, hand-made replicas,
strategy rows that come, change, go or turn invalid, and cycles (dry run, kill switch, apply,
apply killed between any two statements and retried, apply under injected faults). After every
step the invariants are checked against ground truth read from the emulator (its catalog, its
hydration view and its statement log), never against the controller's own report.

Seeded and reproducible: ``MZ_SCHEDCTL_SAFETY_SEED`` (default below) seeds everything; a failure
prints the seed, the scenario and its steps. ``MZ_SCHEDCTL_SAFETY_SCENARIOS`` (default 200) or
``--safety-long`` (5000) sets how many scenarios run. One emulator is shared; each scenario
builds fresh clusters and drops them at the end, and time moves by advancing the emulator's
clock, never by sleeping.

Settling and the progress bound K
---------------------------------
At the end of each scenario the inputs stop changing (no more queries, OOMs, user DDL, row
changes or faults). The clock then advances 3700 s, past the rate-limit window (3600 s), the
longest backoff (capped at 3600 s), any cooldown and lease TTL the scenario used, and then K+2
cycles run, each after a further 2000 s (more than the slowest hydration, 60 s for 25cc, and
the longest idle_after_s used, 1800 s). K = 2: a target size needs one cycle to create its
replica and, once that replica is hydrated, one more to retire the others (and the burst); an
idle cluster is suspended in the first cycle after idle_after_s, or the second when the first
created a replica (a new replica restarts the idle clock, per the contract). So after K cycles
every target is reached (or the cluster is suspended on purpose), every idle cluster is
suspended, and cycles K+1 and K+2 plan nothing: no oscillation.
"""

from __future__ import annotations

import json
import os
import random
import re
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from mzsupport import make_cluster, q, server_now, snapshot, state_payload
from safetysupport import (
    FIGURES,
    ClusterTruth,
    Ddl,
    KillableDatabase,
    Killed,
    Observer,
    audit_gaps,
    last_user_activity,
    replica_ddl,
    system_replicas,
    truth,
)

from mz_schedctl_provider.emulator.control import Emulator
from mz_schedctl_provider.runtime import cycle
from mz_schedctl_provider.runtime.ddl import ident

pytestmark = pytest.mark.usefixtures("tables")

DEFAULT_SEED = 20260611
SETTINGS = cycle.CycleSettings(holder="safety-model", lease_ttl_s=600)
K = 2  # see the module docstring
RATE_LIMIT = 10  # controller DDL per cluster per rolling hour (the contract's default)
SETTLE_FIRST_S = 3700
SETTLE_ROUND_S = 2000

TARGET_SIZES = ("50cc", "100cc", "200cc")
BURST_SIZES = ("400cc", "800cc")
HAND_SIZES = ("25cc", "50cc", "100cc", "800cc")
IDLE_AFTER = (120, 600, 1800)
# Legitimate names: quotes, semicolons, spaces, unicode must round-trip.
CLUSTER_SUFFIXES = ("a", "b", 'q"uote', "semi;colon", "sp ace", "ünï☃")
HAND_NAMES = ("hand", 'h"x', "h; y", "r_100cc", "r_50cc", "burst")
# Rows that must be refused with a named error (the cluster then gets no actions).
INVALID_ROWS: tuple[tuple[str, Any], ...] = (
    ("target_size", {"target_size": "999cc"}),
    ("target_size", {"target_size": 100}),
    ("target_size", {"target_size": "100cc", "replica_name": "mz_evil"}),
    ("burst", {"burst_replica_size": "800cc", "bogus": 1}),
    ("burst", {"burst_replica_size": "800cc", "max_burst_s": -5}),
    ("idle_suspend", {"idle_after_s": -1}),
    ("idle_suspend", {"idle_after_s": "soon"}),
    ("idle_suspend", {}),
)


def scenario_count(config: pytest.Config) -> int:
    if config.getoption("--safety-long"):
        return 5000
    return int(os.environ.get("MZ_SCHEDCTL_SAFETY_SCENARIOS", "200"))


def base_seed() -> int:
    return int(os.environ.get("MZ_SCHEDCTL_SAFETY_SEED", str(DEFAULT_SEED)))


class Violation(AssertionError):
    pass


@dataclass
class RowModel:
    """The newest strategy row of one (cluster, strategy type), as the test wrote it."""

    config: Any
    valid: bool
    enabled: bool


@dataclass
class Group:
    """One cluster of a scenario and what the test knows it asked for."""

    name: str
    id: str
    objects: str | None
    bystander: bool  # never gets an enabled strategy row
    rows: dict[str, RowModel] = field(default_factory=dict)
    # Replicas dropped by the cycle that emptied the cluster (the remembered set on resume).
    suspended_set: list[tuple[str, str]] = field(default_factory=list)
    # Cooldown anchors (last_action_at) per strategy already verified.
    stamps: dict[str, str] = field(default_factory=dict)

    def enabled(self) -> dict[str, RowModel]:
        return {k: r for k, r in self.rows.items() if r.enabled}

    def in_scope(self) -> bool:
        """May the controller act here? Enabled rows, all valid, no contradicting pair."""
        rows = self.enabled()
        if not rows or any(not r.valid for r in rows.values()):
            return False
        target, burst = rows.get("target_size"), rows.get("burst")
        return not (
            target is not None
            and burst is not None
            and target.config["target_size"] == burst.config["burst_replica_size"]
        )

    def config(self, kind: str) -> dict[str, Any] | None:
        row = self.enabled().get(kind)
        return row.config if row is not None and self.in_scope() else None


class Scenario:
    """One random history over fresh clusters, with every invariant checked as it goes."""

    def __init__(
        self,
        emu: Emulator,
        obs: Observer,
        user: psycopg.Connection[Any],
        index: int,
        seed: int,
    ) -> None:
        self.emu, self.user, self.index, self.seed = emu, user, index, seed
        self.obs = obs
        self.rng = random.Random(seed)
        self.trace: list[str] = []
        self.prefix = f"z{index}_"
        self.db = KillableDatabase.connect(emu.url)
        self.groups: list[Group] = []
        self.start = server_now(emu)
        self.system_before = system_replicas(emu)
        # name -> (size, origin) of the controller's newest CREATE per cluster id
        self.created: dict[str, dict[str, tuple[str, str]]] = {}

    # Setup and teardown ---------------------------------------------------------------------

    def setup(self) -> None:
        suffixes = self.rng.sample(CLUSTER_SUFFIXES, 3)
        for i, suffix in enumerate(suffixes):
            name = self.prefix + suffix
            objects = self.rng.choice(("mv", "index", None))
            replica = self.rng.choice(("r1", "r1", 'o"ld; r'))
            cid = make_cluster(self.obs, name, objects=objects, replica=replica)
            group = Group(name=name, id=cid, objects=objects, bystander=(i == 2))
            self.groups.append(group)
            self.created[cid] = {}
            self.log(f"cluster {name!r} ({cid}) objects={objects} replica={replica!r}")
        for group in self.groups[:2]:
            for _ in range(self.rng.randint(1, 3)):
                self.change_row(group)
        # The bystander may hold a disabled row: still out of scope.
        if self.rng.random() < 0.5:
            self.write_row(
                self.groups[2], "target_size", {"target_size": "100cc", "enabled": False}
            )
        self.advance(self.rng.choice((0, 5, 70)))

    def teardown(self) -> None:
        self.db.close()
        ids = [g.id for g in self.groups]
        self.obs.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = ANY(%s)", (ids,))
        for g in self.groups:
            self.obs.execute(f"DROP CLUSTER IF EXISTS {q(g.name)} CASCADE")
            self.obs.execute(f"DROP TABLE IF EXISTS {q('t_' + g.name)} CASCADE")

    def advance(self, seconds: float) -> None:
        self.obs.execute("SELECT mz_emulator.advance(make_interval(secs => %s))", (seconds,))

    def log(self, line: str) -> None:
        self.trace.append(line)

    def fail(self, message: str) -> None:
        raise Violation(message)

    def check(self, ok: bool, message: str) -> None:
        FIGURES["invariant_checks"] += 1
        if not ok:
            self.fail(message)

    # Inputs ---------------------------------------------------------------------------------

    def write_row(self, g: Group, kind: str, config: Any, *, valid: bool = True) -> None:
        text = config if isinstance(config, str) else json.dumps(config)
        self.obs.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, %s, %s::jsonb)",
            (g.id, kind, text),
        )
        enabled = not (isinstance(config, dict) and config.get("enabled") is False)
        g.rows[kind] = RowModel(config, valid, enabled)
        FIGURES["inputs_tried"] += 1
        self.log(f"row {g.name!r} {kind} {text}")

    def change_row(self, g: Group) -> None:
        r = self.rng.random()
        kind = self.rng.choice(("target_size", "burst", "idle_suspend"))
        if r < 0.12 and kind in g.rows:
            self.obs.execute(
                "DELETE FROM mz_cluster_strategies WHERE cluster_id = %s AND strategy_type = %s",
                (g.id, kind),
            )
            del g.rows[kind]
            self.log(f"row {g.name!r} {kind} removed")
            return
        if r < 0.19:
            kind, config = self.rng.choice(INVALID_ROWS)
            self.write_row(g, kind, config, valid=False)
            return
        if kind == "target_size":
            config: dict[str, Any] = {"target_size": self.rng.choice(TARGET_SIZES)}
        elif kind == "burst":
            config = {"burst_replica_size": self.rng.choice(BURST_SIZES)}
            if self.rng.random() < 0.3:
                config["max_burst_s"] = 300
        else:
            config = {"idle_after_s": self.rng.choice(IDLE_AFTER)}
            if self.rng.random() < 0.5:
                config["allow_with_maintained_objects"] = True
        if self.rng.random() < 0.15:
            config["cooldown_s"] = self.rng.choice((60, 600))
        if r < 0.3:
            config["enabled"] = False
        self.write_row(g, kind, config)

    def managed(self) -> list[Group]:
        return [g for g in self.groups if not g.bystander]

    def user_step(self) -> None:
        now = truth(self.obs, [g.id for g in self.groups])
        suspended = [g for g in self.managed() if not now[g.id].replicas]
        r = self.rng.random()
        # Queries go to a suspended cluster half the time: that is the resume signal.
        if r < 0.3 and suspended and self.rng.random() < 0.5:
            g = self.rng.choice(suspended)
        else:
            g = self.rng.choice(self.groups)
        reps = now[g.id].replicas
        if r < 0.3:
            before = server_now(self.obs)
            try:
                self.user.execute(f"SET cluster = {q(g.name)}")
                self.user.execute("SELECT * FROM safety_probe").fetchall()
                self.log(f"query on {g.name!r}: ok")
            except psycopg.Error as exc:
                self.log(f"query on {g.name!r}: refused ({str(exc).strip()[:60]})")
            # The harness itself: the query is activity on that cluster, refused or not.
            seen = last_user_activity(self.obs, g.id)
            self.check(seen is not None and seen >= before, f"query on {g.name!r} not logged")
        elif r < 0.45:
            self.obs.execute("SELECT mz_emulator.record_activity(%s)", (g.name,))
            self.log(f"record_activity {g.name!r}")
        elif r < 0.7 and reps:
            replica = self.rng.choice(sorted(reps))
            reason = self.rng.choice(("oom-killed", "oom-killed", "crashed"))
            self.obs.execute(
                "SELECT mz_emulator.inject_crash(%s, %s, %s)", (g.name, replica, reason)
            )
            self.log(f"{reason} {g.name!r}.{replica!r}")
        elif r < 0.85 and len(reps) <= 2:
            name = self.rng.choice(HAND_NAMES)
            if name in reps:
                return
            size = self.rng.choice(HAND_SIZES)
            self.obs.execute(f"CREATE CLUSTER REPLICA {q(g.name)}.{q(name)} (SIZE = '{size}')")
            self.log(f"user creates {g.name!r}.{name!r} {size}")
        elif reps:
            replica = self.rng.choice(sorted(reps))
            self.obs.execute(f"DROP CLUSTER REPLICA {q(g.name)}.{q(replica)}")
            self.log(f"user drops {g.name!r}.{replica!r}")

    # Cycles ---------------------------------------------------------------------------------

    def reconnect(self) -> KillableDatabase:
        return KillableDatabase.connect(self.emu.url)

    def filter(self) -> str | None:
        return re.escape(self.prefix) + ".*" if self.rng.random() < 0.3 else None

    def dry_cycle(self) -> None:
        filt = self.filter()
        before, since = snapshot(self.obs), server_now(self.obs)
        cycle_id = cycle.new_cycle_id("dry")
        signals = cycle.collect(self.db, SETTINGS, filter_clusters=filt)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=True, filter_clusters=filt)
        result = cycle.apply(plan, self.db, SETTINGS)
        cycle.persist(plan, result, self.db, SETTINGS)
        FIGURES["cycles"] += 1
        self.log(f"dry run: {self.summary(plan)}")
        self.check(snapshot(self.obs) == before, "a dry run changed the catalog or a table")
        self.check(
            not [d for d in replica_ddl(self.obs, since=since) if d.controller],
            "a dry run sent replica DDL",
        )

    def paused_cycle(self) -> None:
        since = server_now(self.obs)
        before = truth(self.obs, [g.id for g in self.groups])
        cycle_id = cycle.new_cycle_id("paused")
        signals = cycle.collect(self.db, SETTINGS)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False)
        result = cycle.apply(plan, self.db, SETTINGS, paused=True)
        cycle.persist(plan, result, self.db, SETTINGS)
        FIGURES["cycles"] += 1
        self.log(f"paused: {self.summary(plan)}")
        self.check(
            not [d for d in replica_ddl(self.obs, since=since) if d.controller],
            "a paused cycle sent replica DDL",
        )
        after = truth(self.obs, [g.id for g in self.groups])
        self.check(
            {k: v.replicas for k, v in after.items()} == {k: v.replicas for k, v in before.items()},
            "a paused cycle changed replicas",
        )

    def apply_cycle(self, mode: str = "apply") -> dict[str, Any]:
        """One applying cycle (``kill``: the worker dies between two statements and Airflow
        retries the task with the same plan on a new connection; ``fault``: one injected
        fault on this scenario's replica DDL). Returns the plan."""
        filt = self.filter() if mode != "settle" else None
        ids = [g.id for g in self.groups]
        since = server_now(self.obs)
        scope = {g.name for g in self.groups if g.in_scope()}
        if filt is not None:
            scope = {n for n in scope if re.fullmatch(filt, n)}
        cycle_id = cycle.new_cycle_id("safety")
        lease = cycle.claim_lease(self.db, SETTINGS, cycle_id=cycle_id)
        self.check(lease.acquired, f"no other cycle runs, yet the lease is held: {lease}")
        signals = cycle.collect(self.db, SETTINGS, filter_clusters=filt)
        plan = cycle.decide(signals, cycle_id=cycle_id, dry_run=False, filter_clusters=filt)
        if mode != "settle" and self.rng.random() < 0.25:
            self.race()
        # Ground truth as apply finds it (the clock stands still during a cycle).
        pre = truth(self.obs, ids)
        if mode == "fault":
            self.arm_fault(plan)
        if mode == "kill":
            self.run_killed(plan)
        else:
            result = cycle.apply(plan, self.db, SETTINGS, reconnect=self.swap)
            cycle.persist(plan, result, self.db, SETTINGS)
        FIGURES["cycles"] += 1
        if mode == "fault":
            self.disarm_faults()
        self.log(f"{mode}{' filter' if filt else ''}: {self.summary(plan)}")
        ddl = [d for d in replica_ddl(self.obs, since=since) if d.controller]
        self.check_cycle(pre, ddl, scope, since)
        return plan

    def race(self) -> None:
        """The world moves between decide and apply: a replica OOMs, so what the plan saw as
        hydrated may not be any more (apply must re-check before every drop)."""
        g = self.rng.choice(self.managed())
        reps = truth(self.obs, [g.id])[g.id].replicas
        if reps:
            replica = self.rng.choice(sorted(reps))
            self.obs.execute("SELECT mz_emulator.inject_oom(%s, %s)", (g.name, replica))
            self.log(f"  race: oom-killed {g.name!r}.{replica!r} after decide")
            FIGURES["races"] += 1

    def swap(self) -> KillableDatabase:
        """The executor's reconnect: the old connection is dead; later stages use the new one."""
        self.db.close()
        self.db = self.reconnect()
        return self.db

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
        self.db = self.reconnect()
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
            g = self.rng.choice(self.managed())
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
            acts = [f"{a['kind'][:6]}:{a['replica_name']}/{a['status'][:4]}" for a in c["actions"]]
            errs = "!" if c["errors"] else ""
            if os.environ.get("MZ_SCHEDCTL_SAFETY_TRACE") == "notes":
                errs += f"{c['notes']}{[f['message'] for f in c['findings']]}"
            out.append(f"{c['cluster_name']!r}{errs}[{' '.join(acts)}]")
        return " ".join(out) or "-"

    # Invariants -----------------------------------------------------------------------------

    def row_updated_at(self, g: Group, kind: str) -> datetime | None:
        rows = self.obs.execute(
            "SELECT max(updated_at) FROM mz_cluster_strategies"
            " WHERE cluster_id = %s AND strategy_type = %s",
            (g.id, kind),
        )
        return rows[0][0] if rows else None

    def suspend_permitted(self, g: Group, pre: ClusterTruth, now: datetime) -> bool:
        """Ground truth for "the desired state is empty on purpose": an enabled, valid
        idle_suspend row; nothing it must not suspend (materialized views unless allowed);
        and no user statement, row change or new replica for idle_after_s."""
        config = g.config("idle_suspend")
        if config is None:
            return False
        if g.objects == "mv" and not config.get("allow_with_maintained_objects"):
            return False
        anchors = [
            last_user_activity(self.obs, g.id),
            self.row_updated_at(g, "idle_suspend"),
            max(pre.created.values(), default=None),
        ]
        idle = float(config["idle_after_s"])
        return all(a is None or (now - a).total_seconds() >= idle - 1 for a in anchors)

    def check_cycle(
        self, pre: dict[str, ClusterTruth], ddl: list[Ddl], scope: set[str], since: datetime
    ) -> None:
        for d in ddl:
            # Scope: only clusters with enabled, valid rows (and in the filter); never a
            # system cluster, never the bystander.
            self.check(d.cluster in scope, f"DDL on a cluster out of scope: {d.sql}")
        self.check(system_replicas(self.obs) == self.system_before, "system replicas changed")
        post = truth(self.obs, [g.id for g in self.groups])
        for g in self.groups:
            before = pre[g.id]
            mine = [d for d in ddl if d.cluster == g.name]
            dropped = {d.replica for d in mine if d.kind == "drop" and d.ok}
            creates = [d for d in mine if d.kind == "create"]
            # Never the last hydrated replica, unless suspended on purpose.
            if before.hydrated and before.hydrated <= dropped:
                self.check(
                    self.suspend_permitted(g, before, since),
                    f"{g.name!r}: the cycle dropped every hydrated replica "
                    f"{sorted(before.hydrated)} without a suspend being due",
                )
            # Never two replicas created for one need.
            resume = not before.replicas
            per_size = Counter(d.size for d in creates)
            for size, n in per_size.items():
                allowed = 1 + (sum(1 for _, s in g.suspended_set if s == size) if resume else 0)
                self.check(n <= allowed, f"{g.name!r}: {n} CREATEs of size {size} in one cycle")
            target = g.config("target_size")
            if (
                target is not None
                and not resume
                and target["target_size"] in before.replicas.values()
            ):
                self.check(
                    target["target_size"] not in per_size,
                    f"{g.name!r}: another {target['target_size']} replica although one existed",
                )
            # Track what the controller created (fresh or by resume) and emptied.
            created = self.created[g.id]
            for d in mine:
                if not d.ok:
                    continue
                if d.kind == "create":
                    created[d.replica] = (str(d.size), "resume" if resume else "fresh")
                else:
                    created.pop(d.replica, None)
            after = post[g.id]
            if before.replicas and not after.replicas and dropped:
                g.suspended_set = sorted(before.replicas.items())
            live_fresh = Counter(
                size
                for name, (size, origin) in created.items()
                if origin == "fresh" and after.replicas.get(name) == size
            )
            burst = g.config("burst")
            if burst is not None:
                self.check(
                    live_fresh[burst["burst_replica_size"]] <= 1,
                    f"{g.name!r}: two burst replicas live: {after.replicas}",
                )
            self.check_state(g, ddl_since=since)

    def check_state(self, g: Group, *, ddl_since: datetime) -> None:
        """State never claims what did not happen: owned replicas were created by the
        controller (statement log); a new cooldown anchor needs that strategy's DDL to have
        run (statement log + its audit outcome) at that time."""
        payload = state_payload(self.obs, g.id)
        if payload is None:
            return
        ever = {
            d.replica
            for d in replica_ddl(self.obs, since=self.start)
            if d.controller and d.ok and d.kind == "create" and d.cluster == g.name
        }
        owned = set(payload.get("owned", []))
        self.check(owned <= ever, f"{g.name!r}: state owns {sorted(owned - ever)} it never created")
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
                for d in replica_ddl(self.obs, since=at)
                if d.controller
                and d.ok
                and d.cluster == g.name
                and d.at - at < timedelta(seconds=120)
            ]
            self.check(
                ran > 0 and bool(logged),
                f"{g.name!r}: {strategy} stamped last_action_at {stamp} without its DDL running",
            )

    def check_history(self) -> None:
        """Over the whole scenario: every controller DDL audited (intent before, outcome with
        the same action id), every executed outcome backed by a DDL, and the rate limit."""
        ids = [g.id for g in self.groups]
        gaps = audit_gaps(self.obs, since=self.start, cluster_ids=ids)
        self.check(not gaps, "; ".join(gaps))
        ddl = [d for d in replica_ddl(self.obs, since=self.start) if d.controller]
        FIGURES["invariant_checks"] += len(ddl)  # each DDL's intent and outcome were checked
        for g in self.groups:
            times = sorted(d.at for d in ddl if d.cluster == g.name)
            for i, t in enumerate(times):
                window = [u for u in times[: i + 1] if t - u < timedelta(seconds=3600)]
                self.check(
                    len(window) <= RATE_LIMIT,
                    f"{g.name!r}: {len(window)} controller DDL within an hour",
                )

    # Settling -------------------------------------------------------------------------------

    def settle(self) -> None:
        """Inputs stop; see the module docstring for K."""
        self.advance(SETTLE_FIRST_S)
        planned: list[int] = []
        for _ in range(K + 2):
            self.advance(SETTLE_ROUND_S)
            plan = self.apply_cycle("settle")
            pending = [
                a
                for c in plan["clusters"]
                for a in c["actions"]
                if a["status"] in ("planned", "deferred")
            ]
            planned.append(len(pending))
            self.check_history()
        self.check(
            planned[K:] == [0, 0],
            f"no quiescence: actions planned per settle cycle {planned}",
        )
        now = server_now(self.obs)
        final = truth(self.obs, [g.id for g in self.groups])
        for g in self.groups:
            t = final[g.id]
            suspended = not t.replicas and self.suspend_permitted(g, t, now)
            target, burst = g.config("target_size"), g.config("burst")
            if target is not None and not suspended:
                size = target["target_size"]
                self.check(
                    any(t.replicas[n] == size for n in t.hydrated),
                    f"{g.name!r}: target {size} not reached within {K} cycles: {t.replicas}",
                )
            if burst is not None:
                # "drop it as soon as another one is hydrated"
                fresh = self.created[g.id]
                bursts = {
                    n
                    for n, s in t.replicas.items()
                    if s == burst["burst_replica_size"] and fresh.get(n, ("", ""))[1] == "fresh"
                }
                self.check(
                    not (bursts and t.hydrated - bursts),
                    f"{g.name!r}: burst still there beside a hydrated replica: {t.replicas}",
                )
            idle = g.config("idle_suspend")
            if idle is not None and self.suspend_permitted(g, t, now):
                self.check(
                    not t.replicas,
                    f"{g.name!r}: idle for over idle_after_s but not suspended within {K} "
                    f"cycles: {t.replicas}",
                )

    # Driver ---------------------------------------------------------------------------------

    def step(self) -> None:
        r = self.rng.random()
        if r < 0.16:
            seconds = self.rng.choice((5, 20, 40, 70, 200, 700, 2000))
            self.advance(seconds)
            self.log(f"advance {seconds}s")
        elif r < 0.36:
            self.user_step()
        elif r < 0.48:
            self.change_row(self.rng.choice(self.managed()))
        elif r < 0.68:
            self.apply_cycle("apply")
        elif r < 0.78:
            self.apply_cycle("kill")
        elif r < 0.86:
            self.apply_cycle("fault")
        elif r < 0.95:
            self.dry_cycle()
        else:
            self.paused_cycle()
        FIGURES["steps"] += 1
        self.check_history()

    def run(self, steps: int) -> None:
        self.setup()
        for _ in range(steps):
            self.step()
        self.settle()


BATCH = 25  # scenarios per test item: progress shows, and each item stays within the timeout


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "batch" in metafunc.fixturenames:
        count = scenario_count(metafunc.config)
        only = os.environ.get("MZ_SCHEDCTL_SAFETY_ONLY")  # replay one scenario by index
        if only:
            batches = [[int(only)]]
        else:
            batches = [list(range(b, min(b + BATCH, count))) for b in range(0, count, BATCH)]
        metafunc.parametrize(
            "batch", batches, ids=[f"{b[0]}-{b[-1]}" if b else "none" for b in batches]
        )


@pytest.fixture(scope="module")
def world(emulator: Emulator) -> Iterator[tuple[psycopg.Connection[Any], Observer]]:
    """What every scenario shares: strategy rows on system clusters (the controller must
    still never touch them), a table for user queries, a user session and an observer."""
    for cid in ("s1", "s2"):
        emulator.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, 'target_size', '{\"target_size\": \"100cc\"}')",
            (cid,),
        )
    emulator.execute("CREATE TABLE IF NOT EXISTS safety_probe (a int)")
    user = psycopg.connect(emulator.url, autocommit=True, application_name="safety-user")
    obs = Observer(emulator)
    yield user, obs
    user.close()
    obs.close()
    emulator.execute("DELETE FROM mz_cluster_strategies")


def test_randomized_histories_keep_every_invariant(
    emulator: Emulator, world: tuple[psycopg.Connection[Any], Observer], batch: list[int]
) -> None:
    seed0 = base_seed()
    user, obs = world
    for index in batch:
        seed = random.Random(f"{seed0}/{index}").randrange(2**32)
        scenario = Scenario(emulator, obs, user, index, seed)
        try:
            scenario.run(steps=scenario.rng.randint(6, 12))
        except Exception as exc:
            trace = "\n  ".join(scenario.trace)
            detail = "" if isinstance(exc, Violation) else traceback.format_exc()
            pytest.fail(
                f"scenario {index} failed: {exc}\n"
                f"reproduce: MZ_SCHEDCTL_SAFETY_SEED={seed0} MZ_SCHEDCTL_SAFETY_ONLY={index}"
                f" .venv/bin/python -m pytest tests/safety/test_randomized.py\n"
                f"steps:\n  {trace}\n{detail}",
                pytrace=False,
            )
        finally:
            scenario.teardown()
        if os.environ.get("MZ_SCHEDCTL_SAFETY_TRACE"):
            print(f"scenario {index}:\n  " + "\n  ".join(scenario.trace))
        FIGURES["scenarios"] += 1
    FIGURES["seed"] = seed0
