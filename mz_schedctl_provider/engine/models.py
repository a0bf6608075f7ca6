"""Frozen data the engine reads (Signals) and writes (Plan, ClusterState).

Everything here is plain data: no I/O, no clock. All timestamps are timezone-aware and come
from the Materialize server (``Signals.now``), never from the local clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

from .reasons import ReasonCode

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
JsonObject: TypeAlias = dict[str, JsonValue]

ActionKind = Literal["create_replica", "drop_replica", "alter_cluster"]
ActionStatus = Literal["planned", "deferred", "shadow", "skipped"]
Severity = Literal["info", "warning", "error"]
Outcome = Literal["succeeded", "already_true", "failed", "not_executed"]
# Where a piece of replica evidence comes from: the controller's audit trail, or Materialize's
# mz_internal.mz_cluster_replica_history.
EvidenceSource = Literal["audit", "replica_history"]
ReplicaEventKind = Literal["created", "dropped"]
# An approval request's status (approval.py); the newest row per request wins.
ApprovalStatus = Literal["pending", "approved", "rejected", "expired", "used"]

ACTION_KINDS: tuple[ActionKind, ...] = ("create_replica", "drop_replica", "alter_cluster")
ACTION_STATUSES: tuple[ActionStatus, ...] = ("planned", "deferred", "shadow", "skipped")
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "already_true", "failed", "not_executed")


@dataclass(frozen=True)
class Size:
    """A replica size as listed by mz_cluster_replica_sizes."""

    name: str
    credits_per_hour: float
    memory_bytes: int
    # False when listed but not in allowed_cluster_replica_sizes (Materialize refuses it).
    allowed: bool = True


@dataclass(frozen=True)
class Replica:
    """One replica of a cluster, with its health and hydration facts."""

    id: str
    name: str
    size: str | None
    created_at: datetime | None = None
    # Latest status over the replica's processes: "online", "offline" or None (unknown).
    status: str | None = None
    status_reason: str | None = None
    # How many of the cluster's hydration objects are hydrated on this replica.
    hydrated_objects: int = 0
    # Offline events in the Signals.crash_window_s window ("initializing" is never counted).
    oom_count: int = 0
    crash_count: int = 0


RECONFIGURATION_FAILED = ("timed-out", "resource-exhausted")


@dataclass(frozen=True)
class Reconfiguration:
    """A graceful reconfiguration of a managed cluster (mz_cluster_reconfigurations, v26.35+):
    ``ALTER CLUSTER ... SET (SIZE = ...) WITH (WAIT UNTIL READY (...))`` runs in the background."""

    # in-progress, finalized, timed-out, cancelled or resource-exhausted.
    status: str
    deadline: datetime | None = None
    on_timeout: str | None = None
    target_size: str | None = None
    target_replication_factor: int | None = None

    @property
    def in_progress(self) -> bool:
        return self.status == "in-progress"

    @property
    def failed(self) -> bool:
        """Timed out (rolled back, or committed) or out of resources: the resize did not happen."""
        return self.status in RECONFIGURATION_FAILED

    @property
    def key(self) -> str:
        """Identifies one reconfiguration (the relation has no id): deadline and target."""
        at = self.deadline.isoformat() if self.deadline is not None else "-"
        return f"{at}/{self.target_size}/{self.target_replication_factor}"


@dataclass(frozen=True)
class Cluster:
    """One cluster with its replicas, hosted objects and activity."""

    id: str
    name: str
    managed: bool = False
    size: str | None = None
    replication_factor: int | None = None
    # mz_cluster_schedules.type; None or "manual" mean Materialize does not schedule it.
    schedule_type: str | None = None
    # True when Materialize's built-in AUTO SCALING STRATEGY drives the cluster.
    auto_scaling: bool = False
    is_system: bool = False
    replicas: tuple[Replica, ...] = ()
    # User objects (ids "u...") hosted by the cluster.
    indexes: int = 0
    materialized_views: int = 0
    sources: int = 0
    sinks: int = 0
    # User objects the hydration view reports for this cluster; a replica is hydrated when
    # hydrated_objects reaches it (None: the sum of the four counts above).
    hydration_objects: int | None = None
    last_activity: datetime | None = None
    # Managed clusters: the reconfiguration in progress, else the latest one (by deadline).
    reconfiguration: Reconfiguration | None = None

    @property
    def current_replication_factor(self) -> int:
        """A managed cluster's factor (its replica count when Materialize reports none)."""
        if self.replication_factor is not None:
            return self.replication_factor
        return len(self.replicas)

    @property
    def objects_to_hydrate(self) -> int:
        if self.hydration_objects is not None:
            return self.hydration_objects
        return self.indexes + self.materialized_views + self.sources + self.sinks

    @property
    def hosts_sources_or_sinks(self) -> bool:
        return self.sources > 0 or self.sinks > 0

    def replica(self, name: str) -> Replica | None:
        return next((r for r in self.replicas if r.name == name), None)


