"""The world of one randomized scenario: its clusters (unmanaged or managed, hosting a
materialized view, an index, a source or nothing), the strategy rows the test writes, and the
inputs that change under the controller: time, user queries (finished, refused or still
running across cycles), OOMs and crashes, hand-made replicas, renames and drop-and-recreate
under one name, the statement-log sample rate and flush lag, predecessor state rows.

Everything here is a real action against the emulator; what the test knows it asked for is
kept in :class:`Group` so the invariants (safety_invariants.py) can compare it with ground
truth."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from mzsupport import cluster_id, make_cluster, q, server_now
from safety_gate import Gate
from safetysupport import FIGURES, Observer, last_user_activity, system_replicas, truth

from mz_schedctl_provider.emulator.control import Emulator

TARGET_SIZES = ("50cc", "100cc", "200cc")
BURST_SIZES = ("400cc", "800cc")
HAND_SIZES = ("25cc", "50cc", "100cc", "800cc")
IDLE_AFTER = (120, 600, 1800)
COOLDOWNS = (60, 600)
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
    ("schedule", {"timezone": "Mars/Olympus", "windows": []}),
)
KINDS = ("target_size", "burst", "idle_suspend", "schedule")


@dataclass
class RowModel:
    """The newest strategy row of one (cluster, strategy type), as the test wrote it."""

    config: Any
    valid: bool
    enabled: bool

    @property
    def shadow(self) -> bool:
        return isinstance(self.config, dict) and self.config.get("shadow") is True


@dataclass
class Group:
    """One cluster of a scenario and what the test knows it asked for."""

    name: str
    id: str
    objects: str | None
    bystander: bool  # never gets an enabled strategy row
    managed: bool = False
    born: datetime | None = None  # when this incarnation was made (emulated clock)
    rows: dict[str, RowModel] = field(default_factory=dict)
    # Every name and id the cluster had (renames; drop-and-recreate gives a new id).
    names: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    # Replicas dropped by the cycle that emptied the cluster (the remembered set on resume).
    suspended_set: list[tuple[str, str]] = field(default_factory=list)
    # Cooldown anchors (last_action_at) per strategy already verified.
    stamps: dict[str, str] = field(default_factory=dict)
    # Liveness bookkeeping (safety_invariants.py).
    idle_suspended: bool = False
    resume_due: datetime | None = None  # a refused query's began_at, while suspended by idle
    resume_cycles: int = 0
    unaccounted: dict[str, int] = field(default_factory=dict)

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

    def may_execute(self) -> bool:
        """In scope with at least one row that is not a shadow (shadow rows never execute)."""
        return self.in_scope() and any(not r.shadow for r in self.enabled().values())

    def config(self, kind: str) -> dict[str, Any] | None:
        row = self.enabled().get(kind)
        return row.config if row is not None and self.in_scope() and not row.shadow else None

    def owned_scope(self) -> bool:
        return not self.managed and any(
            isinstance(r.config, dict) and r.config.get("replica_scope") == "owned"
            for r in self.enabled().values()
        )

    def schedule_off(self, now: datetime) -> bool | None:
        """The schedule's verdict at ``now`` (True: off), None without an active schedule."""
        config = self.config("schedule")
        if config is None:
            return None
        minute = now.hour * 60 + now.minute
        for w in config["windows"]:
            start = _minutes(w["start"]) - int(config.get("prewarm_s", 0)) // 60
            if start <= minute < _minutes(w["end"]):
                return w.get("mode", "on") == "off"
        return config.get("outside", "suspend") == "suspend"


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class World:
    """Clusters, rows and inputs of one scenario (the cycles and checks are mixed in)."""

    def __init__(
        self,
        emu: Emulator,
        obs: Observer,
        user: psycopg.Connection[Any],
        gate: Gate,
        index: int,
        seed: int,
    ) -> None:
        self.emu, self.user, self.gate, self.index, self.seed = emu, user, gate, index, seed
        self.obs = obs
        self.rng = random.Random(seed)
        self.trace: list[str] = []
        self.prefix = f"z{index}_"
        self.groups: list[Group] = []
        self.namesakes: list[str] = []  # clusters made under a group's old name (bystanders)
        self.start = server_now(emu)
        self.system_before = system_replicas(obs)
        # name -> (size, origin) of the controller's newest CREATE per cluster id
        self.created: dict[str, dict[str, tuple[str, str]]] = {}
        self.sample_rate = 1.0
        self.flush_s = self.rng.choice((0, 0, 5))
        self.renames = 0
        # Spells of statement logging at sample rate 0: the log sees nothing then, and the
        # invariants fall back on the catalog's replica history.
        self.blind: list[tuple[datetime, datetime | None]] = []

    def log(self, line: str) -> None:
        self.trace.append(line)

    def step_kind(self, kind: str) -> None:
        FIGURES[f"step:{kind}"] += 1

    # Setup and teardown ---------------------------------------------------------------------

    def make(self, g: Group, replica: str) -> str:
        g.born = server_now(self.obs)
        if g.managed:
            rf = 1 if g.objects == "source" else self.rng.choice((1, 1, 2))
            self.obs.execute(
                f"CREATE CLUSTER {q(g.name)} (SIZE = '25cc', REPLICATION FACTOR = {rf})"
            )
            if g.objects == "index":
                self.obs.execute(f"CREATE TABLE {q('t_' + g.name)} (a int)")
                self.obs.execute(
                    f"CREATE INDEX {q('i_' + g.name)} IN CLUSTER {q(g.name)}"
                    f" ON {q('t_' + g.name)} (a)"
                )
            elif g.objects == "source":
                self.obs.execute(
                    f"CREATE SOURCE {q('s_' + g.name)} IN CLUSTER {q(g.name)}"
                    " FROM LOAD GENERATOR COUNTER"
                )
            return cluster_id(self.emu, g.name)
        return make_cluster(self.obs, g.name, objects=g.objects, replica=replica)  # type: ignore[arg-type]

    def setup(self) -> None:
        if self.flush_s:
            self.obs.execute("SELECT mz_emulator.set_log_flush(make_interval(secs => %s))", (5,))
        suffixes = self.rng.sample(CLUSTER_SUFFIXES, 3)
        for i, suffix in enumerate(suffixes):
            managed = i < 2 and self.rng.random() < 0.25
            objects = self.rng.choice(("mv", "index", None, "source"))
            if managed and objects == "mv":
                objects = "index"
            replica = self.rng.choice(("r1", "r1", 'o"ld; r'))
            g = Group(name=self.prefix + suffix, id="", objects=objects, bystander=(i == 2))
            g.managed = managed
            g.id = self.make(g, replica)
            g.names.add(g.name)
            g.ids.add(g.id)
            self.groups.append(g)
            self.created[g.id] = {}
            kind = "managed" if managed else "unmanaged"
            self.log(f"cluster {g.name!r} ({g.id}) {kind} objects={objects} replica={replica!r}")
        for g in self.groups[:2]:
            for _ in range(self.rng.randint(1, 3)):
                self.change_row(g)
            if self.rng.random() < 0.15:
                self.predecessor_state(g)
        # The bystander may hold a disabled row: still out of scope.
        if self.rng.random() < 0.5:
            self.write_row(
                self.groups[2], "target_size", {"target_size": "100cc", "enabled": False}
            )
        self.advance(self.rng.choice((0, 5, 70)))

    def teardown(self) -> None:
        self.gate.finish()
        ids = sorted({i for g in self.groups for i in g.ids})
        self.obs.execute("DELETE FROM mz_cluster_strategies WHERE cluster_id = ANY(%s)", (ids,))
        if self.sample_rate != 1.0:
            self.obs.execute("ALTER SYSTEM SET statement_logging_max_sample_rate = 1")
        if self.flush_s:
            self.obs.execute("SELECT mz_emulator.set_log_flush(make_interval(secs => 0))")
        for name in [g.name for g in self.groups] + self.namesakes:
            self.obs.execute(f"DROP CLUSTER IF EXISTS {q(name)} CASCADE")
        for name in {n for g in self.groups for n in g.names} | set(self.namesakes):
            self.obs.execute(f"DROP TABLE IF EXISTS {q('t_' + name)} CASCADE")

    def advance(self, seconds: float) -> None:
        self.obs.execute("SELECT mz_emulator.advance(make_interval(secs => %s))", (seconds,))

    def managed_groups(self) -> list[Group]:
        return [g for g in self.groups if not g.bystander]

    # Rows -----------------------------------------------------------------------------------

    def write_row(self, g: Group, kind: str, config: Any, *, valid: bool = True) -> None:
        text = config if isinstance(config, str) else json.dumps(config)
        self.obs.execute(
            "INSERT INTO mz_cluster_strategies (cluster_id, strategy_type, config)"
            " VALUES (%s, %s, %s::jsonb)",
            (g.id, kind, text),
        )
        enabled = not (isinstance(config, dict) and config.get("enabled") is False)
        g.rows[kind] = RowModel(config, valid, enabled)
        g.resume_due, g.resume_cycles = None, 0  # config changed: no liveness obligation
        FIGURES["inputs_tried"] += 1
        self.log(f"row {g.name!r} {kind} {text}")

    def schedule_config(self) -> dict[str, Any]:
        """Daily UTC windows around the emulated now: inside, outside, or one about to open."""
        now = server_now(self.obs)
        offset = self.rng.choice((-30, 20, 90))
        start = (now + timedelta(minutes=offset)).replace(second=0, microsecond=0)
        end = start + timedelta(minutes=self.rng.choice((60, 180)))
        if end.date() != start.date():  # keep the window within one day (no wrap-around)
            end = start.replace(hour=23, minute=59)
        window = {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": start.strftime("%H:%M"),
            "end": end.strftime("%H:%M"),
            "mode": "on",
        }
        return {"timezone": "UTC", "windows": [window]}

    def change_row(self, g: Group) -> None:
        self.step_kind("row_change")
        r = self.rng.random()
        kind = self.rng.choice(KINDS if self.rng.random() < 0.3 else KINDS[:3])
        if r < 0.12 and kind in g.rows:
            self.obs.execute(
                "DELETE FROM mz_cluster_strategies WHERE cluster_id = %s AND strategy_type = %s",
                (g.id, kind),
            )
            del g.rows[kind]
            g.resume_due, g.resume_cycles = None, 0
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
        elif kind == "idle_suspend":
            config = {"idle_after_s": self.rng.choice(IDLE_AFTER)}
            if self.rng.random() < 0.5:
                config["allow_with_maintained_objects"] = True
            if self.rng.random() < 0.1:
                config["resume"] = False
        else:
            config = self.schedule_config()
        # Cooldowns on every strategy, owned scope, shadow rows, disabled rows.
        if self.rng.random() < 0.35:
            config["cooldown_s"] = self.rng.choice(COOLDOWNS)
        if kind != "schedule" and self.rng.random() < 0.2:
            config["replica_scope"] = "owned"
        if self.rng.random() < 0.08:
            config["shadow"] = True
        if r < 0.3:
            config["enabled"] = False
        # A schedule refuses a cooldown (it is a function of time): a named error.
        self.write_row(g, kind, config, valid=not (kind == "schedule" and "cooldown_s" in config))

    def predecessor_state(self, g: Group) -> None:
        """The predecessor's state row (version 1, its own payload): ignored, fresh state."""
        self.step_kind("predecessor_state")
        payload = {"last_action_at": "2020-01-01T00:00:00Z", "owned": ["hand", "r1"]}
        self.obs.execute(
            "INSERT INTO mz_cluster_strategy_state (cluster_id, state_version, payload)"
            " VALUES (%s, 1, %s::jsonb)",
            (g.id, json.dumps(payload)),
        )
        self.log(f"predecessor state row (version 1) for {g.name!r}")

    # User steps -----------------------------------------------------------------------------

    def user_step(self) -> None:
        now = truth(self.obs, [g.id for g in self.groups])
        suspended = [g for g in self.managed_groups() if not now[g.id].replicas]
        r = self.rng.random()
        # Queries go to a suspended cluster half the time: that is the resume signal.
        if r < 0.3 and suspended and self.rng.random() < 0.5:
            g = self.rng.choice(suspended)
        else:
            g = self.rng.choice(self.groups)
        reps = now[g.id].replicas
        if r < 0.3:
            self.step_kind("query")
            before = server_now(self.obs)
            try:
                self.user.execute(f"SET cluster = {q(g.name)}")
                self.user.execute("SELECT * FROM safety_probe").fetchall()
                self.log(f"query on {g.name!r}: ok")
            except psycopg.Error as exc:
                self.log(f"query on {g.name!r}: refused ({str(exc).strip()[:60]})")
            seen = last_user_activity(self.obs, g.id)
            if self.sample_rate > 0:
                # The harness itself: the query is activity on that cluster, refused or not.
                self.check(
                    "harness_query_logged",
                    seen is not None and seen >= before,
                    f"query on {g.name!r} not logged",
                )
                if not reps and g.idle_suspended and g.resume_due is None:
                    g.resume_due, g.resume_cycles = seen, 0
        elif r < 0.4:
            self.step_kind("record_activity")
            self.obs.execute("SELECT mz_emulator.record_activity(%s)", (g.name,))
            self.log(f"record_activity {g.name!r}")
        elif r < 0.6 and reps:
            self.step_kind("crash")
            replica = self.rng.choice(sorted(reps))
            reason = self.rng.choice(("oom-killed", "oom-killed", "crashed"))
            self.obs.execute(
                "SELECT mz_emulator.inject_crash(%s, %s, %s)", (g.name, replica, reason)
            )
            self.log(f"{reason} {g.name!r}.{replica!r}")
        elif r < 0.7:
            self.long_query_step(g, reps)
        elif r < 0.78:
            self.rename(g)
        elif r < 0.83:
            self.drop_and_recreate(g)
        elif g.managed:
            self.step_kind("user_factor")
            factor = self.rng.choice((1, 2))
            try:
                self.obs.execute(f"ALTER CLUSTER {q(g.name)} SET (REPLICATION FACTOR = {factor})")
                self.log(f"user sets {g.name!r} factor {factor}")
            except psycopg.Error as exc:
                self.log(f"user factor on {g.name!r} refused ({str(exc).strip()[:60]})")
        elif r < 0.93 and len(reps) <= 2:
            name = self.rng.choice(HAND_NAMES)
            if name in reps:
                return
            self.step_kind("hand_create")
            size = self.rng.choice(HAND_SIZES)
            try:
                self.obs.execute(f"CREATE CLUSTER REPLICA {q(g.name)}.{q(name)} (SIZE = '{size}')")
                self.log(f"user creates {g.name!r}.{name!r} {size}")
            except psycopg.Error as exc:  # a source cluster takes one replica
                self.log(f"user create on {g.name!r} refused ({str(exc).strip()[:60]})")
        elif reps:
            self.step_kind("hand_drop")
            replica = self.rng.choice(sorted(reps))
            self.obs.execute(f"DROP CLUSTER REPLICA {q(g.name)}.{q(replica)}")
            self.log(f"user drops {g.name!r}.{replica!r}")

    def long_query_step(self, g: Group, reps: dict[str, str]) -> None:
        """Begin a statement that runs across cycles, or end the one running."""
        if self.gate.running:
            self.step_kind("long_query_end")
            self.log(f"long query on {self.gate.cluster!r} ends")
            self.gate.finish()
        elif reps and self.sample_rate > 0:
            self.step_kind("long_query_begin")
            self.gate.start(self.obs, g.name)
            # A long query: the clock moves on while it runs (past some idle_after_s).
            seconds = self.rng.choice((130, 700, 2000))
            self.advance(seconds)
            self.log(f"long query on {g.name!r} begins; advance {seconds}s")

    def rename(self, g: Group, *, namesake: bool | None = None) -> None:
        """ALTER CLUSTER ... RENAME; with ``namesake`` a new cluster takes the old name."""
        self.step_kind("rename")
        self.renames += 1
        old, new = g.name, f"{g.name}~{self.renames}"
        self.obs.execute(f"ALTER CLUSTER {q(old)} RENAME TO {q(new)}")
        g.name = new
        g.names.add(new)
        if self.gate.cluster == old:
            self.gate.cluster = new
        if namesake if namesake is not None else self.rng.random() < 0.5:
            self.step_kind("namesake")
            self.obs.execute(f"CREATE CLUSTER {q(old)} REPLICAS ({q('r1')} (SIZE = '25cc'))")
            self.namesakes.append(old)
        made = " and creates a namesake" if old in self.namesakes else ""
        self.log(f"user renames {old!r} to {new!r}{made}")

    def drop_and_recreate(self, g: Group) -> None:
        """The cluster is dropped and made again under the same name: a new id. Its old rows
        stay behind (rows for an unknown cluster id); the rows come back for the new id half
        the time, as a user restoring the config would."""
        if self.gate.cluster == g.name:
            return
        self.step_kind("drop_recreate")
        self.obs.execute(f"DROP CLUSTER {q(g.name)} CASCADE")
        self.obs.execute(f"DROP TABLE IF EXISTS {q('t_' + g.name)} CASCADE")
        old_id, rows = g.id, dict(g.rows)
        g.id = self.make(g, "r1")
        g.ids.add(g.id)
        g.rows = {}
        g.stamps, g.suspended_set, g.unaccounted = {}, [], {}
        g.idle_suspended, g.resume_due, g.resume_cycles = False, None, 0
        self.created[g.id] = {}
        self.log(f"user drops {g.name!r} ({old_id}) and recreates it as {g.id}")
        if not g.bystander and self.rng.random() < 0.5:
            for kind, row in rows.items():
                self.write_row(g, kind, row.config, valid=row.valid)

    # Knobs ----------------------------------------------------------------------------------

    def sample_rate_step(self) -> None:
        """Statement logging's max sample rate to 0 (idle_suspend must not act) and back."""
        self.step_kind("sample_rate")
        self.sample_rate = 1.0 if self.sample_rate == 0 else 0.0
        now = server_now(self.obs)
        if self.sample_rate == 0:
            self.blind.append((now, None))
        else:
            self.blind[-1] = (self.blind[-1][0], now)
        self.obs.execute(
            f"ALTER SYSTEM SET statement_logging_max_sample_rate = {self.sample_rate:g}"
        )
        self.log(f"statement_logging_max_sample_rate = {self.sample_rate:g}")

    def check(self, name: str, ok: bool, message: str) -> None:
        raise NotImplementedError  # safety_invariants.Invariants