@dataclass(frozen=True)
class StrategyRow:
    """One row of mz_cluster_strategies, config as stored (object or JSON text)."""

    cluster_id: str
    strategy_type: str
    config: JsonValue
    updated_at: datetime | None = None


@dataclass(frozen=True)
class StateRow:
    """One row of mz_cluster_strategy_state."""

    cluster_id: str
    state_version: int
    payload: JsonValue
    updated_at: datetime | None = None


@dataclass(frozen=True)
class RecentAction:
    """An action sent to Materialize recently (from the audit), for the rate limit."""

    cluster_id: str
    at: datetime
    strategy: str | None = None


@dataclass(frozen=True)
class ReplicaEvent:
    """A past create or drop of a replica, read in the signals batch: evidence that survives a
    lost state row. ``audit``: the controller's own DDL (its outcome, or an intent whose outcome
    was never written because the process died); ``replica_history``: a replica Materialize
    dropped (from its audit log, whoever dropped it)."""

    cluster_id: str
    source: EvidenceSource
    event: ReplicaEventKind
    replica_name: str
    size: str | None = None
    at: datetime | None = None
    strategy: str | None = None
    # audit only: False for an intent without an outcome row (the DDL may or may not have run).
    confirmed: bool = True


@dataclass(frozen=True)
class Approval:
    """An approval request of the gate (mz_cluster_strategy_approvals, newest row per
    request): which action (by fingerprint), its status and until when it counts, on the
    server's clock."""

    request_id: str
    cluster_id: str
    fingerprint: str
    status: ApprovalStatus
    expires_at: datetime
    requested_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class Signals:
    """Everything decide needs, read in one batch; ``now`` is the server's clock."""

    now: datetime
    logging_visible: bool
    controller_cluster: str | None = None
    crash_window_s: float = 3600.0
    sizes: tuple[Size, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    strategies: tuple[StrategyRow, ...] = ()
    states: tuple[StateRow, ...] = ()
    recent_actions: tuple[RecentAction, ...] = ()
    # id -> name of clusters out of scope that a row for an unknown cluster id points at (by
    # name, or by id in other case): the hint of that row's warning (unknown_rows.py).
    cluster_names: Mapping[str, str] = field(default_factory=dict)
    # How late the statement log may be: Materialize writes it on a timer (every 5 s), so the
    # last log_flush_lag_s before ``now`` may hold activity not visible yet.
    log_flush_lag_s: float = 5.0
    # The audit's replica creates and drops, and Materialize's dropped replicas (evidence.py).
    replica_events: tuple[ReplicaEvent, ...] = ()
    # The approval gate's live requests (pending, approved, rejected) of clusters in scope.
    approvals: tuple[Approval, ...] = ()


@dataclass(frozen=True)
class DesiredReplica:
    """A replica some strategy wants, with who wants it and why."""

    name: str
    size: str
    strategy: str
    reason: str
    # Kept only until a replacement is hydrated (may go first when downtime is allowed).
    until_replaced: bool = False
    # Why, as a code (reasons.py): becomes the first of the action's codes.
    code: ReasonCode = field(kw_only=True)
    # Its preferred name was taken, so it got a free one: the action adds "name_taken".
    name_taken: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class Alter:
    """What an ``alter_cluster`` action sets on a managed cluster (None: left as it is)."""

    size: str | None = None
    replication_factor: int | None = None
    # Graceful: WITH (WAIT UNTIL READY (TIMEOUT = timeout_s, ON TIMEOUT = 'ROLLBACK')), the old
    # replicas serving until the new ones are hydrated (rolled back at the timeout).
    wait: bool = False
    timeout_s: float | None = None

    def describe(self) -> str:
        parts = []
        if self.size is not None:
            parts.append(f"SIZE = {self.size!r}")
        if self.replication_factor is not None:
            parts.append(f"REPLICATION FACTOR = {self.replication_factor}")
        text = ", ".join(parts) or "nothing"
        return f"{text} (graceful)" if self.wait else text


@dataclass(frozen=True)
class Action:
    """One DDL step of a plan; ``sql`` is filled by the injected renderer.

    Replica actions name a replica; ``alter_cluster`` actions (managed clusters, whose replicas
    Materialize manages) have an empty ``replica_name`` and say what they set in ``alter``.
    """

    id: str
    cluster_id: str
    cluster_name: str
    kind: ActionKind
    replica_name: str
    size: str | None
    strategy: str
    reasons: tuple[str, ...]
    status: ActionStatus = "planned"
    # For drops: the replica id observed, so apply can tell a recreated namesake apart.
    replica_id: str | None = None
    credits_per_hour_before: float = 0.0
    credits_per_hour_after: float = 0.0
    sql: str | None = None
    alter: Alter | None = None
    # Why, as codes (reasons.py), one per cause beside the prose of ``reasons``: the
    # strategy's first, then what the rails added.
    codes: tuple[ReasonCode, ...] = ()
    # The approval gate: the request this action waits on or runs by (None: none asked yet).
    approval_id: str | None = None

    def describe(self) -> str:
        """E.g. ``create_replica 'r_100cc'`` or ``alter_cluster REPLICATION FACTOR = 0``."""
        if self.kind == "alter_cluster":
            return f"alter_cluster {self.alter.describe() if self.alter else 'nothing'}"
        return f"{self.kind} {self.replica_name!r}"


@dataclass(frozen=True)
class Finding:
    """Something a human should know about a cluster (stuck, left alone, state reset...)."""

    kind: str
    severity: Severity
    message: str
    strategy: str | None = None
    details: Mapping[str, JsonValue] = field(default_factory=dict)
    # What it is about, as a code (reasons.py); None only in documents older than codes.
    code: ReasonCode | None = None


@dataclass(frozen=True)
class Backoff:
    """Failure record of a cluster: no action before retry_at."""

    failures: int
    retry_at: datetime
    last_error: str


@dataclass(frozen=True)
class FailedResize:
    """Managed clusters: the last graceful resize that did not happen (timed out), counted
    once, and how many in a row failed for that size (the backoff grows with it)."""

    key: str
    size: str
    failures: int


@dataclass(frozen=True)
class ClusterState:
    """State payload of one cluster: each strategy under its own key, plus cluster facts."""

    strategies: Mapping[str, JsonObject] = field(default_factory=dict)
    # Replica names the controller created (for replica_scope "owned").
    owned: tuple[str, ...] = ()
    backoff: Backoff | None = None
    failed_resize: FailedResize | None = None


@dataclass(frozen=True)
class ClusterPlan:
    """Decision for one cluster: actions, cost, errors, findings and states."""

    cluster_id: str
    cluster_name: str
    actions: tuple[Action, ...] = ()
    credits_per_hour_before: float = 0.0
    credits_per_hour_after: float = 0.0
    # Run-failing problems (invalid config, stuck, unsupported): the last task lists them.
    errors: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    # One short line per strategy that ran: what it saw and decided.
    notes: tuple[str, ...] = ()
    # True when the final desired replica set is empty on purpose (suspend).
    empty_on_purpose: bool = False
    # State as read (normalised to the current version) and as proposed by this decision.
    prev_state: ClusterState = field(default_factory=ClusterState)
    state: ClusterState = field(default_factory=ClusterState)


@dataclass(frozen=True)
class Plan:
    """The output of decide: self-contained input for apply and persist."""

    cycle_id: str
    now: datetime
    dry_run: bool
    clusters: tuple[ClusterPlan, ...] = ()
    experimental: bool = False
    # About no cluster of the plan (a row for an unknown cluster id): warnings, never errors.
    findings: tuple[Finding, ...] = ()

    def errors(self) -> list[str]:
        """Every run-failing problem, prefixed by its cluster name."""
        return [f"{c.cluster_name}: {e}" for c in self.clusters for e in c.errors]

    def actions(self) -> list[Action]:
        return [a for c in self.clusters for a in c.actions]


@dataclass(frozen=True)
class ActionResult:
    """What apply did with one action."""

    action_id: str
    cluster_id: str
    outcome: Outcome
    error: str | None = None


@dataclass(frozen=True)
class ApplyResult:
    """The output of apply: one outcome per action it was given."""

    cycle_id: str
    executed: bool
    # Why nothing was executed (dry run, kill switch, lease held by another cycle), if so.
    reason: str | None = None
    results: tuple[ActionResult, ...] = ()
